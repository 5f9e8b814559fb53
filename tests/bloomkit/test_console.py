"""Console: summary tables show every column; progress passes every item through."""

import io

from rich.console import Console

import bloomkit.console
from bloomkit.console import progress, setup_logging, summary_table


def render(table) -> str:
    console = Console(width=120, record=True)
    console.print(table)
    return console.export_text()


def test_summary_table_union_of_columns_and_number_format():
    setup_logging(quiet=True)
    table = summary_table(
        "stages", [{"stage": "data", "documents": 12345}, {"stage": "tok", "seconds": 1.5}]
    )
    text = render(table)
    assert "documents" in text and "seconds" in text
    assert "12,345" in text and "1.5" in text


def test_progress_yields_every_item_quiet_or_not():
    for quiet in (True, False):
        setup_logging(quiet=quiet)
        assert list(progress(range(5), "count")) == [0, 1, 2, 3, 4]
    setup_logging(quiet=False)


def test_progress_bar_only_when_enabled_and_not_quiet(monkeypatch):
    """The training loop draws its bar on rank 0 only (``enabled``), and never when quiet."""
    drawn = io.StringIO()
    monkeypatch.setattr(bloomkit.console, "console", Console(file=drawn, width=100))
    for quiet, enabled in ((True, True), (False, False)):
        setup_logging(quiet=quiet)
        assert list(progress(range(3), "steps", enabled=enabled)) == [0, 1, 2]
        assert drawn.getvalue() == ""
    setup_logging(quiet=False)
    assert list(progress(range(3), "steps")) == [0, 1, 2]
    assert "steps" in drawn.getvalue() and "3/3" in drawn.getvalue()
    monkeypatch.undo()
    setup_logging(quiet=False)  # the log handler back on the real console
