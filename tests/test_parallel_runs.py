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


def test_options_a_parallel_run_does_not_support_are_refused_in_one_line(tmp_path):
    for options, message in (
        (["--checkpoint-enable", "--checkpoint-wall-period=5"], "--checkpoint-wall-period is"),
        (["--checkpoint-enable", "--checkpoint-async"], "--checkpoint-async is not available"),
        (["--trace-events=trace.json"], "--trace-events is not available in parallel runs"),
    ):
        result = mpirun(2, "run", PHOLD, *options, f"--checkpoint-dir={tmp_path}")
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


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
    """SST 16's N -> M matrix in small: 3 -> 1, 3 -> 2, 3 -> 3 all continue as serial does."""
    dataset = make_idx_dataset(tmp_path / "toy", train_per_class=6, test_per_class=3)
    args = ["--", *example_args(dataset, eval_folder, "--epochs=2", "--batchSize=16")]
    period = ["--checkpoint-enable", "--checkpoint-period=50us", "--checkpoint-every-epochs=1"]
    serial_dir, parallel_dir = tmp_path / "serial", tmp_path / "parallel"
    serial = run_nnsim("run", EXAMPLE, *period, f"--checkpoint-dir={serial_dir}", *args)
    parallel = mpirun(3, "run", EXAMPLE, *period, f"--checkpoint-dir={parallel_dir}", *args)
    assert serial.returncode == 0 and parallel.returncode == 0, parallel.stderr

    def without_cpu_time(text: str) -> str:
        return re.sub(r" \(Real CPU time since last checkpoint .*\)", "", text)

    assert "# Simulation Checkpoint: Simulated Time 50 us" in parallel.stdout
    assert without_cpu_time(parallel.stdout) == without_cpu_time(serial.stdout)
    names = sorted(path.name for path in serial_dir.glob("checkpoint_*"))
    assert names == sorted(path.name for path in parallel_dir.glob("checkpoint_*"))
    assert len(names) == 5  # 3 by the period, 2 after the epochs
    for name in names:
        mine, theirs = (
            json.loads((d / name / "manifest.json").read_text()) for d in (parallel_dir, serial_dir)
        )
        for key in ("components", "queue", "reason", "metrics"):
            assert mine[key] == theirs[key], (name, key)
        tensors = [
            next((d / name).glob("tensors-*")).read_bytes() for d in (parallel_dir, serial_dir)
        ]
        assert tensors[0] == tensors[1]
    middle = names[1]
    reference_stats = tmp_path / "reference.json"
    reference = outputs(
        run_nnsim("run", str(serial_dir / middle), f"--statistics={reference_stats}"),
        reference_stats,
    )
    stats = tmp_path / "stats.json"
    restarted = outputs(
        run_nnsim("run", str(parallel_dir / middle), f"--statistics={stats}"), stats
    )
    assert restarted == reference, "3 -> 1"
    for ranks in (2, 3):
        result = mpirun(ranks, "run", str(parallel_dir / middle), f"--statistics={stats}")
        assert outputs(result, stats) == reference, f"3 -> {ranks}"


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


def test_the_console_of_a_parallel_run_refuses_traces_in_one_line(tmp_path):
    commands = "trace lp1/received > 3 : 4 2 : lp1/received : printTrace\n"
    result = mpirun(2, *console_run(tmp_path, commands), "--", *PHOLD_ARGS)
    assert result.returncode == 0, result.stderr
    assert "Error: 'trace' is not available in parallel runs yet" in result.stdout.splitlines()
    assert "Simulation is complete, simulated time: 25 ns" in result.stdout


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
    entries = ENTRY.findall(out)
    assert entries and entries[0][1] == "interrupted (Ctrl-C)"
    at = int(entries[0][0])
    assert 0 < at < 10_000_000
    assert f"current time = {at} (" in out
    assert re.search(r"^received = \d+ \(int\)$", out, re.MULTILINE)
    assert "Simulation is complete, simulated time: 10 us" in out
    lines = [line for line in (first + out).splitlines() if line.startswith("lp")]
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
from nnsim.parallel.world import BLOCK_BYTES
mpi = world()
inline = BLOCK_BYTES - 8 * 4  # the block less the sizes and the 2-number status
sizes = [0, 1, inline - 1, inline, inline + 1, 100_000]
for size in sizes:  # every rank sends rank r a message of `size + r` bytes, twice in a row
    for _ in range(2):
        out = [bytes([mpi.rank, r]) * ((size + r) // 2) for r in range(mpi.size)]
        incoming, status = mpi.exchange(out, [mpi.rank, size])
        assert status == [[r, size] for r in range(mpi.size)], status
        want = [bytes([r, mpi.rank]) * ((size + mpi.rank) // 2) for r in range(mpi.size)]
        assert incoming == want, (size, [len(m) for m in incoming])
print("rank", mpi.rank, "ok")
"""


def test_the_exchange_carries_messages_inline_and_past_its_block_size():
    """Small messages travel with the status in one collective, larger ones in a second."""
    result = subprocess.run(
        [str(MPIEXEC), "-n", "3", sys.executable, "-c", EXCHANGE],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:3]) == [f"rank {r} ok" for r in range(3)]
