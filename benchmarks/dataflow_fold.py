"""Folding the 784-128-10 dataflow graph onto 2..16 nodes: wall time, cut and balance per strategy.

One JSON line per (granularity, nodes, strategy) on the ``mesh16`` preset.
Folding does not depend on the weights' values, so the model is random.
Peers in the same run: the ``balanced`` fold of the same configuration (the
cut and word-hop ratios; below 1 means less traffic than balanced) and,
for ``metis``, one bare ``pymetis.part_graph`` call on the same CSR graph
(``wall_vs_bare_metis``: what repair, refinement and the capacity check
cost on top of METIS itself). Times are the best of ``--repeat`` runs.

Run: ``.venv/bin/python benchmarks/dataflow_fold.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    import nnsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nnsim.dataflow import DataflowGraph, Hardware, fold, traffic, usage
from nnsim.dataflow.fold_metis import _csr
from nnsim.interop.model import DenseLayer, DenseModel

PRESET = Path(__file__).resolve().parents[1] / "examples" / "dataflow" / "hw" / "mesh16.toml"


def model() -> DenseModel:
    rng = np.random.default_rng(0)
    return DenseModel(
        (
            DenseLayer(
                "dense1", rng.normal(size=(784, 128)).astype(np.float32), np.zeros(128, np.float32)
            ),
            DenseLayer(
                "dense2",
                rng.normal(size=(128, 10)).astype(np.float32),
                np.zeros(10, np.float32),
                "linear",
            ),
        )
    )


def best_time(function, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bare_metis(graph: DataflowGraph, count: int) -> None:
    import pymetis

    xadj, adjncy, eweights = _csr(graph)
    pymetis.part_graph(
        count,
        adjacency=pymetis.CSRAdjacency(xadj, adjncy),
        eweights=eweights,
        vweights=np.maximum(graph.macs(), 1).tolist(),
        options=pymetis.Options(seed=0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    preset = Hardware.load(PRESET)
    for granularity in ("neuron", "pixel"):
        graph = DataflowGraph.from_model(model(), granularity)
        for count in (2, 4, 8, 16):
            hardware = preset.with_nodes(count)
            peer = traffic(graph, hardware, fold(graph, hardware, "balanced"))
            bare, _ = best_time(lambda g=graph, c=count: bare_metis(g, c), args.repeat)
            for strategy in ("layer", "balanced", "metis", "greedy"):
                wall, mapping = best_time(
                    lambda s=strategy, h=hardware, g=graph: fold(g, h, s), args.repeat
                )
                used = usage(graph, hardware, mapping)
                sent = traffic(graph, hardware, mapping)
                macs = used.macs
                line = {
                    "bench": "dataflow_fold",
                    "graph": f"784-128-10 {granularity}",
                    "vertices": len(graph),
                    "edges": graph.edge_count,
                    "hardware": hardware.name,
                    "nodes": count,
                    "strategy": strategy,
                    "wall_s": round(wall, 4),
                    "nodes_used": int((used.vertices > 0).sum()),
                    "cut_words": sent.words,
                    "word_hops": sent.word_hops,
                    "cut_vs_balanced": round(sent.words / peer.words, 3),
                    "word_hops_vs_balanced": round(sent.word_hops / peer.word_hops, 3),
                    "max_memory_words": int(used.memory_words.max()),
                    "macs_max_over_mean": round(float(macs.max() / macs.mean()), 3),
                    "wall_vs_bare_metis": round(wall / bare, 2) if strategy == "metis" else None,
                }
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
