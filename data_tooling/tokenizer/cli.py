"""`bloomkit data tokenizer train|report` and `bloomkit data tokenize`."""

from __future__ import annotations

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
from bloomkit.console import summary_table

app = typer.Typer(
    help="Train a language-balanced byte-level BPE tokenizer; report its fairness.",
    no_args_is_help=True,
)
SHARED_SIB200 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sib200"


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(2)


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Argument(help="Tokenizer training config (YAML).")],
    run_dir: RunDirOption = Path("runs/tokenizer"),
    overrides: SetOption = None,
) -> None:
    """Train byte-level BPE on CONFIG's corpus; writes RUN/tokenizer/ (Hugging Face folder)."""
    from bloomkit.data_tooling.tokenizer.train import TokenizerTrainConfig, train_tokenizer

    cfg = config_or_exit(TokenizerTrainConfig, config, overrides)
    try:
        summary = train_tokenizer(cfg, open_run(run_dir, "data tokenizer train", cfg))
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    rows = [
        {"language": lang, **{k: round(v, 4) for k, v in stats.items()}}
        for lang, stats in summary["languages"].items()
    ]
    summary_table("language sample (alpha sampling)", rows)
    keys = ("tokenizer", "vocab_size", "padded_vocab_size", "alpha", "balance", "sample_bytes")
    summary_table("tokenizer", [{"field": k, "value": summary[k]} for k in keys])


@app.command("report")
def report_command(
    tokenizer_dir: Annotated[Path, typer.Argument(help="Tokenizer folder to measure.")],
    baseline: Annotated[
        Path | None, typer.Option(help="Tokenizer to compare with (e.g. trained with alpha=1).")
    ] = None,
    sib200: Annotated[
        Path | None, typer.Option(help="SIB-200 folder (default: ../shared, else the sample).")
    ] = None,
    run_dir: RunDirOption = Path("runs/tokenizer-report"),
) -> None:
    """Tokens/word, tokens/byte and premium over English per language (table + PNG)."""
    from bloomkit.data_tooling.sample import sample_dir
    from bloomkit.data_tooling.tokenizer.report import fairness_report

    if sib200 is None:
        sib200 = SHARED_SIB200 if SHARED_SIB200.is_dir() else sample_dir() / "sib200"
    run = open_run(run_dir, "data tokenizer report", None)
    try:
        fairness_report(tokenizer_dir, sib200, run.path, baseline)
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    typer.echo((run.path / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {run.path / 'report.md'}, report.json and premium.png")


def tokenize_command(
    config: Annotated[Path, typer.Argument(help="Tokenize config (YAML).")],
    run_dir: RunDirOption = Path("runs/tokenize"),
    overrides: SetOption = None,
    task: TaskOption = None,
    tasks: TasksOption = None,
    merge: MergeOption = False,
) -> None:
    """Corpus shards → megatron-core .bin/.idx per language (or source) + blend.json.

    Split over a job array: `--task I --tasks N` for each I, then `--merge` once (the Slurm
    `tokenize` stage does this; array tasks take I and N from BLOOMKIT_TASK_ID/NUM_TASKS).
    """
    from bloomkit.data_tooling.indexed import TokenizeConfig, tokenize_corpus

    part = array_share(task, tasks, merge)
    cfg = config_or_exit(TokenizeConfig, config, overrides)
    try:
        summary = tokenize_corpus(
            cfg, open_run(run_dir, "data tokenize", cfg), task=part, merge=merge
        )
    except (ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    if part is not None:
        typer.echo(f"task {task} of {tasks}: shards {summary['shards']} encoded")
        return
    rows = [
        {cfg.group_by or "dataset": key, **{k: v for k, v in row.items() if k != "name"}}
        for key, row in sorted(summary["datasets"].items())
    ]
    summary_table(f"bloomkit data tokenize — {run_dir}", rows)
    keys = ("blend", "dtype", "vocab_size", "eod_id", "shards", "shards_skipped", "encoder",
            "docs_per_second")  # fmt: skip
    summary_table("tokenize", [{"field": k, "value": summary[k]} for k in keys])
