"""The ``bloomkit`` console command: one subcommand group per stage, mounted from the stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import bloomkit
from bloomkit.commands import RunDirOption, SetOption, exit_on_config_error, open_run
from bloomkit.console import setup_logging
from bloomkit.data_tooling.cli import app as data_app
from bloomkit.eval.cli import app as eval_app
from bloomkit.eval.cli import leaderboard_app
from bloomkit.finetuning.cli import app as finetune_app
from bloomkit.finetuning.serve_cli import generate_command, serve_command
from bloomkit.pretraining.cli import app as pretrain_app
from bloomkit.pretraining.cli import export_app, import_app
from bloomkit.slurm.cli import app as slurm_app

app = typer.Typer(
    name="bloomkit",
    help="Build, train, tune and evaluate BLOOM-style multilingual language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(pretrain_app, name="pretrain")
app.add_typer(finetune_app, name="finetune")
app.add_typer(eval_app, name="eval")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(slurm_app, name="slurm")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.command("serve")(serve_command)
app.command("generate")(generate_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"bloomkit {bloomkit.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only, no bars.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show it.")
    ] = False,
) -> None:
    """Build, train, tune and evaluate BLOOM-style multilingual language models."""
    setup_logging(quiet)


@app.command()
def demo(
    config: Annotated[Path, typer.Option(help="Demo config.")] = Path("configs/demo.yaml"),
    run_dir: RunDirOption = Path("runs/demo"),
    overrides: SetOption = None,
) -> None:
    """Run the whole pipeline on the shipped multilingual sample (CPU, minutes)."""
    from bloomkit.demo import load_demo_config, plan_demo, run_demo

    with exit_on_config_error():  # every stage's config, before the run directory exists
        cfg = load_demo_config(config, overrides or [])
        plan = plan_demo(cfg, run_dir.resolve())
    run_demo(plan, open_run(run_dir, "demo", cfg))
