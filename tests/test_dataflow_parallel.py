"""Dataflow runs under ``mpiexec -n R``: each hardware node on a rank, the serial result bit for bit.

``nnsim dataflow run`` launched by the mpich wheel's mpiexec, as a user
would: the summary, the four CSV reports and the statistics must be the
serial run's, byte for byte, on 2 and 3 ranks and for two foldings; a
different seed with bit flips must change them (so the identity can fail).
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO, make_idx_dataset, run_nnsim
from test_cli_dataflow import make_case, write_model
from test_parallel_runs import _mpi_missing, mpirun

from nnsim.dataflow.hardware import Hardware

pytestmark = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))

REPORTS = ("nodes.csv", "links.csv", "layers.csv", "predictions.csv")


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    return make_case(tmp_path_factory.mktemp("dataflow"), test_per_class=2)


def arguments(case: dict, fold: str, out: str, *extra: str) -> list[str]:
    return [
        "dataflow",
        "run",
        "--weights",
        str(case["weights"]),
        "--hardware",
        str(case["hardware"]),
        "--images",
        str(case["images"]),
        "--fold",
        fold,
        "--nodes",
        "4",
        "--output",
        str(case["dir"] / out),
        "--statistics",
        str(case["dir"] / out / "stats.json"),
        *extra,
    ]


def outcome(case: dict, result, out: str) -> dict[str, str]:
    """What a user compares: the summary (less the wall time and the files' names) and the files."""
    assert result.returncode == 0, result.stderr
    lines = [
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("events ", "wrote ", "#"))
    ]
    files = {name: (case["dir"] / out / name).read_text() for name in (*REPORTS, "stats.json")}
    return {"summary": "\n".join(lines), **files}


def serial(case: dict, fold: str, *extra: str) -> dict[str, str]:
    """The serial run's outcome (run once per module and configuration)."""
    out = f"serial-{fold}-{'-'.join(extra)}"
    if out not in case:
        (case["dir"] / out).mkdir()
        done = run_nnsim(*arguments(case, fold, out, *extra), cwd=case["dir"])
        case[out] = outcome(case, done, out)
    return case[out]


def parallel(case: dict, ranks: int, fold: str, *extra: str) -> dict[str, str]:
    out = f"ranks{ranks}-{fold}-{'-'.join(extra)}"
    (case["dir"] / out).mkdir()
    return outcome(case, mpirun(ranks, *arguments(case, fold, out, *extra)), out)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("fold", ["balanced", "layer"])
def test_a_parallel_dataflow_run_reports_what_the_serial_run_does(case, fold, ranks):
    reference = serial(case, fold)
    assert "accuracy" in reference["summary"] and reference["predictions.csv"].count("\n") == 21
    assert parallel(case, ranks, fold) == reference


def test_bit_flips_are_the_serial_ones_and_another_seed_gives_other_ones(case):
    flips = ("--corrupt-rate", "0.002")
    reference = serial(case, "balanced", *flips)
    same = parallel(case, 2, "balanced", *flips)
    other = parallel(case, 2, "balanced", *flips, "--seed", "7")
    assert same == reference
    assert other["nodes.csv"] != reference["nodes.csv"]  # Bits Flipped differ
    flipped = json.loads(reference["stats.json"])["statistics"]
    assert sum(node["bits_flipped"] for name, node in flipped.items() if "node" in name) > 0


def test_each_hardware_node_is_whole_on_one_rank_and_the_partition_says_so(case):
    out = "partition"
    (case["dir"] / out).mkdir()
    path = case["dir"] / "partition.json"
    args = arguments(case, "balanced", out, "--output-partition", str(path))
    assert outcome(case, mpirun(2, *args), out) == serial(case, "balanced")
    partition = json.loads(path.read_text())
    ranks = partition["components"]
    assert {ranks[f"node{n}"] for n in range(4)} == {0, 1}  # the nodes are spread
    cut = [link["name"] for link in partition["cut_links"]]
    # frame links (node0--node1) and credit links (node0~~node1) between nodes, nothing else
    assert any("--" in name for name in cut)
    assert all(re.fullmatch(r"node\d+(--|~~)node\d+", name) for name in cut)
    assert partition["lookahead_ps"] == 2000  # the hop latency: 2 cycles at 1 GHz


def test_the_pixel_graph_under_nnsim_run_on_three_ranks_is_the_serial_run(tmp_path):
    script = "examples/dataflow/model.py"
    args = ["--sizes", "16,8,4", "--limit", "6", "--nodes", "3", "--granularity", "pixel"]
    stats = {name: tmp_path / f"{name}.json" for name in ("serial", "parallel")}
    alone = run_nnsim("run", script, f"--statistics={stats['serial']}", "--", *args, cwd=REPO)
    spread = mpirun(3, "run", script, f"--statistics={stats['parallel']}", "--", *args)
    assert alone.returncode == 0 and spread.returncode == 0, spread.stderr
    assert spread.stdout == alone.stdout
    assert stats["parallel"].read_text() == stats["serial"].read_text()
    table = json.loads(stats["serial"].read_text())["statistics"]
    assert table["node2"]["tasks"] > 0


def test_partitioner_options_without_mpiexec_are_refused_in_one_line(case):
    done = run_nnsim(*arguments(case, "balanced", "x", "--partitioner", "graph"), cwd=case["dir"])
    assert done.returncode != 0
    assert "are for parallel runs" in done.stderr and "Traceback" not in done.stderr


def test_the_long_link_preset_fits_from_two_nodes_and_two_ranks_give_the_serial_reports(tmp_path):
    """boards8.toml (2 us board-to-board links), the preset parallel dataflow runs are for.

    A 784-128-10 model is refused on 1 node (memory) and runs on 2; on 8 nodes
    the lookahead is the 2 us hop and ``mpiexec -n 2`` gives the serial reports.
    """
    boards = REPO / "examples" / "dataflow" / "hw" / "boards8.toml"
    hardware = Hardware.load(boards)
    assert (hardware.count, hardware.topology, hardware.link.latency) == (8, "full", 2000)
    case = {
        "dir": tmp_path,
        "weights": write_model(tmp_path / "model.npz", hidden=128),
        "hardware": boards,
        "images": make_idx_dataset(tmp_path / "toy", train_per_class=1, test_per_class=5),
    }
    # arguments() ends in --output DIR --statistics FILE; the last --nodes counts
    one = run_nnsim(*arguments(case, "balanced", "one")[:-4], "--nodes", "1", cwd=tmp_path)
    assert one.returncode != 0 and "memory" in one.stderr and "Traceback" not in one.stderr
    two = run_nnsim(*arguments(case, "balanced", "two")[:-4], "--nodes", "2", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    out = {"serial": [*arguments(case, "balanced", "serial"), "--nodes", "8"]}
    out["ranks2"] = [*arguments(case, "balanced", "ranks2"), "--nodes", "8", "-v"]
    for name in out:
        (tmp_path / name).mkdir()
    reference = outcome(case, run_nnsim(*out["serial"], cwd=tmp_path), "serial")
    spread = mpirun(2, *out["ranks2"], "--output-partition", str(tmp_path / "partition.json"))
    assert "lookahead 2 us" in spread.stdout
    assert reference["predictions.csv"].count("\n") == 51
    assert outcome(case, spread, "ranks2") == reference
