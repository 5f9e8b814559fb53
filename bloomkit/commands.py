"""Helpers every stage CLI uses: load a config or exit with its problems, open a run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel

from bloomkit.config import ConfigError, load_config
from bloomkit.console import console, log_to_file
from bloomkit.rundir import RunDir

ModelT = TypeVar("ModelT", bound=BaseModel)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: --set pretrain.lr=1e-4 (repeatable)."),
]
RunDirOption = Annotated[
    Path, typer.Option("--run-dir", help="Run directory (created or resumed).")
]


def config_or_exit(model: type[ModelT], path: Path, overrides: list[str] | None) -> ModelT:
    """Load and validate a config; on problems print them all and exit with status 2."""
    try:
        return load_config(model, path, overrides or [])
    except ConfigError as err:
        console.print(f"[bold red]invalid config[/] ({len(err.problems)} problem(s)):")
        for problem in err.problems:
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def open_run(path: Path, command: str, config: BaseModel | None) -> RunDir:
    """Create or resume a run directory and send the log to ``logs/bloomkit.log`` in it."""
    run = RunDir(path, command, config)
    log_to_file(run.path / "logs" / "bloomkit.log")
    return run
