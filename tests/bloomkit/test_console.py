"""Console: summary tables show every column; progress passes every item through."""

from rich.console import Console

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
