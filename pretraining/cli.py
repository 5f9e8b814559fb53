"""`bloomkit pretrain …`: BLOOM on megatron-core."""

import typer

app = typer.Typer(
    help="Pretrain BLOOM on megatron-core (tensor × pipeline × data parallel), HF round trip.",
    no_args_is_help=True,
)
