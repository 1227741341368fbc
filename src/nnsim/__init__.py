"""nnsim: neural networks as discrete-event simulations.

Layers are components that exchange events over links with latency, in
simulated time. See README.md for the tour.
"""

__version__ = "0.1.0"


def simulation():
    """The simulation a model script run by ``nnsim run`` should build (see nnsim.script)."""
    from nnsim.script import simulation as current

    return current()
