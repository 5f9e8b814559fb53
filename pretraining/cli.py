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
        cfg.data.check_files()
    except FileNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    summary = pretrain(cfg, open_run(run_dir, "pretrain run", cfg))
    rows = [{"metric": k, "value": v} for k, v in summary.items() if k != "losses"]
    summary_table(f"bloomkit pretrain — {run_dir}", rows)
