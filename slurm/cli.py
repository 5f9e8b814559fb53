"""`bloomkit slurm …`: sbatch submission of every stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bloomkit.commands import SetOption
from bloomkit.config import ConfigError
from bloomkit.console import console, summary_table

app = typer.Typer(
    help="Submit any stage to Slurm: multi-node launch, job arrays, chained jobs, auto-resume.",
    no_args_is_help=True,
)

RunArg = Annotated[Path, typer.Argument(help="Run directory of a submitted stage.")]


def _fail(problems: list[str]) -> typer.Exit:
    console.print(f"[bold red]not submitted[/] ({len(problems)} problem(s)):")
    for problem in problems:
        console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


@app.command()
def submit(
    stage: Annotated[
        str, typer.Argument(help="data, tokenize, pretrain, finetune, eval, probe, probe-array.")
    ],
    config: Annotated[Path | None, typer.Argument(help="The stage's config (YAML).")] = None,
    profile: Annotated[
        str, typer.Option(help="Cluster profile: name in configs/slurm or a path.")
    ] = "local-cpu",
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/STAGE).")
    ] = None,
    nodes: Annotated[int | None, typer.Option(min=1, help="Nodes (torchrun stages).")] = None,
    tasks: Annotated[int, typer.Option(min=1, help="Tasks of a job-array stage.")] = 1,
    chain: Annotated[int, typer.Option(min=1, help="Chain K jobs, each resuming the last.")] = 1,
    name: Annotated[str | None, typer.Option(help="Job name (default bk-STAGE-RUN).")] = None,
    account: Annotated[
        str | None, typer.Option(help="Slurm account (overrides the profile).")
    ] = None,
    overrides: SetOption = None,
    stage_arg: Annotated[
        list[str] | None, typer.Option("--stage-arg", help="Extra argument for the stage command.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the script only.")] = False,
) -> None:
    """Render STAGE's sbatch script into the run directory and submit it."""
    from bloomkit.slurm.cluster import SlurmError
    from bloomkit.slurm.submit import Request, SubmitError
    from bloomkit.slurm.submit import submit as do_submit

    request = Request(
        stage=stage,
        config=config,
        profile=profile,
        run_dir=run_dir or Path("runs") / stage,
        nodes=nodes,
        tasks=tasks,
        chain=chain,
        name=name,
        account=account,
        overrides=overrides or [],
        stage_args=stage_arg or [],
    )
    try:
        result = do_submit(request, dry_run=dry_run)
    except ConfigError as err:
        raise _fail(err.problems) from None
    except (SubmitError, SlurmError, ValidationError, ValueError) as err:
        raise _fail([str(err)]) from None
    if dry_run:
        typer.echo(result.text, nl=False)
        return
    what = f" (array {result.array})" if result.array else ""
    console.print(f"submitted job {result.job_ids[0]}{what}: {result.script}", soft_wrap=True)


@app.command()
def resubmit(
    run: RunArg,
    failed: Annotated[
        bool, typer.Option("--failed/--all", help="Only unfinished array tasks, or everything.")
    ] = True,
) -> None:
    """Submit RUN's script again: only the array tasks that did not finish (--failed)."""
    from bloomkit.slurm.cluster import SlurmError
    from bloomkit.slurm.submit import SubmitError
    from bloomkit.slurm.submit import resubmit as do_resubmit

    try:
        result = do_resubmit(run, failed=failed)
    except (SubmitError, SlurmError) as err:
        raise _fail([str(err)]) from None
    if result is None:
        console.print(f"{run}: nothing to resubmit, every task is done or queued", soft_wrap=True)
        return
    what = f" (tasks {result.array})" if result.array else ""
    console.print(f"resubmitted job {result.job_ids[0]}{what}: {result.script}", soft_wrap=True)


@app.command()
def status(
    run: RunArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Jobs of RUN with their states, the last training step and checkpoint."""
    from bloomkit.slurm.status import run_status

    try:
        info = run_status(run)
    except FileNotFoundError as err:
        raise _fail([str(err)]) from None
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    summary_table(f"{info['stage']} — {info['run_dir']} (states: {info['source']})", info["jobs"])
    tasks = f", tasks done {len(info['tasks_done'])}/{info['tasks']}"
    console.print(
        f"finished: {info['finished']}{tasks if info['launch'] == 'array' else ''}"
        f"{', STOPPED' if info['stopped'] else ''}; last step {info['last_step']}, "
        f"checkpoint {info['checkpoint']}"
    )


@app.command()
def stop(
    run: RunArg,
    cancel: Annotated[bool, typer.Option(help="Also scancel the run's queued jobs.")] = False,
) -> None:
    """Kill switch: jobs of RUN that have not started yet exit at once (RUN/slurm/STOP)."""
    from bloomkit.slurm import cluster
    from bloomkit.slurm.submit import job_records, state_dir

    state = state_dir(run.resolve())
    if not state.is_dir():
        raise _fail([f"{run}: not a submitted run (no slurm/ folder)"])
    (state / "STOP").touch()
    console.print(f"{state / 'STOP'} written: queued jobs of this run will exit at once")
    if cancel:
        ids = [r["job_id"] for r in job_records(run.resolve())]
        if ids:
            cluster.run("scancel", *ids)
            console.print(f"scancel {' '.join(ids)}")
