"""`bloomkit finetune self-instruct | select | distill`: the cheap-tuning recipes, as command
functions (mounted into `bloomkit finetune`), each over ``run(config, run_dir)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from bloomkit.commands import RunDirOption, SetOption, config_or_exit, open_run
from bloomkit.console import summary_table


def _run(model: type[BaseModel], fn: Callable[[Any, Path], dict[str, Any]], name: str,
         config: Path, run_dir: Path, overrides: list[str] | None) -> None:  # fmt: skip
    """Load the config, run ``fn`` in the run dir, print its report; clear errors exit 2."""
    from bloomkit.finetuning.teacher import TeacherError

    cfg = config_or_exit(model, config, overrides)
    run = open_run(run_dir, f"finetune {name}", cfg)
    try:
        report = fn(cfg, run.path)
    except (FileNotFoundError, ValueError, TeacherError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    rows = [{"metric": k, "value": v} for k, v in report.items() if not isinstance(v, dict | list)]
    for cost in [report.get("teacher"), *report.get("references", [])]:
        if cost:
            rows += [{"metric": f"{cost['model']}: {k}", "value": cost[k]}
                     for k in ("spent_usd_this_run", "spent_usd_total", "reused", "failed")
                     if k in cost]  # fmt: skip
    summary_table(f"bloomkit finetune {name} — {run_dir}", rows)


ConfigArg = Annotated[Path, typer.Argument(help="Recipe config (YAML).")]


def self_instruct_command(
    config: ConfigArg, run_dir: RunDirOption = Path("runs/self-instruct"),
    overrides: SetOption = None,
) -> None:  # fmt: skip
    """Seed tasks → teacher → new Alpaca-format instructions in any of the 46 languages, with
    multilingual filters, a spending cap and a journal (a rerun pays nothing twice). E.g.
    configs/finetune/self-instruct-demo.yaml."""
    from bloomkit.finetuning.self_instruct import SelfInstructConfig, self_instruct

    _run(SelfInstructConfig, self_instruct, "self-instruct", config, run_dir, overrides)


def select_command(
    config: ConfigArg, run_dir: RunDirOption = Path("runs/select"), overrides: SetOption = None
) -> None:
    """s1-style selection: quality, difficulty (reference models get it wrong), diversity
    (taxonomy domains, longer traces favoured); writes the chosen set with reasons."""
    from bloomkit.finetuning.select import SelectConfig, select

    _run(SelectConfig, select, "select", config, run_dir, overrides)


def distill_command(
    config: ConfigArg, run_dir: RunDirOption = Path("runs/distill"), overrides: SetOption = None
) -> None:
    """Teacher traces (thinking + answer) for questions → SFT rows (chat or Alpaca) with the
    student's thinking delimiters."""
    from bloomkit.finetuning.distill import DistillConfig, distill

    _run(DistillConfig, distill, "distill", config, run_dir, overrides)
