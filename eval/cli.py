"""`bloomkit eval …`: the 46-language lm-eval suite and the results store."""

import typer

app = typer.Typer(
    help="Evaluate a model in all 46 BLOOM languages with lm-eval; keep results reproducible.",
    no_args_is_help=True,
)

leaderboard_app = typer.Typer(
    help="Build, preview and submit to the static multilingual leaderboard site.",
    no_args_is_help=True,
)
