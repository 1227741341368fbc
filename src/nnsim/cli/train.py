"""``nnsim train``: train from a TOML config into a run folder, or resume one."""

from __future__ import annotations

import click

from nnsim.errors import NnsimError


@click.command(
    "train",
    epilog=(
        "Examples: nnsim train examples/fashion_mnist/train.toml --max-epochs 3\n\n"
        "nnsim train train.toml --set training.optimizer.beta_2=0.99 --run-name try-beta\n\n"
        "nnsim train --resume runs/mlp-128x128_fashion-mnist_2025-01-31_120000"
    ),
)
@click.argument("config", required=False, metavar="[CONFIG.toml]")
@click.option("--max-epochs", type=int, metavar="N", help="training.epochs")
@click.option("--learning-rate", type=float, metavar="LR", help="training.optimizer.learning_rate")
@click.option("--batch-size", type=int, metavar="N", help="training.batch_size")
@click.option("--seed", type=int, metavar="N", help="training.seed")
@click.option("--project-dir", metavar="DIR", help="output.project_dir: where run folders go")
@click.option("--run-name", metavar="NAME", help="output.run_name: the run folder's name")
@click.option(
    "--set",
    "sets",
    metavar="KEY=VALUE",
    multiple=True,
    help="Set any config key, e.g. training.optimizer.beta_2=0.99 (repeatable).",
)
@click.option(
    "--resume",
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint (with its own config).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the final summary.")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors.")
@click.pass_context
def train(
    ctx,
    config,
    max_epochs,
    learning_rate,
    batch_size,
    seed,
    project_dir,
    run_name,
    sets,
    resume,
    quiet,
    debug,
) -> None:
    """Train the model a TOML config describes, into a new run folder.

    CONFIG.toml is needed unless --resume is given (without one nnsim does not
    guess a job: examples/fashion_mnist/train.toml is the README's example,
    with every key). Values come from the built-in defaults, then CONFIG.toml,
    then the flags below (--set last). The run folder
    <project_dir>/<model>_<dataset>_<YYYY-MM-DD_HHMMSS>/ gets config.toml,
    checkpoints/ (with best and last), metrics.csv, tensorboard/,
    plots/training.png and predictions.csv. On a terminal, progress bars show
    epochs and steps; otherwise the run prints its epoch lines.
    """
    from nnsim.train import load_config
    from nnsim.train import resume as resume_run
    from nnsim.train import train as train_run
    from nnsim.train.train import summary

    if debug:
        ctx.find_root().meta["debug"] = True
    flags = {
        "training.epochs": max_epochs,
        "training.optimizer.learning_rate": learning_rate,
        "training.batch_size": batch_size,
        "training.seed": seed,
        "output.project_dir": project_dir,
        "output.run_name": run_name,
    }
    progress = "quiet" if quiet else "auto"
    if resume:
        given = [name for name, value in flags.items() if value is not None]
        if config or given or sets:
            raise NnsimError(
                "--resume continues a run with the config in its folder; "
                "drop CONFIG, the overrides and --set (or start a new run)"
            )
        result = resume_run(resume, progress=progress)
        resolved = load_config(result.run_dir / "config.toml")
    else:
        if not config:
            raise click.UsageError(
                "give a CONFIG.toml, e.g. 'nnsim train examples/fashion_mnist/train.toml' "
                "(the README's example, every key explained), or --resume RUN_DIR",
                ctx=ctx,
            )
        resolved = load_config(config, flags=flags, sets=sets)
        result = train_run(resolved, progress=progress)
    for line in summary(result, resolved):
        click.echo(line)
