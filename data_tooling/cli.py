"""`bloomkit data …`: the corpus pipeline, catalogue, tokenizer and Megatron datasets."""

from pathlib import Path
from typing import Annotated

import typer

from bloomkit.commands import RunDirOption, SetOption, config_or_exit, open_run
from bloomkit.data_tooling.catalogue_cli import app as catalogue_app
from bloomkit.data_tooling.tokenizer.cli import app as tokenizer_app
from bloomkit.data_tooling.tokenizer.cli import tokenize_command

app = typer.Typer(
    help="Governed multilingual corpus: catalogue, filtering pipeline, tokenizer, .bin/.idx.",
    no_args_is_help=True,
)
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(tokenizer_app, name="tokenizer")
app.command("tokenize")(tokenize_command)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Corpus pipeline config (YAML).")],
    run_dir: RunDirOption = Path("runs/data"),
    overrides: SetOption = None,
) -> None:
    """Read → normalise → opt-out → LID → quality → PII → dedup → corpus, data card."""
    from bloomkit.console import summary_table
    from bloomkit.data_tooling.pipeline.accounting import AccountingError
    from bloomkit.data_tooling.pipeline.config import DataRunConfig
    from bloomkit.data_tooling.pipeline.executor import ErrorBudgetExceeded
    from bloomkit.data_tooling.pipeline.run import run_corpus

    cfg = config_or_exit(DataRunConfig, config, overrides)
    try:
        summary = run_corpus(cfg, open_run(run_dir, "data run", cfg))
    except (ErrorBudgetExceeded, AccountingError, FileNotFoundError, KeyError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    summary_table(f"bloomkit data run — {run_dir}", summary["rows"])
    typer.echo(
        f"{summary['kept']:,} of {summary['documents']:,} documents kept in "
        f"{summary['corpus_shards']} shard(s) at {summary['docs_per_s']:,} docs/s; "
        f"data card: {summary['report']['data_card']}"
    )
