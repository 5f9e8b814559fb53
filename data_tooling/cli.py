"""`bloomkit data …`: the corpus pipeline, catalogue, tokenizer and Megatron datasets."""

from pathlib import Path
from typing import Annotated

import typer

from bloomkit.commands import (
    MergeOption,
    RunDirOption,
    SetOption,
    TaskOption,
    TasksOption,
    array_share,
    config_or_exit,
    open_run,
)
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
    task: TaskOption = None,
    tasks: TasksOption = None,
    merge: MergeOption = False,
) -> None:
    """Read → normalise → opt-out → LID → quality → PII → dedup → corpus, data card.

    Split over a job array: `--task I --tasks N` for each I, then `--merge` once (the Slurm
    `data` stage does this; array tasks take I and N from BLOOMKIT_TASK_ID/BLOOMKIT_NUM_TASKS).
    """
    from bloomkit.console import log, summary_table
    from bloomkit.data_tooling.pipeline.accounting import AccountingError
    from bloomkit.data_tooling.pipeline.config import DataRunConfig
    from bloomkit.data_tooling.pipeline.executor import (
        ErrorBudgetExceeded,
        ShardFailed,
        ShardsMissing,
    )
    from bloomkit.data_tooling.pipeline.run import run_corpus, run_shard_task

    share = array_share(task, tasks, merge)
    cfg = config_or_exit(DataRunConfig, config, overrides)
    errors = (ErrorBudgetExceeded, ShardsMissing, ShardFailed, AccountingError, FileNotFoundError,
              KeyError, ValueError)  # fmt: skip
    try:
        run = open_run(run_dir, "data run", cfg)
        if share is not None:
            part = run_shard_task(cfg, run, *share)
            typer.echo(
                f"task {part['task']} of {part['tasks']}: {len(part['shards'])} shard(s) "
                f"{part['shards']} finished, {part['documents']:,} documents read"
            )
            return
        summary = run_corpus(cfg, run, merge=merge)
    except errors as err:
        message = str(err)
        if isinstance(err, ShardFailed):  # the cause's traceback goes to the run's log only
            log.debug("%s", err, exc_info=err)
            message += f" (traceback: {Path(run_dir) / 'logs' / 'bloomkit.log'})"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None
    summary_table(f"bloomkit data run — {run_dir}", summary["rows"])
    typer.echo(
        f"{summary['kept']:,} of {summary['documents']:,} documents kept in "
        f"{summary['corpus_shards']} shard(s) at {summary['docs_per_s']:,} docs/s; "
        f"data card: {summary['report']['data_card']}"
    )
