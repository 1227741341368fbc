"""Component random streams: a function of the simulation seed and the full name.

Streams used to be keyed by ``crc32(name)``; two names with the same checksum
then drew the same numbers. Now the key is SHA-256 of the whole name.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import pytest

from nnsim.sim import Component, Simulation, Slot, SubComponent, component_rng
from nnsim.sim.rng import component_seed_sequence

# Two neuron-style names with the same CRC-32 (found by a birthday search).
CRC32_TWINS = ("neuron29685295", "neuron32060020")


class Neuron(Component):
    """A component that only owns a random stream."""


class Part(SubComponent):
    """A subcomponent that only owns a random stream."""


class Holder(Component):
    slots = (Slot("part", "a part", default=Part),)


def test_the_twins_really_share_a_crc32() -> None:
    a, b = CRC32_TWINS
    assert a != b and zlib.crc32(a.encode()) == zlib.crc32(b.encode())


def test_components_whose_names_share_a_crc32_get_different_streams() -> None:
    sim = Simulation(seed=0)
    for name in CRC32_TWINS:
        sim.add(Neuron, name)
    first, second = (sim.components[name].rng.random(16) for name in CRC32_TWINS)
    assert not np.array_equal(first, second)


def test_a_stream_depends_on_the_seed() -> None:
    draws = {seed: Simulation(seed).add(Neuron, "n").rng.random(8) for seed in (0, 1, 2**40)}
    assert not np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2**40])
    assert not np.array_equal(draws[1], draws[2**40])


def test_a_component_draws_what_component_rng_gives_outside_the_simulation() -> None:
    sim = Simulation(seed=7)
    holder = sim.add(Holder, "holder")
    np.testing.assert_array_equal(holder.rng.random(8), component_rng(7, "holder").random(8))
    np.testing.assert_array_equal(
        holder.part.rng.random(8), component_rng(7, "holder/part").random(8)
    )


def test_the_seeding_is_the_seed_and_the_sha256_words_of_the_utf8_name() -> None:
    """Pinned, so that a change of the seeding (and of every run's numbers) is deliberate."""
    name = "couche/optimiseur-\u00e9"
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    sequence = component_seed_sequence(3, name)
    assert sequence.entropy == 3 and sequence.spawn_key == words
    assert component_rng(0, "dense1").random() == 0.6609488480259129


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed -1 is negative"):
        component_rng(-1, "dense1")
