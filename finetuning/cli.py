"""`bloomkit finetune …`: instruction tuning and the cheap-tuning recipes."""

from pathlib import Path
from typing import Annotated

import typer

from bloomkit.commands import RunDirOption, SetOption, config_or_exit, open_run
from bloomkit.console import summary_table
from bloomkit.finetuning.lora_cli import lora_command
from bloomkit.finetuning.recipes_cli import distill_command, select_command, self_instruct_command

app = typer.Typer(
    help="Instruction tuning (Alpaca, Dolly, xP3), LoRA, self-instruct, selection, distillation.",
    no_args_is_help=True,
)


@app.command("sft")
def sft_command(
    config: Annotated[
        Path, typer.Argument(help="SFT config (YAML), e.g. configs/finetune/sft-demo.yaml.")
    ],
    run_dir: RunDirOption = Path("runs/sft"),
    overrides: SetOption = None,
) -> None:
    """Full instruction tuning on the pretraining trainer (any TP × PP × DP), from a HF model or
    a bloomkit checkpoint; exports the tuned model as a HF folder."""
    from bloomkit.finetuning.sft import SFTConfig, finetune_sft
    from bloomkit.finetuning.sft_data import report_rows

    cfg = config_or_exit(SFTConfig, config, overrides)
    try:
        summary = finetune_sft(cfg, open_run(run_dir, "finetune sft", cfg))
    except (OSError, ValueError) as err:  # OSError: also a hub name neither cached nor reachable
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    skip = ("losses", "data", "generation")
    rows = [{"metric": k, "value": v} for k, v in summary.items() if k not in skip]
    rows += report_rows(summary["data"]) if "data" in summary else []
    summary_table(f"bloomkit finetune sft — {run_dir}", rows)
    if "generation" in summary:
        sample = summary["generation"]
        typer.echo(f"sample generation:\n{sample['prompt']}{sample['response']}")


app.command("lora")(lora_command)
app.command("self-instruct")(self_instruct_command)
app.command("select")(select_command)
app.command("distill")(distill_command)
