"""`bloomkit slurm …`: sbatch submission of every stage."""

import typer

app = typer.Typer(
    help="Submit any stage to Slurm: multi-node launch, job arrays, chained jobs, auto-resume.",
    no_args_is_help=True,
)
