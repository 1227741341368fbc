"""Running one simulation over MPI ranks: partitioners, sync windows, event exchange.

``mpiexec -n R nnsim run model.py -- ...`` runs the model with its
components partitioned over R ranks, with results bit-identical to the
serial run (`nnsim.parallel.run` says how). mpi4py is imported only when the
process was started by ``mpiexec`` (`nnsim.parallel.world`); this package
knows nothing of neural networks and reaches the kernel through its public
API only.
"""

from nnsim.parallel.partition import (
    Partition,
    make_partition,
    partitioners,
    register_partitioner,
    write_partition,
)
from nnsim.parallel.run import ParallelRun, RankReport, run_parallel
from nnsim.parallel.world import RankFailed, World, launched, world

__all__ = [
    "ParallelRun",
    "Partition",
    "RankFailed",
    "RankReport",
    "World",
    "launched",
    "make_partition",
    "partitioners",
    "register_partitioner",
    "run_parallel",
    "world",
    "write_partition",
]
