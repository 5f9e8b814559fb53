"""``bloomkit slurm status RUN``: the run's jobs and their states, last step, last checkpoint.

States come from ``sacct`` when the cluster keeps accounting, else from ``scontrol show job``
(finished jobs stay there ``MinJobAge`` seconds), and always from the jobs' own lines in
``RUN/slurm/events.log``, which outlive both.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from bloomkit.slurm import cluster
from bloomkit.slurm.submit import job_records, state_dir

EVENT = re.compile(r"^(\S+) job=(\S*) array_job=(\S*) task=(\S*) (.*)$")
EVENT_STATES = {"done": "COMPLETED", "failed": "FAILED", "saved": "SAVED"}


def _key(job: str, array_job: str, task: str) -> str:
    return f"{array_job}_{task}" if array_job and task else job


def read_events(run_dir: Path) -> dict[str, dict[str, str]]:
    """``{job key: {"event": last line's text, "at": time, "state": …}}`` from events.log."""
    path = state_dir(run_dir) / "events.log"
    jobs: dict[str, dict[str, str]] = {}
    if not path.is_file():
        return jobs
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = EVENT.match(line)
        if not match:
            continue
        at, job, array_job, task, text = match.groups()
        entry = jobs.setdefault(_key(job, array_job, task), {})
        entry |= {"event": text, "at": at}
        end = re.search(r"state=(\w+)", text)
        if text.startswith("skip"):
            entry["state"] = "SKIPPED"
        elif end:
            entry["state"] = EVENT_STATES.get(end[1], end[1].upper())
        elif text.startswith("start"):
            entry["state"] = "RUNNING"
    return jobs


def _sacct(job_ids: list[str]) -> dict[str, dict[str, str]] | None:
    fields = "JobID,State,ExitCode,NodeList,Start,End"
    proc = cluster.run("sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", fields,
                       check=False)  # fmt: skip
    if proc.returncode != 0:
        return None  # e.g. "Slurm accounting storage is disabled"
    rows = {}
    for line in proc.stdout.splitlines():
        job, state, code, nodes, start, end = (line.split("|") + [""] * 6)[:6]
        rows[job] = {"state": state.split()[0] if state else "", "exit": code,
                     "nodes": nodes, "start": start, "end": end}  # fmt: skip
    return rows


def _scontrol(job_ids: list[str]) -> dict[str, dict[str, str]]:
    rows = {}
    for job_id in job_ids:
        proc = cluster.run("scontrol", "show", "job", "-o", job_id, check=False)
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            rec = cluster.parse_record(line)
            array_job, task = rec.get("ArrayJobId", ""), rec.get("ArrayTaskId", "")
            key = _key(rec.get("JobId", ""), array_job, task)
            rows[key] = {"state": rec.get("JobState", ""), "exit": rec.get("ExitCode", ""),
                         "nodes": rec.get("NodeList", ""), "start": rec.get("StartTime", ""),
                         "end": rec.get("EndTime", "")}  # fmt: skip
    return rows


def slurm_states(job_ids: list[str]) -> tuple[str, dict[str, dict[str, str]]]:
    """``(source, {job key: fields})`` from sacct, or scontrol when there is no accounting."""
    if not job_ids:
        return "none", {}
    rows = _sacct(job_ids)
    if rows is not None:
        return "sacct", rows
    return "scontrol", _scontrol(job_ids)


def progress(run_dir: Path) -> dict[str, Any]:
    """Last logged training step (``metrics.jsonl``) and newest ``step-N`` checkpoint folder."""
    last_step = None
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        lines = metrics.read_text(encoding="utf-8").splitlines()
        for line in reversed(lines):
            try:
                last_step = json.loads(line).get("step")
                break
            except json.JSONDecodeError:
                continue
    steps = [p for p in run_dir.rglob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    newest = max(steps, key=lambda p: int(p.name[5:]), default=None)
    return {
        "last_step": last_step,
        "checkpoint": str(newest.relative_to(run_dir)) if newest else None,
    }


def run_status(run_dir: Path) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data."""
    run_dir = run_dir.resolve()
    submit_json = state_dir(run_dir) / "submit.json"
    if not submit_json.is_file():
        raise FileNotFoundError(f"{run_dir}: not a submitted run (no slurm/submit.json)")
    record = json.loads(submit_json.read_text(encoding="utf-8"))
    ids = [r["job_id"] for r in job_records(run_dir)]
    source, slurm = slurm_states(ids) if ids and shutil.which("squeue") else ("none", {})
    events = read_events(run_dir)
    jobs = []
    for key in sorted(set(slurm) | set(events), key=_sort_key):
        row = {"job": key, **slurm.get(key, {})}
        event = events.get(key, {})
        row.setdefault("state", event.get("state", ""))
        if event.get("state") == "SKIPPED" and row["state"] == "COMPLETED":
            row["state"] = "COMPLETED (skipped)"
        row["last_event"] = event.get("event", "")
        jobs.append(row)
    done = state_dir(run_dir) / "done"
    tasks_done = sorted(int(p.name[5:]) for p in done.glob("task-*")) if done.is_dir() else []
    # an array stage with a merge job is finished by that job alone (it marks done/run)
    finished = (done / "run").exists() or (
        record["launch"] == "array"
        and not record.get("merge_script")
        and len(tasks_done) == record["tasks"]
    )
    return {
        "run_dir": str(run_dir),
        "stage": record["stage"],
        "profile": record["profile"],
        "launch": record["launch"],
        "source": source,
        "finished": finished,
        "stopped": (state_dir(run_dir) / "STOP").exists(),
        "tasks": record["tasks"],
        "tasks_done": tasks_done,
        "jobs": jobs,
        **progress(run_dir),
    }


def _sort_key(key: str) -> tuple[int, int]:
    job, _, task = key.partition("_")
    return (int(job) if job.isdigit() else 0, int(task) if task.isdigit() else -1)
