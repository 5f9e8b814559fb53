"""`bloomkit finetune lora`: LoRA adapters on a Hugging Face BLOOM, merged and exported."""

from pathlib import Path
from typing import Annotated

import typer

from bloomkit.commands import RunDirOption, SetOption, config_or_exit, open_run
from bloomkit.console import summary_table


def lora_command(
    config: Annotated[
        Path, typer.Argument(help="LoRA config (YAML), e.g. configs/finetune/lora-demo.yaml.")
    ],
    run_dir: RunDirOption = Path("runs/lora"),
    overrides: SetOption = None,
) -> None:
    """LoRA instruction tuning on one GPU or CPU with peft (BLOOM's fused QKV and MLP); merges
    the adapters and exports a plain HF folder with model card and LICENSE-RAIL."""
    from bloomkit.finetuning.lora import LoRAConfig, finetune_lora
    from bloomkit.finetuning.sft_data import report_rows

    cfg = config_or_exit(LoRAConfig, config, overrides)
    try:
        summary = finetune_lora(cfg, open_run(run_dir, "finetune lora", cfg))
    except (OSError, ValueError) as err:  # OSError: also a hub name neither cached nor reachable
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    skip = ("losses", "valid_losses", "data", "generation")
    rows = [{"metric": k, "value": v} for k, v in summary.items() if k not in skip]
    rows += report_rows(summary["data"])
    summary_table(f"bloomkit finetune lora — {run_dir}", rows)
    sample = summary["generation"]
    typer.echo(f"sample generation:\n{sample['prompt']}{sample['response']}")
