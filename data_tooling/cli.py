"""`bloomkit data …`: the corpus pipeline, catalogue, tokenizer and Megatron datasets."""

import typer

app = typer.Typer(
    help="Governed multilingual corpus: catalogue, filtering pipeline, tokenizer, .bin/.idx.",
    no_args_is_help=True,
)
