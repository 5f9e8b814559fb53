"""``submit``/``resubmit``: check everything, render the script into the run dir, call sbatch.

Layout under the run directory::

    RUN/slurm/STAGE.sbatch   the rendered script (``sbatch`` it by hand to go on)
    RUN/slurm/STAGE-merge.sbatch   an array stage's merge job, if it has one (``data``)
    RUN/slurm/config.yaml    the config the jobs read (a snapshot of CONFIG)
    RUN/slurm/submit.json    stage, profile, config digest, tasks, nodes, chain
    RUN/slurm/jobs.jsonl     one line per sbatch call: job id, what was submitted
    RUN/slurm/events.log     one line per job start/signal/end (written by the jobs)
    RUN/slurm/logs/          one log per job (``%x-%j.out``, arrays ``%x-%A_%a.out``)
    RUN/slurm/done/          ``run`` or ``task-N`` markers; ``RUN/slurm/STOP`` is the kill switch
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bloomkit.config import ConfigError, load_config
from bloomkit.rundir import atomic_write_json, atomic_write_text
from bloomkit.slurm import cluster
from bloomkit.slurm.profiles import load_profile
from bloomkit.slurm.render import Job, check_name, check_path, render
from bloomkit.slurm.stages import STAGES, Stage, get_stage


class SubmitError(ValueError):
    """A submission refused before anything reached Slurm; ``str()`` says why and how to fix."""


@dataclass
class Submission:
    """What ``submit`` did (or would do, with ``dry_run``)."""

    script: Path
    text: str
    job_ids: list[str] = field(default_factory=list)
    array: str | None = None


@dataclass(kw_only=True)
class Request:
    """The arguments of ``bloomkit slurm submit``."""

    stage: str
    config: Path | None
    profile: str
    run_dir: Path
    nodes: int | None = None
    tasks: int = 1
    chain: int = 1
    name: str | None = None
    account: str | None = None
    overrides: list[str] = field(default_factory=list)
    stage_args: list[str] = field(default_factory=list)


def state_dir(run_dir: Path) -> Path:
    return run_dir / "slurm"


def _validated_config(stage: Stage, request: Request) -> tuple[BaseModel | None, str]:
    """The stage's validated config (None for a stage without one) and a digest of it."""
    if request.config is None:
        if stage.needs_config:
            raise SubmitError(f"stage {stage.name} needs a CONFIG file")
        return None, "none"
    if not stage.needs_config:
        raise SubmitError(f"stage {stage.name} takes no CONFIG file (got {request.config})")
    if not request.config.is_file():
        raise SubmitError(f"{request.config}: config file not found")
    config = load_config(stage.model(), request.config, request.overrides)
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return config, hashlib.sha256(blob).hexdigest()


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in
                _differences(a.get(k), b.get(k), f"{prefix}{k}.")]  # fmt: skip
    return [] if a == b else [prefix.rstrip(".")]


def check_run_dir(run_dir: Path, stage: Stage, config: BaseModel | None, digest: str) -> None:
    """Refuse a run directory that another stage or another config made."""
    previous = state_dir(run_dir) / "submit.json"
    if previous.is_file():
        record = json.loads(previous.read_text(encoding="utf-8"))
        if record.get("stage") != stage.name or record.get("config_digest") != digest:
            raise SubmitError(
                f"run directory {run_dir} was submitted for stage {record.get('stage')} with "
                f"config {record.get('config')} (another config): use a new --run-dir, or "
                f"remove {state_dir(run_dir)} to take the directory over"
            )
    manifest = run_dir / "manifest.json"
    if config is not None and manifest.is_file():
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        wanted = config.model_dump(mode="json")
        if recorded is not None and recorded != wanted:
            keys = ", ".join(_differences(recorded, wanted)[:5])
            raise SubmitError(
                f"run directory {run_dir} was made by another config ({manifest}; differs in "
                f"{keys}): use a new --run-dir"
            )


def job_records(run_dir: Path) -> list[dict[str, Any]]:
    path = state_dir(run_dir) / "jobs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _record_job(run_dir: Path, job_id: str, kind: str, array: str | None, script: Path) -> None:
    line = {
        "job_id": job_id,
        "kind": kind,
        "array": array,
        "script": str(script),
        "submitted": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with open(state_dir(run_dir) / "jobs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def _refuse_if_queued(run_dir: Path) -> dict[str, str]:
    queued = cluster.queued([r["job_id"] for r in job_records(run_dir)])
    if queued:
        jobs = ", ".join(f"{job} ({state})" for job, state in sorted(queued.items()))
        raise SubmitError(
            f"run directory {run_dir} still has jobs in the queue: {jobs}; wait for them or "
            "`scancel` them first"
        )
    return queued


def _check_world_size(stage: Stage, config: BaseModel | None, nodes: int, per_node: int) -> None:
    """A torchrun stage whose config fixes ``parallel.world_size`` must get that many ranks."""
    world = getattr(getattr(config, "parallel", None), "world_size", None)
    if stage.launch == "torchrun" and isinstance(world, int) and world != nodes * per_node:
        raise SubmitError(
            f"the config's parallel layout needs {world} ranks but the job starts "
            f"{nodes} node(s) × {per_node} rank(s) = {nodes * per_node}: change --nodes, the "
            "profile's processes_per_node/gpus_per_node, or parallel.*"
        )


def prepare(request: Request) -> tuple[Job, dict[str, Any], BaseModel | None]:
    """Validate a request into a :class:`Job` (no Slurm needed); raise SubmitError/ConfigError."""
    stage = get_stage(request.stage)
    if request.chain > 1 and not stage.resumes:
        resumable = ", ".join(s.name for s in STAGES.values() if s.resumes)
        raise SubmitError(
            f"--chain needs a stage that resumes where it stopped ({resumable}); stage "
            f"{stage.name} does not: submit it once (array tasks that failed rerun alone with "
            "`bloomkit slurm resubmit RUN --failed`)"
        )
    if request.tasks > 1 and stage.launch != "array":
        raise SubmitError(f"--tasks applies to job-array stages; {stage.name} is {stage.launch}")
    if request.nodes is not None and request.nodes > 1 and stage.launch != "torchrun":
        raise SubmitError(f"--nodes applies to torchrun stages; {stage.name} is {stage.launch}")
    profile_name, profile = load_profile(request.profile)
    if request.account:
        try:
            profile.account = request.account
        except ValueError as err:
            raise SubmitError(f"--account {request.account!r}: not a valid account name") from err
    if profile.account_required and not profile.account:
        raise SubmitError(
            f"profile {profile_name} requires an account: pass --account NAME or set `account` "
            f"in configs/slurm/{profile_name}.yaml"
        )
    config, digest = _validated_config(stage, request)
    run_dir = request.run_dir.resolve()
    try:
        check_path(run_dir, "run directory")
        name = check_name(request.name or f"bk-{stage.name}-{run_dir.name}")
    except ValueError as err:
        raise SubmitError(str(err)) from None
    venv_bin = (profile.venv / "bin") if profile.venv else Path(sys.executable).parent
    job = Job(
        stage=stage,
        profile=profile,
        profile_name=profile_name,
        run_dir=run_dir,
        workdir=Path.cwd(),
        venv_bin=venv_bin,
        name=name,
        config=state_dir(run_dir) / "config.yaml" if request.config else None,
        overrides=list(request.overrides),
        stage_args=list(request.stage_args),
        nodes=request.nodes or profile.nodes,
        num_tasks=request.tasks,
        chain=request.chain,
    )
    _check_world_size(stage, config, job.nodes, profile.ranks_per_node)
    record = {
        "stage": stage.name,
        "profile": profile_name,
        "config": str(request.config.resolve()) if request.config else None,
        "config_digest": digest,
        "nodes": job.nodes,
        "tasks": job.num_tasks,
        "chain": job.chain,
        "launch": stage.launch,
        "script": str(state_dir(run_dir) / f"{stage.name}.sbatch"),
        "merge_script": str(state_dir(run_dir) / f"{stage.name}-merge.sbatch")
        if stage.merge_argv
        else None,
    }
    return job, record, config


def _submit_merge(run_dir: Path, script: Path, after: list[str]) -> str:
    """sbatch the merge job, to start once every job in ``after`` has ended (any state)."""
    args = [f"--dependency=afterany:{':'.join(after)}"] if after else []
    job_id = cluster.sbatch(script, *args)
    _record_job(run_dir, job_id, "merge", None, script)
    return job_id


def submit(request: Request, *, dry_run: bool = False) -> Submission:
    """Render ``request``'s script; unless ``dry_run``, check the cluster and sbatch it."""
    job, record, config = prepare(request)
    script = Path(record["script"])
    merge = Path(record["merge_script"]) if record["merge_script"] else None
    try:
        scripts = {script: render(job, script)}
        if merge is not None:
            merge_job = dataclasses.replace(job, stage=job.stage.merge_stage())
            scripts[merge] = render(merge_job, merge)
    except ValueError as err:
        raise SubmitError(str(err)) from None
    text = scripts[script]
    array = job.array_spec()
    if dry_run:
        if merge is not None:
            text += f"\n# ---- {merge}: sbatch --dependency=afterany:<array job>\n{scripts[merge]}"
        return Submission(script=script, text=text, array=array)
    cluster.command("sbatch")
    problems = cluster.check_request(job.profile, job.nodes, job.profile_name)
    if problems:
        raise ConfigError(problems)
    check_run_dir(job.run_dir, job.stage, config, record["config_digest"])
    _refuse_if_queued(job.run_dir)
    state = state_dir(job.run_dir)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "done").mkdir(exist_ok=True)
    if request.config is not None:
        shutil.copyfile(request.config, state / "config.yaml")
    for path, body in scripts.items():
        atomic_write_text(path, body)
        path.chmod(0o755)
    atomic_write_json(state / "submit.json", record)
    job_ids = [cluster.sbatch(script)]
    _record_job(job.run_dir, job_ids[0], "submit", array, script)
    if merge is not None:
        job_ids.append(_submit_merge(job.run_dir, merge, after=job_ids[:1]))
    return Submission(script=script, text=text, job_ids=job_ids, array=array)


def unfinished_tasks(run_dir: Path) -> list[int]:
    """Array tasks with no done marker, that are not queued or running either."""
    record = json.loads((state_dir(run_dir) / "submit.json").read_text(encoding="utf-8"))
    done = state_dir(run_dir) / "done"
    queued = cluster.queued([r["job_id"] for r in job_records(run_dir)])
    active = {int(task) for key in queued for _, _, task in [key.partition("_")] if task.isdigit()}
    return [
        task
        for task in range(record["tasks"])
        if not (done / f"task-{task}").exists() and task not in active
    ]


def resubmit(run_dir: Path, *, failed: bool = True) -> Submission | None:
    """Submit the run's script again: only its unfinished array tasks when ``failed``.

    A stage with a merge job also gets a new one, after the resubmitted tasks and every job of
    the run still queued, unless the run is done or nothing was resubmitted and one is queued.
    Returns None when there is nothing left to run.
    """
    run_dir = run_dir.resolve()
    submit_json = state_dir(run_dir) / "submit.json"
    if not submit_json.is_file():
        raise SubmitError(f"{run_dir} has no {submit_json.name}: submit it first")
    record = json.loads(submit_json.read_text(encoding="utf-8"))
    script = Path(record["script"])
    merge = Path(record["merge_script"]) if record.get("merge_script") else None
    cluster.command("sbatch")
    done = (state_dir(run_dir) / "done" / "run").exists()
    args: list[str] = []
    run_script = True
    if record["launch"] == "array" and failed:
        tasks = unfinished_tasks(run_dir)
        run_script = bool(tasks)
        args = [f"--array={','.join(map(str, tasks))}"] if tasks else []
    else:
        if done:
            return None
        _refuse_if_queued(run_dir)
    queued: dict[str, str] = {}
    if done:
        merge = None
    elif merge is not None:
        records = job_records(run_dir)
        queued = cluster.queued([r["job_id"] for r in records])
        merges = {r["job_id"] for r in records if r["kind"] == "merge"}
        if not run_script and any(key in merges for key in queued):
            merge = None  # nothing to rerun and a merge job is still waiting
    if not run_script and merge is None:
        return None
    job_ids = []
    array = args[0].removeprefix("--array=") if args else None
    if run_script:
        job_ids.append(cluster.sbatch(script, *args))
        _record_job(run_dir, job_ids[0], "resubmit", array, script)
    if merge is not None:
        after = sorted({*job_ids, *(key.partition("_")[0] for key in queued)})
        job_ids.append(_submit_merge(run_dir, merge, after))
    shown = script if run_script else merge
    assert shown is not None
    return Submission(script=shown, text=shown.read_text(), job_ids=job_ids, array=array)
