"""`bloomkit pretrain …`: BLOOM on megatron-core.

``bloomkit pretrain run CONFIG`` trains in one process, or starts ``tp × pp × dp`` local
processes itself; for several nodes (or to choose the launcher) run the same command under
``torchrun --nproc-per-node N [--nnodes M …] .venv/bin/bloomkit pretrain run CONFIG``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bloomkit.commands import RunDirOption, SetOption, config_or_exit, open_run
from bloomkit.console import summary_table

app = typer.Typer(
    help="Pretrain BLOOM on megatron-core (tensor × pipeline × data parallel), HF round trip.",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Pretraining config (YAML).")],
    run_dir: RunDirOption = Path("runs/pretrain"),
    overrides: SetOption = None,
) -> None:
    """Train BLOOM from CONFIG: single process, local ranks, or one torchrun rank."""
    from bloomkit.pretraining.pretrain import pretrain
    from bloomkit.pretraining.train import PretrainConfig

    cfg = config_or_exit(PretrainConfig, config, overrides)
    try:
        cfg.data.check_files(cfg.model.vocab_size)
    except (OSError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    try:
        summary = pretrain(cfg, open_run(run_dir, "pretrain run", cfg))
    except Exception as err:
        if (message := checkpoint_error(err)) is None:
            raise
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    rows = [{"metric": k, "value": v} for k, v in summary.items() if k != "losses"]
    summary_table(f"bloomkit pretrain — {run_dir}", rows)


def checkpoint_error(err: BaseException) -> str | None:
    """The message of a :class:`CheckpointError`, raised here or in a local rank; else None."""
    from torch.multiprocessing import ProcessRaisedException

    from bloomkit.pretraining.checkpoint import CheckpointError

    if isinstance(err, CheckpointError):
        return str(err)
    if isinstance(err, ProcessRaisedException):  # a rank's traceback, its error on the last line
        last = str(err).strip().splitlines()[-1]
        prefix = f"{CheckpointError.__module__}.{CheckpointError.__name__}: "
        if last.startswith(prefix):
            return last.removeprefix(prefix)
    return None


export_app = typer.Typer(help="Export a trained model (Hugging Face).", no_args_is_help=True)
import_app = typer.Typer(help="Import a model to train or tune it (Hugging Face).",
                         no_args_is_help=True)  # fmt: skip


@export_app.command("hf")
def export_hf_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="A checkpoint folder (RUN/checkpoints/step-N).")
    ],
    out: Annotated[Path, typer.Argument(help="The BloomForCausalLM folder to write (new).")],
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="Tokenizer folder to ship; its bos/eos/pad ids go into the config."),
    ] = None,
    data_card: Annotated[Path | None, typer.Option(help="Corpus data card (Markdown).")] = None,
    eval_results: Annotated[Path | None, typer.Option(help="bloomkit eval results.json.")] = None,
    languages: Annotated[
        list[str] | None,
        typer.Option(
            "--language",
            help="Language code for the card's front matter (repeat it); default: the "
            "languages of the data card's table.",
        ),
    ] = None,
) -> None:
    """Any TP × PP checkpoint → a Hugging Face BloomForCausalLM folder, card and LICENSE-RAIL."""
    from bloomkit.pretraining.convert import export_hf

    try:
        path = export_hf(
            checkpoint,
            out,
            tokenizer=tokenizer,
            data_card=data_card,
            eval_results=eval_results,
            languages=languages,
        )
    except (OSError, ValueError) as err:  # FileExistsError, CheckpointError among them
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"exported {checkpoint} → {path}")


@import_app.command("hf")
def import_hf_command(
    model: Annotated[str, typer.Argument(help="A HF BLOOM folder or hub name.")],
    out: Annotated[Path, typer.Argument(help="The checkpoint folder to write (new).")],
    tensor_parallel: Annotated[int, typer.Option("--tp", min=1)] = 1,
    pipeline_parallel: Annotated[int, typer.Option("--pp", min=1)] = 1,
) -> None:
    """A Hugging Face BloomForCausalLM → a bloomkit checkpoint at TP × PP (``checkpoint.load``)."""
    from bloomkit.pretraining.convert import import_hf
    from bloomkit.pretraining.parallel import ParallelConfig

    layout = ParallelConfig(tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel)
    try:
        path = import_hf(model, out, layout)
    except (OSError, ValueError) as err:  # FileExistsError, HFFolderError among them
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"imported {model} → {path} (tp{tensor_parallel} × pp{pipeline_parallel})")
