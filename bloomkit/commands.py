"""Helpers every stage CLI uses: load a config or exit with its problems, open a run dir."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
TaskOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        envvar="BLOOMKIT_TASK_ID",
        help="Work only on the units (shards, eval tasks) whose index is TASK mod the number of "
        "array tasks, then stop (no merge).",
    ),
]
"""A job-array task's share of the work (Slurm array tasks set ``BLOOMKIT_TASK_ID``)."""
TasksOption = Annotated[
    int | None, typer.Option(min=1, envvar="BLOOMKIT_NUM_TASKS", help="Number of array tasks.")
]
MergeOption = Annotated[
    bool, typer.Option("--merge", help="Only the final merge, once every array task is done.")
]


def array_share(
    task: int | None, tasks: int | None, merge: bool, tasks_flag: str = "--tasks"
) -> tuple[int, int] | None:
    """``(task, tasks)`` of an array task, ``None`` for a whole run or a merge; exit 2 on a
    combination that means nothing (one without the other, or with ``--merge``).
    ``tasks_flag``: the command's name for the count (``eval run`` has ``--tasks`` already)."""
    if (task is None) != (tasks is None) or (task is not None and merge):
        typer.echo(f"error: give --task and {tasks_flag} together, and without --merge", err=True)
        raise typer.Exit(2)
    return (task, tasks) if task is not None and tasks is not None else None


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Around config loading: on a :class:`ConfigError` print every problem, exit with 2."""
    try:
        yield
    except ConfigError as err:
        console.print(f"[bold red]invalid config[/] ({len(err.problems)} problem(s)):")
        for problem in err.problems:
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def config_or_exit(model: type[ModelT], path: Path, overrides: list[str] | None) -> ModelT:
    """Load and validate a config; on problems print them all and exit with status 2."""
    with exit_on_config_error():
        return load_config(model, path, overrides or [])


def open_run(path: Path, command: str, config: BaseModel | None) -> RunDir:
    """Create or resume a run directory and send the log to ``logs/bloomkit.log`` in it."""
    run = RunDir(path, command, config)
    log_to_file(run.path / "logs" / "bloomkit.log")
    return run
