"""`nnsim sweep --executor mpi`: the same table and CSV as local workers, from MPI processes.

Both ways of getting MPI workers are exercised: spawned by a plain ``nnsim
sweep --executor mpi`` (MPI_Comm_spawn), and launched by ``mpiexec -n 3
python -m mpi4py.futures -m nnsim.cli sweep …``. Every subprocess has a
timeout, so a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.util import find_spec
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, example_args, run_nnsim

from nnsim.sweep import _Job, run_point

RATE = "loss/optimizer/learning_rate"
TIMEOUT = 60  # seconds; each command here takes about one

SCRIPTS = sysconfig.get_path("scripts")
MPIEXEC = shutil.which("mpiexec", path=SCRIPTS) or shutil.which("mpiexec")

requires_mpi = pytest.mark.skipif(
    find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install 'nnsim[mpi]'",
)

LAUNCH = [MPIEXEC, "-n", "3", sys.executable, "-m", "mpi4py.futures", "-m", "nnsim.cli"]

# A model script that says where it runs, as its error (which the table shows).
WHERE = """\
import os

from mpi4py import MPI
from nnsim.errors import ModelScriptError

world = MPI.COMM_WORLD
spawned = MPI.Comm.Get_parent() != MPI.COMM_NULL
raise ModelScriptError(
    f"rank {world.Get_rank()} of {world.Get_size()}, spawned {spawned}, "
    f"OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS')}"
)
"""


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, **options
    )


def sweep(*options: str, dataset: Path, eval_folder: Path, launch: list[str] | None = None):
    """``nnsim sweep`` of the example on the toy dataset (under ``launch``, when given)."""
    args = example_args(dataset, eval_folder, "--epochs=2")
    command = ["sweep", EXAMPLE, *options, "--", *args]
    if launch is None:
        return run_nnsim(*command, timeout=TIMEOUT)
    return run([*launch, *command])


def without_wall_time(table: str) -> list[str]:
    """The printed table's lines, the wall-time column blanked (it is 6 wide: "wall s")."""
    lines = table.splitlines()
    start = lines[0].index("wall s")
    return [line[:start] + line[start + 6 :] for line in lines]


def csv_without_wall_time(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    column = lines[0].split(",").index("wall_seconds")
    return [",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in lines]


@requires_mpi
@pytest.mark.parametrize("launched", [False, True], ids=["spawned", "launched"])
def test_mpi_workers_print_the_same_table_and_csv_as_local_ones(
    launched, toy_dataset, eval_folder, tmp_path
):
    values = f"--set={RATE}=0.01,0.001,0.05"
    local = sweep(
        values, f"--csv={tmp_path / 'local.csv'}", dataset=toy_dataset, eval_folder=eval_folder
    )
    assert local.returncode == 0, local.stderr
    mpi_options = [values, "--executor=mpi", f"--csv={tmp_path / 'mpi.csv'}"]
    if not launched:
        mpi_options.append("--jobs=2")
    mpi = sweep(
        *mpi_options,
        dataset=toy_dataset,
        eval_folder=eval_folder,
        launch=LAUNCH if launched else None,
    )
    assert mpi.returncode == 0, mpi.stderr
    assert mpi.stderr == ""
    assert len(mpi.stdout.splitlines()) == 4  # the header and one row per value
    assert without_wall_time(mpi.stdout) == without_wall_time(local.stdout)
    assert csv_without_wall_time(tmp_path / "mpi.csv") == csv_without_wall_time(
        tmp_path / "local.csv"
    )


@requires_mpi
def test_a_replay_template_travels_as_text_to_mpi_workers(toy_dataset, eval_folder, tmp_path):
    template = tmp_path / "rate.in"
    template.write_text("cd loss/optimizer\nset learning_rate {value}\nrun\n")
    options = [f"--replay-template={template}", "--values=0.01,0.001", "--jobs=2"]
    data = {"dataset": toy_dataset, "eval_folder": eval_folder}
    local = sweep(*options, f"--csv={tmp_path / 'local.csv'}", **data)
    mpi = sweep(*options, "--executor=mpi", f"--csv={tmp_path / 'mpi.csv'}", **data)
    assert local.returncode == 0 and mpi.returncode == 0, local.stderr + mpi.stderr
    assert without_wall_time(mpi.stdout) == without_wall_time(local.stdout)
    assert csv_without_wall_time(tmp_path / "mpi.csv") == csv_without_wall_time(
        tmp_path / "local.csv"
    )


def where(table: str) -> list[str]:
    """What the WHERE script said in each row of the table."""
    return sorted(line.split("error: ")[1] for line in table.splitlines()[1:])


@requires_mpi
def test_the_runs_happen_in_mpi_workers_spawned_or_launched(tmp_path):
    script = tmp_path / "where.py"
    script.write_text(WHERE)
    spawned = run_nnsim(
        "sweep", str(script), "--set=x=1,2", "--executor=mpi", "--jobs=2", timeout=TIMEOUT
    )
    assert spawned.returncode == 1, spawned.stderr
    said = where(spawned.stdout)
    assert len(said) == 2
    for line in said:  # a worker of its own world, spawned by the sweep, with one BLAS thread
        assert line.startswith("rank ") and " of 2, spawned True" in line, line
        assert line.endswith("OMP_NUM_THREADS 1")
    assert {line.split(",")[0] for line in said} <= {"rank 0 of 2", "rank 1 of 2"}

    launched = run([*LAUNCH, "sweep", str(script), "--set=x=1,2,3,4", "--executor=mpi"])
    assert launched.returncode == 1
    assert launched.stderr.startswith("nnsim: error: 4 of 4 runs failed\n")
    ranks = {line.split(",")[0] for line in where(launched.stdout)}
    assert ranks <= {"rank 1 of 3", "rank 2 of 3"} and ranks  # rank 0 runs the sweep itself
    for line in where(launched.stdout):
        assert ", spawned False" in line and line.endswith("OMP_NUM_THREADS 1"), line


@requires_mpi
def test_mpiexec_without_mpi4py_futures_or_with_jobs_is_refused_in_one_line(toy_dataset):
    plain = run([MPIEXEC, "-n", "2", sys.executable, "-m", "nnsim.cli", "sweep", EXAMPLE,
                 f"--set={RATE}=0.01", "--executor=mpi"])  # fmt: skip
    assert plain.returncode == 1
    lines = plain.stderr.splitlines()
    assert len(lines) == 1  # under mpiexec rank 0 speaks for every rank (nnsim.cli.main)
    assert lines[0].startswith("nnsim: error: nnsim sweep --executor mpi under mpiexec needs")
    assert "python -m mpi4py.futures -m nnsim.cli sweep" in lines[0]

    jobs = run([*LAUNCH, "sweep", EXAMPLE, f"--set={RATE}=0.01", "--executor=mpi", "--jobs=2"])
    assert jobs.returncode == 1
    # mpi4py.futures ends the job with MPI_Abort after a failure, and MPICH says so on a line
    # of its own ("Abort(1) on node 0 …") after nnsim's.
    assert jobs.stderr.splitlines()[0] == (
        "nnsim: error: --jobs does not apply under python -m mpi4py.futures: the workers are "
        "the 2 ranks besides rank 0 (set their number with mpiexec -n)"
    )
    assert "Traceback" not in jobs.stderr


def cli_with(patch: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``nnsim ARGS`` in a fresh Python after running ``patch`` (to take something away)."""
    code = f"import sys\n{patch}\nfrom nnsim.cli.main import main\nsys.argv[1:] = {list(args)!r}\nmain()"
    return run([sys.executable, "-c", code], env=env)


def test_without_mpi4py_the_mpi_executor_is_one_line_and_nnsim_still_imports():
    result = cli_with(
        "sys.modules['mpi4py'] = None  # import mpi4py raises ImportError",
        "sweep",
        EXAMPLE,
        f"--set={RATE}=0.01",
        "--executor=mpi",
    )
    assert result.returncode == 1
    assert result.stderr == "nnsim: error: --executor mpi needs mpi4py: pip install 'nnsim[mpi]'\n"
    assert result.stdout == ""


@requires_mpi
def test_spawning_without_an_mpiexec_is_refused_in_one_line_instead_of_hanging():
    # MPICH's singleton spawn without mpiexec on PATH fails an assertion and hangs.
    path = os.pathsep.join(p for p in ("/usr/bin", "/bin") if not shutil.which("mpiexec", path=p))
    result = cli_with(
        "import sysconfig; sysconfig.get_path = lambda *args, **kwargs: '/nonexistent'",
        "sweep",
        EXAMPLE,
        f"--set={RATE}=0.01",
        "--executor=mpi",
        env={**os.environ, "PATH": path},
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnsim: error: --executor mpi cannot spawn workers: MPI spawn")
    assert lines[0].endswith(
        "mpiexec -n K python -m mpi4py.futures -m nnsim.cli sweep … --executor mpi"
    )


def test_a_sweep_point_goes_to_a_worker_and_back_as_plain_data(toy_dataset, eval_folder):
    job = _Job(0, "0.01", EXAMPLE, example_args(toy_dataset, eval_folder, "--epochs=1"), 0, RATE)
    point = json.loads(json.dumps(vars(job)))  # JSON holds builtins only
    answer = run_point(point)
    assert json.loads(json.dumps(answer)) == answer
    assert answer["error"] is None and answer["val_acc"] > 0
    assert [prediction["image"][-10:] for prediction in answer["predictions"]] == [
        "class0.png",
        "class1.png",
    ]
