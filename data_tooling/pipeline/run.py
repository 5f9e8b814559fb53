"""``run_corpus``: the whole corpus pipeline for one config in one run directory.

Shards (in parallel, resumable) → dedup across shards → accounting checked → report. Every
stage leaves a done marker, so running the same command again after a crash (even
``kill -9``) finishes the run and writes the same corpus bytes.

Split across processes (a Slurm job array): ``run_shard_task`` runs one task's share of the
shards, then ``run_corpus(…, merge=True)`` does the rest once every shard has finished.
"""

from __future__ import annotations

import time
from typing import Any

from bloomkit.console import log
from bloomkit.data_tooling.catalogue import load_catalogue
from bloomkit.data_tooling.pipeline.accounting import Ledger, reconcile
from bloomkit.data_tooling.pipeline.config import DataRunConfig, document_steps
from bloomkit.data_tooling.pipeline.executor import (
    dedup_stage,
    dedup_steps,
    merged_steps,
    plan_shards,
    require_finished,
    run_shards,
    task_shards,
)
from bloomkit.data_tooling.pipeline.report import RunReport, summary_rows, write_report
from bloomkit.data_tooling.pipeline.writers import read_shard
from bloomkit.rundir import RunDir, atomic_write_json


def _optout_proof(config: DataRunConfig, run: RunDir, report: RunReport) -> None:
    """Opt-out rows for the report; raise if any opted-out document is in the corpus."""
    from bloomkit.data_tooling.pipeline.optout import load_optouts, optout_report, verify_optouts

    assert config.steps.optout is not None
    optouts = load_optouts(config.steps.optout)
    report.optout = optout_report(report.steps["optout"], optouts)
    shards = sorted((run / "corpus").glob(f"*.{config.output.format}"))
    left = verify_optouts((doc for shard in shards for doc in read_shard(shard)), optouts)
    if left:
        raise RuntimeError(
            f"{len(left)} opted-out documents are in {run / 'corpus'} (first: {left[:5]}); "
            "the optout step must run before the corpus is written"
        )


def run_shard_task(config: DataRunConfig, run: RunDir, task: int, num_tasks: int) -> dict[str, Any]:
    """Run the unfinished shards of task ``task`` of ``num_tasks`` (index mod ``num_tasks``).

    Returns ``{"task", "tasks", "shards": [indexes], "documents": read in those shards}``.
    """
    planned = plan_shards(config, load_catalogue(config.catalogue), run.path)
    tasks = task_shards(planned, task, num_tasks)
    log.info("data run: task %d of %d, %d input shard(s)", task, num_tasks, len(tasks))
    stats = run_shards(tasks, config.executor.workers, config.executor.error_budget)
    ledgers = (Ledger.from_json(s["ledger"]) for s in stats)
    return {
        "task": task,
        "tasks": num_tasks,
        "shards": [t.index for t in tasks],
        "documents": sum(sum(ledger.total("read").values()) for ledger in ledgers),
    }


def run_corpus(config: DataRunConfig, run: RunDir, *, merge: bool = False) -> dict[str, Any]:
    """Run (or finish) the corpus pipeline of ``config`` in ``run``; return its summary.

    Writes ``shards/``, ``dedup/``, ``corpus/`` (the final shards) and ``report/``
    (``accounting.json``, ``data_card.md``, ``languages.png``, ``removals.png``).
    With ``merge``, runs no shard and raises ``ShardsMissing`` unless every shard finished.
    Raises ``AccountingError`` when counts do not add up and ``ErrorBudgetExceeded`` when
    more documents were quarantined than ``executor.error_budget`` allows.
    """
    start = time.perf_counter()
    catalogue = load_catalogue(config.catalogue)
    tasks = plan_shards(config, catalogue, run.path)
    budget = config.executor.error_budget
    if merge:
        log.info("data run: dedup and report over %d input shard(s)", len(tasks))
        shard_stats = require_finished(tasks, budget)
    else:
        log.info("data run: %d input shard(s), %d worker(s)", len(tasks), config.executor.workers)
        shard_stats = run_shards(tasks, config.executor.workers, budget)
    dedup = dedup_stage(tasks, config, run.path)

    ledger = sum((Ledger.from_json(s["ledger"]) for s in [*shard_stats, dedup]), Ledger())
    steps = merged_steps([*shard_stats, dedup])
    doc_order = [s.name for s in document_steps(config.steps)]
    dedup_order = [s.name for s in dedup_steps(config)]
    accounting = reconcile(ledger, steps, doc_order, dedup_order)
    report = RunReport(
        config, catalogue, accounting, steps, [*doc_order, *dedup_order],
        dedup["kept_chars_by_language"], dedup["clusters"],
    )  # fmt: skip
    if config.steps.optout is not None:
        _optout_proof(config, run, report)
    atomic_write_json(
        run / "report" / "accounting.json",
        {"by_source": accounting.by_source, "by_language": accounting.by_language},
    )
    paths = write_report(report, run / "report")
    totals = {k: sum(r[k] for r in accounting.by_source.values()) for k in
              ("read", "kept", "removed", "quarantined")}  # fmt: skip
    seconds = time.perf_counter() - start
    return {
        "documents": totals["read"],
        "kept": totals["kept"],
        "removed": totals["removed"],
        "quarantined": totals["quarantined"],
        "languages": sum(1 for r in accounting.by_language.values() if r["kept"]),
        "shards": len(tasks),
        "corpus_shards": len(list((run / "corpus").glob(f"*.{config.output.format}"))),
        "seconds": round(seconds, 2),
        "docs_per_s": round(totals["read"] / seconds, 1) if seconds else 0.0,
        "rows": summary_rows(report),
        "report": paths,
    }
