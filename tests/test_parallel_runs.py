"""Parallel runs under the mpich wheel's mpiexec: the same output as the serial run, bit for bit.

Each test launches ``mpiexec -n R nnsim run ...`` as a user would and
compares what a user compares: the printed lines (epoch lines, predictions,
a digest of every component's final state), the statistics file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, checkpointed_run, example_args, make_idx_dataset, run_nnsim

MPIEXEC = Path(sys.executable).parent / "mpiexec"
PHOLD = "tests/models/phold_ring.py"
FASHION = "tests/models/fashion_digest.py"
EXAMPLE = "examples/fashion_mnist/nn.py"


def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'nnsim[mpi]')"
    if not MPIEXEC.exists():
        return f"the mpich wheel's mpiexec is not in {MPIEXEC.parent} (pip install 'nnsim[mpi]')"
    return None


pytestmark = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def mpirun(ranks: int, *args: str, env: dict | None = None, timeout: float = 90):
    """``mpiexec -n RANKS nnsim ARGS`` from the repository, as a user would run it."""
    return subprocess.run(
        [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "nnsim.cli", *args],
        cwd=REPO,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def outputs(result, statistics: Path) -> tuple[str, str]:
    assert result.returncode == 0, result.stderr
    return result.stdout, statistics.read_text()


PHOLD_RUN = ["--stop-at", "25ns"]
PHOLD_ARGS = ["--print-every", "4"]


@pytest.fixture(scope="module")
def phold_serial(tmp_path_factory) -> tuple[str, str]:
    statistics = tmp_path_factory.mktemp("serial") / "stats.json"
    result = run_nnsim("run", PHOLD, *PHOLD_RUN, f"--statistics={statistics}", "--", *PHOLD_ARGS)
    return outputs(result, statistics)


@pytest.mark.parametrize(
    ("ranks", "partitioner"),
    [(1, "linear"), (2, "linear"), (3, "roundrobin"), (3, "graph"), (2, "self")],
)
def test_phold_on_ranks_prints_and_counts_what_the_serial_run_does(
    tmp_path, phold_serial, ranks, partitioner
):
    statistics = tmp_path / "stats.json"
    placed = ["--ranks", str(ranks)] if partitioner == "self" else []
    result = mpirun(
        ranks,
        "run",
        PHOLD,
        *PHOLD_RUN,
        f"--partitioner={partitioner}",
        f"--statistics={statistics}",
        "--",
        *PHOLD_ARGS,
        *placed,
    )
    stdout, stats = outputs(result, statistics)
    assert "got token" in stdout and "digest" in stdout  # lines from handlers and from finish
    assert stdout == phold_serial[0]
    assert stats == phold_serial[1]


CHAIN = "tests/models/rank_chain.py"


@pytest.mark.parametrize(
    ("ranks", "layout", "down"),
    [(3, "chain", "6ns"), (3, "chain", "20ns"), (3, "island", "6ns"), (2, "pair", "6ns")],
)
def test_ranks_with_different_window_bounds_print_what_the_serial_run_does(
    tmp_path, ranks, layout, down
):
    """Each rank's window ends where it alone is safe (`ParallelRun._bound`): a rank no link
    reaches runs on alone, a relay's idle queue does not free the rank after it (the path
    from the rank before counts), and a rank's own tokens coming back bound it too. One
    event delivered past its rank's bound changes a printed line or its order."""
    args = ["--stop-at", "150ns"]
    options = ["--", f"--layout={layout}", f"--down-latency={down}"]
    serial_stats, parallel_stats = tmp_path / "serial.json", tmp_path / "parallel.json"
    serial = outputs(
        run_nnsim("run", CHAIN, *args, f"--statistics={serial_stats}", *options), serial_stats
    )
    assert serial[0].count(" ps hops ") > 700
    result = mpirun(
        ranks,
        "run",
        CHAIN,
        *args,
        "--partitioner=self",
        f"--statistics={parallel_stats}",
        *options,
    )
    assert outputs(result, parallel_stats) == serial


def test_a_different_seed_gives_different_output(phold_serial):
    result = mpirun(2, "run", PHOLD, *PHOLD_RUN, "--seed=5", "--", *PHOLD_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout != phold_serial[0]


def test_the_compiled_and_the_pure_python_queue_agree_in_parallel(tmp_path, phold_serial):
    statistics = tmp_path / "stats.json"
    result = mpirun(
        2,
        "run",
        PHOLD,
        *PHOLD_RUN,
        f"--statistics={statistics}",
        "--",
        *PHOLD_ARGS,
        env={"NNSIM_PURE_PYTHON": "1"},
    )
    assert outputs(result, statistics) == phold_serial


@pytest.mark.parametrize("primary", ["lp0", "lp4"])  # on rank 0, and on another rank
def test_a_run_ended_by_its_primary_component_ends_at_the_same_event(tmp_path, primary):
    """The other ranks stop exactly where serial stops: same counts, same final states."""
    args = ["--", "--print-every=3", "--primary-after=15", f"--primary-lp={primary}"]
    serial_stats, parallel_stats = tmp_path / "serial.json", tmp_path / "parallel.json"
    serial = outputs(run_nnsim("run", PHOLD, f"--statistics={serial_stats}", *args), serial_stats)
    for ranks in (2, 3):
        result = mpirun(ranks, "run", PHOLD, f"--statistics={parallel_stats}", *args)
        assert outputs(result, parallel_stats) == serial, f"{ranks} ranks"


def test_fashion_mnist_on_two_and_three_ranks_trains_and_predicts_as_serial(tmp_path, eval_folder):
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")]
    serial_stats = tmp_path / "serial.json"
    serial = outputs(run_nnsim("run", FASHION, f"--statistics={serial_stats}", *args), serial_stats)
    assert "Survey says" in serial[0] and "dense1: arrays" in serial[0]
    for ranks, partitioner in ((2, "linear"), (3, "roundrobin")):
        stats = tmp_path / f"{ranks}.json"
        result = mpirun(
            ranks, "run", FASHION, f"--partitioner={partitioner}", f"--statistics={stats}", *args
        )
        assert outputs(result, stats) == serial, f"{ranks} ranks, {partitioner}"


def test_each_rank_reports_its_rank_and_size_and_the_partition_is_written(tmp_path):
    partition = tmp_path / "partition.json"
    result = mpirun(
        3, "run", PHOLD, *PHOLD_RUN, "-v", f"--output-partition={partition}", "--", "--lps=6"
    )
    assert result.returncode == 0, result.stderr
    assert "# parallel run on 3 ranks: partitioner linear, 3 links cut, lookahead 1 ns" in (
        result.stdout
    )
    for rank in range(3):
        assert f"# rank {rank} of 3: 2 components," in result.stdout
    saved = json.loads(partition.read_text())
    assert saved["components"] == {f"lp{i}": i // 2 for i in range(6)}
    assert saved["lookahead_ps"] == 1000
    assert sorted(cut["name"] for cut in saved["cut_links"]) == [
        "lp1.right--lp2.left",
        "lp3.right--lp4.left",
        "lp5.right--lp0.left",
    ]


def test_a_zero_latency_link_between_ranks_is_refused_naming_it():
    result = mpirun(2, "run", PHOLD, *PHOLD_RUN, "--", "--zero-latency=lp2")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "nnsim: error: link 'lp2.right--lp3.left' crosses from rank 0 to rank 1 with latency 0: "
        "a parallel run needs a latency > 0 on every link between ranks; give the link a "
        "latency, or put both components on one rank (sim.place(name, group=...))"
    ]
    inside = mpirun(2, "run", PHOLD, *PHOLD_RUN, "--", "--zero-latency=lp1")  # within rank 0
    assert inside.returncode == 0, inside.stderr


def test_a_rank_that_raises_ends_every_rank_with_one_line():
    result = mpirun(3, "run", PHOLD, *PHOLD_RUN, "--", "--raise-in=lp4:3", timeout=60)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "nnsim: error: rank 2 of 3: RuntimeError: lp4 gave up after 3 tokens"
    ]
    assert "Simulation is complete" not in result.stdout


@pytest.mark.parametrize("background", [[], ["--checkpoint-async"]])
def test_a_rank_that_cannot_write_its_files_leaves_no_checkpoint_and_one_line(tmp_path, background):
    folder = tmp_path / "ckpt"
    result = mpirun(
        3,
        "run",
        PHOLD,
        *PHOLD_RUN,
        "--checkpoint-enable",
        "--checkpoint-period=5ns",
        *background,
        f"--checkpoint-dir=failing://{folder}",
        "--",
        "--failing-storage=1",
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"nnsim: error: rank 1 of 3: cannot write checkpoint '{folder}/checkpoint_1_5000' "
        f"(No space left on device); check the free space and permissions of '{folder}'"
    ]
    assert "Simulation is complete" not in result.stdout
    assert list(folder.iterdir()) == []  # nothing committed, no staging area left behind


def test_a_storage_other_ranks_cannot_reach_gets_the_same_files_through_rank_0(tmp_path):
    """memory:// and the like: rank 0 writes each rank's file from the bytes it sends."""
    period = [*PHOLD_RUN, "--checkpoint-enable", "--checkpoint-period=5ns"]
    shared, unshared = tmp_path / "shared", tmp_path / "unshared"
    for folder, scheme in ((shared, ""), (unshared, "unshared://")):
        result = mpirun(
            3,
            "run",
            PHOLD,
            *period,
            f"--checkpoint-dir={scheme}{folder}",
            "--",
            "--unshared-storage",
        )
        assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in shared.glob("checkpoint_*"))
    assert len(names) == 4 and names == sorted(p.name for p in unshared.glob("checkpoint_*"))
    for name in names:
        files = sorted(path.name for path in (shared / name).glob("tensors-*"))
        assert len(files) == 3
        assert files == sorted(path.name for path in (unshared / name).glob("tensors-*"))
        for file in files:
            assert (shared / name / file).read_bytes() == (unshared / name / file).read_bytes()
        mine, theirs = (
            json.loads((d / name / "manifest.json").read_text()) for d in (unshared, shared)
        )
        for key in ("files", "tensors", "components", "queue"):
            assert mine[key] == theirs[key], (name, key)


def test_a_serial_checkpoint_restarts_on_two_and_three_ranks_with_the_same_continuation(
    tmp_path, eval_folder
):
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")
    first = checkpointed_run(tmp_path / "checkpoints", args)[0]  # after epoch 0 of 2
    checkpoint = str(tmp_path / "checkpoints" / first)
    serial_stats = tmp_path / "serial.json"
    serial = outputs(run_nnsim("run", checkpoint, f"--statistics={serial_stats}"), serial_stats)
    assert serial[0].startswith("epoch 1 training:")
    for ranks in (2, 3):
        stats = tmp_path / f"{ranks}.json"
        result = mpirun(ranks, "run", checkpoint, f"--statistics={stats}")
        assert outputs(result, stats) == serial, f"{ranks} ranks"


def test_checkpoints_taken_on_three_ranks_are_the_serial_ones_and_restart_on_any_count(
    tmp_path, eval_folder
):
    """SST 16's N -> M matrix in small, all matching one reference (the serial restart):
    3 -> 1, 3 -> 2, 3 -> 3, and a checkpoint of the run restarted on 2 ranks -> 1, 3."""
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")]
    period = ["--checkpoint-enable", "--checkpoint-period=50us", "--checkpoint-every-epochs=1"]
    serial_dir, parallel_dir = tmp_path / "serial", tmp_path / "parallel"
    serial = run_nnsim("run", EXAMPLE, *period, f"--checkpoint-dir={serial_dir}", *args)
    parallel = mpirun(3, "run", EXAMPLE, *period, f"--checkpoint-dir={parallel_dir}", *args)
    assert serial.returncode == 0 and parallel.returncode == 0, parallel.stderr

    assert "# Simulation Checkpoint: Simulated Time 50 us" in parallel.stdout
    assert without_cpu_time(parallel.stdout) == without_cpu_time(serial.stdout)
    names = sorted(path.name for path in serial_dir.glob("checkpoint_*"))
    assert names == sorted(path.name for path in parallel_dir.glob("checkpoint_*"))
    assert len(names) == 5  # 3 by the period, 2 after the epochs
    for name in names:
        assert same_state(parallel_dir / name, serial_dir / name, ranks=3) == name
    middle = names[1]
    # The other readers see the 3 files as one checkpoint: verify, predict, load_model.
    from nnsim.interop.from_nnsim import load_nnsim

    verify = run_nnsim("checkpoint", "verify", str(parallel_dir / middle))
    assert verify.stdout.startswith(f"OK: {middle} (3 files,"), verify.stdout + verify.stderr
    predictions = [
        run_nnsim("predict", f"--checkpoint={d / middle}", f"--images={eval_folder}").stdout
        for d in (parallel_dir, serial_dir)
    ]
    assert "Survey says" in predictions[0] and predictions[0] == predictions[1]
    mine, theirs = load_nnsim(parallel_dir / middle), load_nnsim(serial_dir / middle)
    for a, b in zip(mine.layers, theirs.layers, strict=True):
        assert (a.weights == b.weights).all() and (a.biases == b.biases).all()

    def restarted(checkpoint: Path, ranks: int, *options: str) -> tuple[str, str]:
        stats = tmp_path / "stats.json"
        run = ["run", str(checkpoint), f"--statistics={stats}", *options]
        return outputs(run_nnsim(*run) if ranks == 1 else mpirun(ranks, *run), stats)

    reference = restarted(serial_dir / middle, 1)
    for ranks in (1, 2, 3):
        assert restarted(parallel_dir / middle, ranks) == reference, f"3 -> {ranks}"
    # A checkpoint of the run restarted on 2 ranks: 2 tensor files, restarts on 1 and 3.
    again_dir = tmp_path / "again"
    again = mpirun(2, "run", str(parallel_dir / middle), *period, f"--checkpoint-dir={again_dir}")
    assert again.returncode == 0, again.stderr
    assert without_cpu_time(again.stdout) == reference[0]
    later = sorted(again_dir.glob("checkpoint_*"), key=lambda path: int(path.name.split("_")[2]))
    assert len(later) == 3  # the rest of the period's and the last epoch's
    serial_later = next(serial_dir.glob(f"checkpoint_*_{later[0].name.split('_')[2]}"))
    # (metrics: a restarted run, serial too, knows no epoch's metrics before its next epoch)
    assert same_state(later[0], serial_later, ranks=2, metrics=False) == later[0].name
    reference = restarted(serial_later, 1)
    for ranks in (1, 3):
        assert restarted(later[0], ranks) == reference, f"3 -> 2 -> {ranks}"


def without_cpu_time(text: str) -> str:
    return re.sub(r"# Simulation Checkpoint: .*\n", "", text)


def same_state(parallel: Path, serial: Path, ranks: int, metrics: bool = True) -> str:
    """Check a checkpoint written on ``ranks`` ranks holds the serial one's state: one
    tensor file per rank, the same components, queue, reason, metrics and arrays."""
    from nnsim.checkpoint import open_checkpoint

    files = sorted(path.name for path in parallel.glob("tensors-*"))
    assert files == [f"tensors-rank{r:05d}-00000-of-00001.safetensors" for r in range(ranks)]
    (mine, my_tensors), (theirs, their_tensors) = (
        open_checkpoint(folder)[0].load(folder.name) for folder in (parallel, serial)
    )
    keys = ["components", "queue", "reason", "model", "simulated_time_ps"] + ["metrics"] * metrics
    for key in keys:
        assert mine[key] == theirs[key], (parallel.name, key)
    assert sorted(my_tensors) == sorted(their_tensors)
    for name, array in their_tensors.items():
        assert my_tensors[name].dtype == array.dtype and (my_tensors[name] == array).all(), name
    return parallel.name


def console_run(tmp_path: Path, commands: str, name: str = "commands.txt") -> list[str]:
    """``nnsim run`` arguments that replay ``commands`` in the console entered at 8 ns."""
    replay = tmp_path / name
    replay.write_text(commands)
    return ["run", PHOLD, "--stop-at=25ns", "--interactive-start=8ns", f"--replay={replay}"]


def test_the_console_at_a_sync_point_sees_and_sets_components_of_every_rank(tmp_path):
    """Driven from rank 0: the replayed session prints, changes and ends as the serial one."""
    commands = "print lp4/received\nset lp4/mean_delay 300\nrun 5ns\ntime\nprint lp1/received\n"
    stats = tmp_path / "stats.json"
    run = [*console_run(tmp_path, commands), f"--statistics={stats}", "--", *PHOLD_ARGS]
    serial = outputs(run_nnsim(*run), stats)
    assert "[8 ns] /> print lp4/received\nreceived = 7 (int)" in serial[0]
    assert "Entering interactive mode at time 13000\n  reason: run time elapsed" in serial[0]
    unchanged = run_nnsim(
        *console_run(tmp_path, commands.replace("set", "print"), "unchanged.txt"),
        "--",
        *PHOLD_ARGS,
    )
    assert unchanged.stdout.split("run 5ns")[1] != serial[0].split("run 5ns")[1]  # the set matters
    for ranks in (2, 3):  # lp4 is on rank 1, then on rank 2
        result = mpirun(ranks, *run)
        assert outputs(result, stats) == serial, f"{ranks} ranks"


TRACE_SESSION = (
    "trace lp4/received > 9 : 4 2 : lp4/received lp4/total : printTrace\n"
    "trace lp1/received > 5 : 3 1 : lp1/received : printTrace\n"
    "trace lp2/received > 3 : 2 1 : lp2/received : set lp2/mean_delay 200\n"
    "run 5ns\nprintTrace 0\nprintTrace 2\nwatchlist\nrun 3ns\nresetTrace 1\n"
)


@pytest.mark.parametrize("ranks", [2, 3])
def test_traces_print_on_rank_0_what_the_serial_console_prints_in_its_order(tmp_path, ranks):
    """Each trace samples where its LP runs (lp1 on rank 0; lp4 on rank 1 of 2, 2 of 3; lp2 on
    rank 0 of 2, 1 of 3); what fires prints in the run's lines, in serial order, the buffers
    come back for printTrace at the console, and the set action changes the run as serially."""
    stats = tmp_path / "stats.json"
    run = [*console_run(tmp_path, TRACE_SESSION), f"--statistics={stats}", "--", *PHOLD_ARGS]
    serial = outputs(run_nnsim(*run), stats)
    assert serial[0].count("trigger: ") > 10 and "buf[2] BE @10174 (+)" in serial[0]
    assert outputs(mpirun(ranks, *run), stats) == serial


def test_a_trace_action_that_needs_every_rank_at_one_event_is_refused_in_one_line(tmp_path):
    commands = (
        "trace lp1/received > 3 : 4 2 : lp1/received : printStatus\n"
        "trace lp1/received > 3 : 4 2 : lp1/received : set lp4/mean_delay 3\n"
    )
    result = mpirun(2, *console_run(tmp_path, commands), "--", *PHOLD_ARGS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        "Error: the trace action 'printStatus' prints every component's status at the event "
        "where it fires, and in a parallel run the other ranks' components are elsewhere in "
        "time then; use printTrace"
    ) in lines
    assert (
        "Error: the variables of 'lp1/received > 3' and its target lp4/mean_delay are on "
        "ranks 0, 1; "
        "in a parallel run a watchpoint's variables must be on one rank"
    ) in lines
    assert "Simulation is complete, simulated time: 25 ns" in lines


@pytest.mark.parametrize("ranks", [2, 3])
def test_shutdown_at_the_console_ends_every_rank_as_the_serial_shutdown(tmp_path, ranks):
    """complete and finish run on the console's state (a set on another rank's LP included),
    the same lines and statistics, exit code 0, no rank left waiting."""
    commands = "run 2ns\nset lp4/mean_delay 300\nshutdown\n"
    stats = tmp_path / "stats.json"
    run = [*console_run(tmp_path, commands), f"--statistics={stats}", "--", *PHOLD_ARGS]
    serial = outputs(run_nnsim(*run), stats)
    assert "[10 ns] /> shutdown\n" in serial[0] and "Simulation shut down at 10 ns\n" in serial[0]
    assert outputs(mpirun(ranks, *run, timeout=60), stats) == serial


def test_a_console_checkpoint_on_two_ranks_restarts_serially_and_on_three_as_the_run_goes_on(
    tmp_path, eval_folder
):
    """Each rank writes its own tensor file, rank 0 the manifest: the serial console's
    checkpoint, whose restart on 1 and 3 ranks prints the rest of the uninterrupted run."""
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")]
    replay = tmp_path / "commands.txt"
    replay.write_text("checkpoint in/the/middle\ncheckpoint mid\ncheckpoint mid\ncheckpoint\nrun\n")
    console = ["--interactive-start=70us", f"--replay={replay}", "--checkpoint-enable"]
    whole = run_nnsim("run", EXAMPLE, *args)
    serial_dir, parallel_dir = tmp_path / "serial", tmp_path / "parallel"
    serial = run_nnsim("run", EXAMPLE, *console, f"--checkpoint-dir={serial_dir}", *args)
    parallel = mpirun(2, "run", EXAMPLE, *console, f"--checkpoint-dir={parallel_dir}", *args)
    assert whole.returncode == serial.returncode == parallel.returncode == 0, parallel.stderr
    assert without_cpu_time(parallel.stdout).replace(str(parallel_dir), str(serial_dir)) == (
        without_cpu_time(serial.stdout)
    )
    lines = parallel.stdout.splitlines()
    assert "Error: invalid checkpoint name 'in/the/middle': use up to 200" in parallel.stdout
    assert (
        lines.count("wrote checkpoint mid") == 1
        and "wrote checkpoint checkpoint_2_70000000" in lines
    )
    assert (
        f"Error: a checkpoint named mid already exists in {parallel_dir}; choose another name"
        in lines
    )
    names = sorted(path.name for path in parallel_dir.glob("[cm]*"))
    assert names == sorted(path.name for path in serial_dir.glob("[cm]*"))
    assert names == ["checkpoint_2_70000000", "mid"]
    for name in names:
        assert same_state(parallel_dir / name, serial_dir / name, ranks=2) == name
    checkpoint = parallel_dir / "mid"
    restarts = [run_nnsim("run", str(checkpoint)), mpirun(3, "run", str(checkpoint))]
    for ranks, restart in zip((1, 3), restarts, strict=True):
        assert restart.returncode == 0, restart.stderr
        assert restart.stdout == restarts[0].stdout, f"{ranks} ranks"
    rest = restarts[0].stdout
    assert rest.count("\n") > 3 and whole.stdout.endswith(rest)
    assert rest.startswith("epoch") or "Survey says" in rest


WATCH_SESSION = (
    "watch lp4/received > 9\nrun\nprint lp4/received\nunwatch 0\n"
    "watch lp1/received > 12\nrun\nprint lp1/received\n"
    "watch lp1/received > 3 && lp4/received > 3\n"
)
ENTRY = re.compile(r"Entering interactive mode at time (\d+)\n  reason: (.*)")


def test_a_watchpoint_breaks_on_every_rank_at_the_sync_point_after_it_held(tmp_path):
    """lp4 runs on rank 1, lp1 on rank 0: each is checked where it runs; the console opens at
    the window end after the serial break, names both times, and the run ends as serially."""
    stats, plain = tmp_path / "stats.json", tmp_path / "plain.json"
    run = [*console_run(tmp_path, WATCH_SESSION), f"--statistics={stats}", "--", *PHOLD_ARGS]
    serial = run_nnsim(*run)
    assert serial.returncode == 0, serial.stderr
    serial_breaks = [int(t) for t, _ in ENTRY.findall(serial.stdout)[1:]]
    untouched = run_nnsim("run", PHOLD, *PHOLD_RUN, f"--statistics={plain}", "--", *PHOLD_ARGS)
    assert untouched.returncode == 0, untouched.stderr
    result = mpirun(2, *run)
    assert result.returncode == 0, result.stderr
    entries = ENTRY.findall(result.stdout)[1:]
    assert len(entries) == len(serial_breaks) == 2
    for (at, reason), index, held in zip(entries, (0, 1), serial_breaks, strict=True):
        trigger = ("lp4/received > 9", "lp1/received > 12")[index]
        assert reason == (
            f"watchpoint {index} ({trigger}) held at {held} ps; "
            f"stopped at the sync point after it, {at} ps"
        )
        assert int(at) >= held
    printed = re.findall(r"received = (\d+) \(int\)", result.stdout)
    assert int(printed[0]) > 9 and int(printed[1]) > 12
    assert (
        "Error: the variables of 'lp1/received > 3 && lp4/received > 3' are on ranks 0, 1; "
        "in a parallel run a watchpoint's variables must be on one rank"
    ) in result.stdout
    assert stats.read_text() == plain.read_text()  # watching changed nothing


MPIEXEC_NOTICE = re.compile(
    r"\[mpiexec@[^\]]+\] (Sending Ctrl-C to processes as requested|Press Ctrl-C again to "
    r"force abort)\n?"
)


def _rank_zero(mpiexec_pid: int) -> int:
    """The pid of rank 0 under ``mpiexec_pid`` (mpiexec -> hydra proxy -> ranks), from /proc."""
    pending = [mpiexec_pid]
    while pending:
        pid = pending.pop()
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        if b"PMI_RANK=0" in environ:
            return pid
        pending += [int(child) for child in children]
    raise AssertionError("rank 0 not found under mpiexec")


@pytest.mark.parametrize("target", ["mpiexec", "process group", "rank 0"])
def test_ctrl_c_opens_rank_0_s_console_at_the_next_sync_point_and_the_run_goes_on(tmp_path, target):
    """SIGINT to mpiexec (which passes it to every rank), to its whole process group (a
    terminal's Ctrl-C) or to rank 0 alone: the console opens on every rank, reads the
    commands waiting on standard input, and the run then ends as the serial run does."""
    stats, plain = tmp_path / "stats.json", tmp_path / "plain.json"
    long_run = ["run", PHOLD, "--stop-at=10us", "--", *PHOLD_ARGS]
    serial = run_nnsim(*long_run[:3], f"--statistics={plain}", *long_run[3:])
    assert serial.returncode == 0, serial.stderr
    process = subprocess.Popen(
        [
            str(MPIEXEC),
            "-n",
            "2",
            sys.executable,
            "-m",
            "nnsim.cli",
            *long_run[:3],
            f"--statistics={stats}",
            *long_run[3:],
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        process.stdin.write("time\nprint lp4/received\n")  # read once the console opens
        process.stdin.close()
        process.stdin = None
        first = process.stdout.readline()  # the run is under way
        assert first.startswith("lp"), first
        if target == "mpiexec":
            process.send_signal(signal.SIGINT)
        elif target == "process group":
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(_rank_zero(process.pid), signal.SIGINT)
        # Read on through the same buffered stream: communicate() would skip what readline
        # has buffered. A hang is killed, and then fails below.
        timer = threading.Timer(120, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        out, err = process.stdout.read(), process.stderr.read()
        process.wait()
        timer.cancel()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err
    # mpiexec writes its own notice into the same stream, sometimes inside a rank's line.
    out = MPIEXEC_NOTICE.sub("", first + out)
    entries = ENTRY.findall(out)
    assert entries and entries[0][1] == "interrupted (Ctrl-C)"
    at = int(entries[0][0])
    assert 0 < at < 10_000_000
    assert f"current time = {at} (" in out
    assert re.search(r"^received = \d+ \(int\)$", out, re.MULTILINE)
    assert "Simulation is complete, simulated time: 10 us" in out
    lines = [line for line in out.splitlines() if line.startswith("lp")]
    assert lines == [line for line in serial.stdout.splitlines() if line.startswith("lp")]
    assert stats.read_text() == plain.read_text()


def test_a_usage_error_under_mpiexec_is_printed_once():
    result = mpirun(2, "run", "--bogus")
    assert result.returncode == 2
    assert result.stderr.count("No such option: --bogus") == 1


def test_a_partition_file_rank_0_cannot_write_ends_every_rank_with_one_line(tmp_path):
    target = tmp_path / "missing" / "partition.json"
    result = mpirun(2, "run", PHOLD, *PHOLD_RUN, f"--output-partition={target}", timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"nnsim: error: cannot write '{target}': folder '{target.parent}' does not exist; "
        "create it or choose another path"
    ]


EXCHANGE = """
from nnsim.parallel import world
from nnsim.parallel.world import BLOCK_BYTES, MAX_BLOCK_BYTES
mpi = world()
inline = BLOCK_BYTES - 8 * 5  # the block less the sizes, the longest and the 2-number status
sizes = [0, 1, inline - 1, inline, inline + 1, 100_000, 5]
blocks = []
for size in sizes:  # every rank sends rank r a message of `size + r` bytes, twice in a row
    for _ in range(2):
        out = [bytes([mpi.rank, r]) * ((size + r) // 2) for r in range(mpi.size)]
        incoming, status = mpi.exchange(out, [mpi.rank, size])
        assert status == [[r, size] for r in range(mpi.size)], status
        want = [bytes([r, mpi.rank]) * ((size + mpi.rank) // 2) for r in range(mpi.size)]
        assert incoming == want, (size, [len(m) for m in incoming])
    blocks.append(mpi.block_bytes)
# A block grows to hold the longest message of the last exchange, and shrinks back.
grown = [BLOCK_BYTES] * 3 + [2 * BLOCK_BYTES] * 2 + [MAX_BLOCK_BYTES, BLOCK_BYTES]
assert blocks == grown, blocks
import sys
sys.stdout.write(f"rank {mpi.rank} ok\\n")  # one write: mpiexec may interleave the ranks' writes
sys.stdout.flush()
"""


def test_the_exchange_carries_messages_inline_and_past_its_block_size():
    """Small messages travel with the status in one collective, larger ones in a second;
    the block then grows (on every rank alike) to hold them, and shrinks back."""
    result = subprocess.run(
        [str(MPIEXEC), "-n", "3", sys.executable, "-c", EXCHANGE],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    # mpiexec forwards the ranks' output as it comes: count the reports, not the lines
    assert sorted(re.findall(r"rank (\d) ok", result.stdout)) == ["0", "1", "2"], result.stdout


def test_wall_clock_checkpoints_stop_every_rank_at_one_point_and_continue_as_the_run_did(
    tmp_path, eval_folder
):
    """Rank 0's clock decides when; every rank stops at the same sync point, so the
    checkpoint holds one consistent state, and restarting it (1 or 2 ranks) prints
    exactly what the run printed after it."""
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=30, test_per_class=5)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=4", "--hiddenLayerSize=64")]
    folder = tmp_path / "ckpt"
    wall = mpirun(
        2,
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-wall-period=0.1",
        f"--checkpoint-dir={folder}",
        *args,
    )
    assert wall.returncode == 0, wall.stderr
    straight = run_nnsim("run", EXAMPLE, *args)
    assert without_cpu_time(wall.stdout) == straight.stdout  # checkpoints change nothing
    lines = wall.stdout.splitlines(keepends=True)
    marks = [i for i, line in enumerate(lines) if line.startswith("# Simulation Checkpoint")]
    assert marks, "the run was too short for a wall-clock checkpoint"
    first = sorted(folder.glob("checkpoint_1_*"))[0]
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["reason"] == "wall"
    assert sorted(p.name for p in first.glob("tensors-*"))[-1].startswith("tensors-rank00001")
    after = without_cpu_time("".join(lines[marks[0] + 1 :]))
    assert run_nnsim("run", str(first)).stdout == after
    assert mpirun(2, "run", str(first)).stdout == after


def test_background_checkpoints_on_three_ranks_are_the_serial_ones(tmp_path, eval_folder):
    """--checkpoint-async: each rank writes in a thread while the windows go on."""
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")]
    period = ["--checkpoint-enable", "--checkpoint-period=50us", "--checkpoint-every-epochs=1"]
    serial_dir, parallel_dir = tmp_path / "serial", tmp_path / "parallel"
    serial = run_nnsim("run", EXAMPLE, *period, f"--checkpoint-dir={serial_dir}", *args)
    parallel = mpirun(
        3, "run", EXAMPLE, *period, "--checkpoint-async", f"--checkpoint-dir={parallel_dir}", *args
    )
    assert parallel.returncode == 0, parallel.stderr
    assert without_cpu_time(parallel.stdout) == without_cpu_time(serial.stdout)
    names = sorted(path.name for path in serial_dir.glob("checkpoint_*"))
    assert len(names) == 5
    assert names == sorted(path.name for path in parallel_dir.glob("checkpoint_*"))
    for name in names:
        assert same_state(parallel_dir / name, serial_dir / name, ranks=3) == name
    assert (parallel_dir / "latest").read_text() == (serial_dir / "latest").read_text()


def test_the_event_trace_of_a_parallel_run_is_one_file_with_a_process_per_rank(tmp_path):
    """The serial trace's slices, each under the pid of the rank that ran it (Perfetto
    shows one process per rank, a track per component)."""
    serial, parallel = tmp_path / "serial.json", tmp_path / "parallel.json"
    assert run_nnsim("run", PHOLD, *PHOLD_RUN, f"--trace-events={serial}").returncode == 0
    result = mpirun(3, "run", PHOLD, *PHOLD_RUN, f"--trace-events={parallel}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parallel.json", "serial.json"]
    mine, theirs = (json.loads(path.read_text())["traceEvents"] for path in (parallel, serial))
    names = {e["pid"]: e["args"]["name"] for e in mine if e["name"] == "process_name"}
    assert names == {1: "rank 0", 2: "rank 1", 3: "rank 2"}
    tracks = {(e["pid"], e["args"]["name"]) for e in mine if e["name"] == "thread_name"}
    assert tracks == {(1 + i // 2, f"lp{i} (test.RingLP)") for i in range(6)}  # linear

    def slices(events: list[dict]) -> list[tuple]:
        return sorted(
            (e["tid"], e["ts"], e["dur"], e["name"], e["args"].get("port"))
            for e in events
            if e["ph"] == "X"
        )

    assert slices(mine) == slices(theirs) and len(slices(mine)) > 50
    assert {e["pid"] for e in mine if e["ph"] == "X" and e["tid"] == 6} == {3}  # lp5: rank 2
