"""Each element's random stream: a function of the simulation seed and its full name.

Every component and subcomponent owns a numpy ``Generator`` (DESIGN.md rule
4). Its stream is the ``SeedSequence`` child of the simulation seed whose
spawn key is the SHA-256 digest of the element's UTF-8 name, as eight 32-bit
words. So a stream depends on the seed and on every character of the name,
never on creation order or on how many other elements exist; two names share
a stream only if their SHA-256 digests are equal. (An earlier version keyed
streams by ``crc32(name)``: among 100,000 neuron-level components two names
with the same 32-bit checksum, and so the same numbers, were likely.)

Code outside the kernel that must reproduce a component's draws (the numpy
reference loop in ``benchmarks/``) calls ``component_rng`` too, so there is
one definition of the seeding.
"""

from __future__ import annotations

import hashlib

import numpy as np


def name_key(name: str) -> tuple[int, ...]:
    """The eight 32-bit words (little-endian) of SHA-256 of the UTF-8 ``name``."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))


def component_seed_sequence(seed: int, name: str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the element called ``name`` in a simulation seeded ``seed``."""
    if int(seed) < 0:
        raise ValueError(f"seed {seed} is negative; use a seed >= 0")
    return np.random.SeedSequence(int(seed), spawn_key=name_key(name))


def component_rng(seed: int, name: str) -> np.random.Generator:
    """The ``Generator`` nnsim gives the element called ``name`` in a simulation seeded ``seed``."""
    return np.random.default_rng(component_seed_sequence(seed, name))
