"""Console experience shared by every stage: logging, progress bars, summary tables.

``setup_logging`` is called once by the CLI root. ``--quiet`` lowers the console to warnings
and hides progress bars; the log file in the run directory always gets everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

T = TypeVar("T")
LOGGER_NAME = "bloomkit"
console = Console(stderr=True)
log = logging.getLogger(LOGGER_NAME)


def setup_logging(quiet: bool = False) -> None:
    """Console handler for the ``bloomkit`` logger (rich, warnings only when quiet).

    Warnings of the libraries (megatron-core's "Apex is not installed", …) go to the log
    file; on the console only when not quiet. Quiet also silences them in the processes
    bloomkit starts (``PYTHONWARNINGS``), which emit them at import time, and turns off the
    libraries' own tqdm bars (transformers, datasets, lm-eval) through their environment
    switches.
    """
    for handler in list(log.handlers):
        if isinstance(handler, RichHandler):
            log.removeHandler(handler)
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.quiet = quiet  # type: ignore[attr-defined]
    logging.captureWarnings(True)
    libraries = logging.getLogger()  # root: megatron-core, transformers, py.warnings, …
    for old in list(libraries.handlers):
        if isinstance(old, RichHandler | logging.NullHandler):
            libraries.removeHandler(old)
    if quiet:
        os.environ["PYTHONWARNINGS"] = "ignore"
        os.environ["TQDM_DISABLE"] = "1"
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        libraries.addHandler(logging.NullHandler())  # not Python's last-resort stderr
    else:
        library_console = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        library_console.setLevel(logging.WARNING)
        libraries.addHandler(library_console)


def log_to_file(path: Path) -> None:
    """Also write everything the ``bloomkit`` logger says to ``path`` (one handler per file)."""
    path = path.resolve()
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    logging.getLogger().addHandler(handler)  # library warnings, at the root logger's level
    if not any(isinstance(h, RichHandler) for h in log.handlers):
        setup_logging()


def is_quiet() -> bool:
    return bool(getattr(log, "quiet", False))


@contextlib.contextmanager
def library_bars() -> Iterator[None]:
    """Around library calls that draw their own tqdm bars on stderr whatever the environment
    says (lm-eval): when quiet, those bars go nowhere."""
    if not is_quiet():
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stderr(sink):
        yield


def progress(
    items: Iterable[T], description: str, total: int | None = None, *, enabled: bool = True
) -> Iterator[T]:
    """Iterate with a progress bar on the console; none when quiet or not ``enabled`` (say,
    on every rank but 0, so that one process draws the bar of a distributed loop)."""
    if is_quiet() or not enabled:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def summary_table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    """Print (unless quiet) and return a table whose columns are the union of the rows' keys."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    if not is_quiet():
        Console().print(table)
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
