"""``bloomkit eval run`` split over a job array: each task scores its share, a merge joins them.

The suite is expanded into units: every bloomkit task with data (one language of one
benchmark, in suite order), then every lm-eval name as given. Array task ``I`` of ``N`` scores
the units whose index is ``I mod N`` and writes ``RUN/shares/task-I-of-N.json`` atomically::

    {"task": I, "tasks": N, "units": [...], "config": {...}, "record": <sealed EvalResults>}

``--merge`` then writes the one ``RUN/results.json`` a single process writes: the same tasks
and per-document values (each task is scored alone with the same seeds), the groups aggregated
with lm-eval's arithmetic, the same provenance (``reproduce`` is the whole suite's command;
``started`` is the first share's, ``seconds`` their sum). It refuses, naming them, while any
unit has no share.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bloomkit.console import library_bars, log
from bloomkit.eval import record
from bloomkit.eval.plan import Plan, plan
from bloomkit.eval.results import EvalResults, seal, verify_data
from bloomkit.eval.runner import EvalConfig, evaluate, reproduce
from bloomkit.eval.tasks import Catalog, catalog
from bloomkit.rundir import RunDir, atomic_write_json

SHARES = "shares"
SHARE_NAME = re.compile(r"task-(\d+)-of-(\d+)\.json")


class SharesMissing(FileNotFoundError):
    """A merge while some units of the suite have no share yet; ``str()`` names them."""


def units(the_plan: Plan, cat: Catalog) -> list[str]:
    """What array tasks share out: bloomkit's tasks with data, then lm-eval's names."""
    foreign = [n for n in the_plan.lm_eval_tasks if n not in cat.tasks and n not in cat.groups]
    return list(dict.fromkeys([*the_plan.ours, *foreign]))


def share_path(run_dir: Path, task: int, num_tasks: int) -> Path:
    return run_dir / SHARES / f"task-{task:05d}-of-{num_tasks:05d}.json"


def score_share(config: EvalConfig, run: RunDir, task: int, num_tasks: int) -> dict[str, Any]:
    """Score the units of array task ``task`` of ``num_tasks`` into its share file (kept
    when it exists for the same config); return ``{"task", "tasks", "units", "share"}``."""
    mine = units(plan(config), catalog())[task::num_tasks]
    path = share_path(run.path, task, num_tasks)
    params = config.model_dump(mode="json")
    summary = {"task": task, "tasks": num_tasks, "units": mine, "share": str(path)}
    if not mine or (path.is_file() and json.loads(path.read_text())["config"] == params):
        return summary
    log.info("eval: task %d of %d, %d unit(s)", task, num_tasks, len(mine))
    with library_bars():
        results = evaluate(config.model_copy(update={"suite": None, "tasks": mine}))
    share = {"task": task, "tasks": num_tasks, "units": mine, "config": params,
             "record": seal(results).model_dump(mode="json")}  # fmt: skip
    atomic_write_json(path, share)
    return summary


def _read_shares(run_dir: Path, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's share files made with this config, each checked against its content hash."""
    shares = []
    for path in sorted((run_dir / SHARES).glob("task-*-of-*.json")):
        if not path.is_file() or not SHARE_NAME.fullmatch(path.name):
            continue
        share = json.loads(path.read_text(encoding="utf-8"))
        if share.get("config") != params:
            log.warning("%s: scored with another config, left out", path)
            continue
        if problem := verify_data(share["record"]):
            raise ValueError(f"{path}: record: {problem}")
        shares.append(share | {"record": EvalResults.model_validate(share["record"])})
    return shares


def _missing_message(run_dir: Path, wanted: list[str], missing: list[str]) -> str:
    counts = {int(m[2]) for p in (run_dir / SHARES).glob("*.json")
              if (m := SHARE_NAME.fullmatch(p.name))}  # fmt: skip
    tasks = ""
    if len(counts) == 1:
        n = counts.pop()
        which = sorted({wanted.index(u) % n for u in missing})
        tasks = f" (array task(s) {', '.join(map(str, which))} of {n})"
    return (
        f"{run_dir / SHARES}: {len(missing)} of {len(wanted)} task(s) have no share yet"
        f"{tasks}: {', '.join(missing)}; rerun them (`bloomkit slurm resubmit RUN --failed`) "
        "or run without --merge"
    )


def merge_shares(config: EvalConfig, run_dir: Path) -> EvalResults:
    """The whole suite's (unsealed) record from the array tasks' shares under ``run_dir``."""
    cat = catalog()
    the_plan = plan(config, cat)
    wanted = units(the_plan, cat)
    shares = _read_shares(run_dir, config.model_dump(mode="json"))
    covered = {unit: s["record"] for s in shares for unit in s["units"]}
    if missing := [u for u in wanted if u not in covered]:
        raise SharesMissing(_missing_message(run_dir, wanted, missing))
    records: list[EvalResults] = list({id(r): r for r in covered.values()}.values())
    first = records[0].provenance
    for other in records[1:]:
        for field in ("model", "bloomkit_version", "lm_eval_version", "packages"):
            if getattr(other.provenance, field) != getattr(first, field):
                raise ValueError(
                    f"{run_dir / SHARES}: shares differ in provenance.{field} (model or code "
                    "changed between array tasks): remove the shares and score again"
                )
    tasks = {u: covered[u].tasks[u] for u in wanted if u in covered[u].tasks}
    for rec in records:
        tasks |= {name: t for name, t in rec.tasks.items() if name not in tasks}
    output = {"results": record.aggregate_groups(tasks, cat, the_plan.groups)}
    data_files = {k: v for r in records for k, v in r.provenance.data_files.items()}
    provenance = first.model_copy(
        update={
            "task_configs": {n: t.config_sha256 for n, t in tasks.items() if t.config_sha256},
            "data_files": dict(sorted(data_files.items())),
            "started": min(r.provenance.started for r in records),
            "seconds": round(sum(r.provenance.seconds for r in records), 3),
            "reproduce": reproduce(config, the_plan),
        }
    )
    return EvalResults(
        suite=config.suite,
        tasks=tasks,
        groups=record.group_results(output, tasks, cat, the_plan.groups, the_plan.missing),
        missing=the_plan.missing,
        provenance=provenance,
    )
