"""The Fashion-MNIST example, plus a probe that prints a digest of every component's arrays.

The parallel tests run it serially and on 2 and 3 ranks: the digests show
that the final weights (and every other array of the state) are the same.
The probe has no links; it reads the other components only in ``finish``,
when the whole final state is in the process that finishes the run.
"""

import hashlib
import runpy
from pathlib import Path

import numpy as np

import nnsim
from nnsim.sim import Component
from nnsim.state import state_items

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fashion_mnist" / "nn.py"


class StateDigest(Component):
    type_name = "test.StateDigest"

    def finish(self) -> None:
        for name, component in self.sim.components.items():
            elements = [component, *component.subcomponents.values()]
            digest = hashlib.sha256()
            for element in elements:
                for key, value in state_items(element).items():
                    if isinstance(value, np.ndarray):
                        digest.update(f"{element.name}/{key}".encode() + value.tobytes())
            self.print(f"{name}: arrays {digest.hexdigest()[:16]}")


runpy.run_path(str(EXAMPLE), run_name="__main__")  # reads the arguments nnsim gave this script
nnsim.simulation().add(StateDigest, "digest")
