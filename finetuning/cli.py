"""`bloomkit finetune …`: instruction tuning and the cheap-tuning recipes."""

import typer

app = typer.Typer(
    help="Instruction tuning (Alpaca, Dolly, xP3), LoRA, self-instruct, selection, distillation.",
    no_args_is_help=True,
)
