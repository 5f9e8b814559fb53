"""Local multiprocessing executor: one task per input shard, then dedup across all shards.

Layout under the run directory (``FMT`` is ``jsonl.zst`` or ``parquet``)::

    shards/plan.json                the shard list and the fingerprint of the config
    shards/00000/kept.FMT           documents that passed every per-document step
    shards/00000/removed.FMT        removed documents, ``metadata.removal = {step, reason}``
    shards/00000/quarantined.FMT    unusable input, ``metadata.quarantine = {step, reason}``
    shards/00000/stats.json         step stats and ledger; written LAST: the done marker
    corpus/00000.FMT …              the final corpus, ``docs_per_shard`` documents each
    dedup/removed.FMT, dedup/clusters.json   (dedup/<step>/: work files, gone once used)
    dedup/stats.json                written LAST: the done marker of the dedup stage

A shard with a ``stats.json`` is never redone; any other shard folder is the leftover of an
interrupted task and is removed and redone. Shard outputs depend only on the config and the
input, and the dedup stage reads the kept shards in shard order, so a run killed at any point
and started again writes a corpus byte-identical to an uninterrupted run, whatever the
number of workers.

The shard stage can also be split across processes that share the run directory, such as the
tasks of a Slurm job array: task ``I`` of ``N`` runs the shards whose index is ``I`` mod ``N``
(:func:`task_shards`), and the dedup stage, run once they have all ended, refuses to start
while any shard lacks its ``stats.json`` (:func:`finished_shards`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bloomkit.console import progress
from bloomkit.data_tooling.catalogue import Catalogue
from bloomkit.data_tooling.dedup import ExactDedup, FirstOccurrence, MinHashDedup, UniqueIds
from bloomkit.data_tooling.dedup.runs import Bitmap
from bloomkit.data_tooling.pipeline.accounting import WRITE_STEP, Ledger
from bloomkit.data_tooling.pipeline.base import Document, Sink, Step, StepStats
from bloomkit.data_tooling.pipeline.config import DataRunConfig, InputConfig, document_steps
from bloomkit.data_tooling.pipeline.readers import HF_PREFIX, list_inputs, read_documents
from bloomkit.data_tooling.pipeline.writers import ShardWriter, read_shard
from bloomkit.rundir import atomic_path, atomic_write_json

DONE = "stats.json"
EXAMPLES = 20
"""Quarantine reasons kept verbatim per shard (for error messages and the data card)."""


class ErrorBudgetExceeded(RuntimeError):
    """More documents were quarantined than ``executor.error_budget`` allows."""


class ShardsMissing(RuntimeError):
    """The dedup stage was asked for while some shards have not finished."""


class ShardFailed(RuntimeError):
    """Reading or processing one shard raised; the message names the shard, its input and the
    cause (chained as ``__cause__``, with the worker's traceback)."""


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to process one input shard (picklable)."""

    index: int
    path: str
    licence: str
    input: InputConfig
    config: DataRunConfig
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    def output(self, kind: str) -> Path:
        return self.folder / f"{kind}.{self.config.output.format}"


def _resolve(spec: str, root: Path) -> str:
    if spec.startswith(HF_PREFIX) or Path(spec).is_absolute():
        return spec
    return str(root / spec)


def plan_shards(config: DataRunConfig, catalogue: Catalogue, run_path: Path) -> list[ShardTask]:
    """One task per input shard, numbered in config order; checks the run dir's earlier plan."""
    tasks: list[ShardTask] = []
    for number, spec in enumerate(config.inputs):
        licence = catalogue.source(spec.source).licence
        paths = list_inputs([_resolve(p, config.input_root) for p in spec.paths])
        if not paths:
            raise ValueError(
                f"inputs.{number} ({spec.source}): {spec.paths} matched no readable shard "
                "(supported: JSON lines, Parquet, WARC, folders of .txt files, datasets)"
            )
        for path in paths:
            index = len(tasks)
            folder = run_path / "shards" / f"{index:05d}"
            tasks.append(ShardTask(index, path, licence, spec, config, folder))
    plan = {
        "fingerprint": hashlib.sha256(
            json.dumps(config.output_fingerprint(), sort_keys=True).encode()
        ).hexdigest(),
        "shards": [{"index": t.index, "path": t.path, "source": t.input.source} for t in tasks],
    }
    plan_path = run_path / "shards" / "plan.json"
    if not plan_path.exists():
        atomic_write_json(plan_path, plan)
    elif json.loads(plan_path.read_text(encoding="utf-8")) != plan:
        raise ValueError(
            f"{plan_path}: this run directory holds shards of a different config or input "
            "list; use a new --run-dir (or delete its shards/, corpus/ and dedup/ folders)"
        )
    return tasks


def task_shards(tasks: list[ShardTask], task: int, num_tasks: int) -> list[ShardTask]:
    """The shards of task ``task`` of ``num_tasks``: those whose index is ``task`` mod
    ``num_tasks`` (every shard belongs to exactly one task; a task may have none)."""
    if not 0 <= task < num_tasks:
        raise ValueError(f"--task {task}: must be 0 … {num_tasks - 1} for --tasks {num_tasks}")
    return [t for t in tasks if t.index % num_tasks == task]


# --------------------------------------------------------------------------- one shard


def _sinks(
    ledger: Ledger, removed: ShardWriter, quarantined: ShardWriter, on_quarantine: Callable
) -> tuple[Sink, Sink]:
    def remove(doc: Document, step: str, reason: str) -> None:
        doc.metadata["removal"] = {"step": step, "reason": reason}
        removed.write(doc)
        ledger.add("removed", step, doc)

    def quarantine(doc: Document, step: str, reason: str) -> None:
        doc.metadata["quarantine"] = {"step": step, "reason": reason}
        quarantined.write(doc)
        ledger.add("quarantined", step, doc)
        on_quarantine(reason)

    return remove, quarantine


def run_shard(task: ShardTask) -> dict[str, Any]:
    """Read one shard, run the per-document steps, write its outputs, then ``stats.json``."""
    start = time.perf_counter()
    shutil.rmtree(task.folder, ignore_errors=True)  # what an interrupted try left
    task.folder.mkdir(parents=True)
    spec, budget = task.input, task.config.executor.error_budget
    ledger, examples, chars = Ledger(), [], 0

    def on_quarantine(reason: str) -> None:
        if len(examples) < EXAMPLES:
            examples.append(reason)
        count = sum(ledger.total("quarantined").values())
        if budget is not None and count > budget:
            raise ErrorBudgetExceeded(
                f"{task.path}: {count} documents quarantined in this shard alone > "
                f"executor.error_budget {budget}; first: {examples[0]}"
            )

    steps = document_steps(task.config.steps)
    with ExitStack() as stack:
        kept, removed, quarantined = (
            stack.enter_context(ShardWriter(task.output(kind), task.config.output.format))
            for kind in ("kept", "removed", "quarantined")
        )
        remove, quarantine = _sinks(ledger, removed, quarantined, on_quarantine)
        for step in steps:
            step.removed_sink, step.quarantine_sink = remove, quarantine

        def reader_quarantine(doc: Document, step: str, reason: str) -> None:
            ledger.add("read", step, doc)
            quarantine(doc, step, reason)

        def read() -> Iterator[Document]:
            for doc in read_documents(
                task.path, source=spec.source, licence=task.licence,
                text_field=spec.text_field, id_field=spec.id_field,
                quarantine=reader_quarantine, max_chars=spec.max_chars,
            ):  # fmt: skip
                doc.metadata.update(spec.metadata)
                ledger.add("read", "read", doc)
                yield doc

        docs: Iterable[Document] = read()
        for step in steps:
            docs = step.run(docs)
        for doc in docs:
            kept.write(doc)
            chars += len(doc.text)
            ledger.add("passed", WRITE_STEP, doc)
    stats = {
        "shard": task.index,
        "input": task.path,
        "source": spec.source,
        "steps": [step.stats.to_json() for step in steps],
        "ledger": ledger.to_json(),
        "chars_passed": chars,
        "quarantine_examples": examples,
        "seconds": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(task.folder / DONE, stats)
    return stats


def _run_shard_with_context(task: ShardTask) -> dict[str, Any]:
    try:
        return run_shard(task)
    except ErrorBudgetExceeded:
        raise
    except Exception as err:
        cause = f"{type(err).__name__}: {err}"
        raise ShardFailed(f"shard {task.name} ({task.path}) failed: {cause}") from err


def _check_budget(done: dict[int, dict[str, Any]], budget: int | None) -> None:
    if budget is None:
        return
    ledgers = [Ledger.from_json(s["ledger"]) for s in done.values()]
    count = sum(sum(ledger.total("quarantined").values()) for ledger in ledgers)
    if count > budget:
        examples = [e for s in sorted(done.values(), key=lambda s: s["shard"])
                    for e in s["quarantine_examples"]][:5]  # fmt: skip
        raise ErrorBudgetExceeded(
            f"{count} documents quarantined > executor.error_budget {budget}; the run stops. "
            f"First reasons:\n  " + "\n  ".join(examples) + "\nFix the inputs or raise "
            "executor.error_budget, then run the same command again (finished shards are kept)."
        )


def finished_shards(tasks: list[ShardTask]) -> dict[int, dict[str, Any]]:
    """``{index: stats}`` of the shards among ``tasks`` that have their done marker."""
    done = {}
    for task in tasks:
        marker = task.folder / DONE
        if marker.exists():
            done[task.index] = json.loads(marker.read_text(encoding="utf-8"))
    return done


def require_finished(tasks: list[ShardTask], budget: int | None) -> list[dict[str, Any]]:
    """All shards' stats in shard order; raise :class:`ShardsMissing` if any is unfinished."""
    done = finished_shards(tasks)
    missing = [t for t in tasks if t.index not in done]
    if missing:
        names = ", ".join(f"{t.name} ({t.path})" for t in missing[:5])
        raise ShardsMissing(
            f"{len(missing)} of {len(tasks)} shard(s) have no {DONE} yet: {names}"
            f"{' …' if len(missing) > 5 else ''}. Run their tasks again (under Slurm: "
            "`bloomkit slurm resubmit RUN --failed`), or run without --merge to do them here."
        )
    _check_budget(done, budget)
    return [done[task.index] for task in tasks]


def run_shards(tasks: list[ShardTask], workers: int, budget: int | None) -> list[dict[str, Any]]:
    """Run every shard without a done marker; return all shards' stats in shard order."""
    done = finished_shards(tasks)
    todo = [task for task in tasks if task.index not in done]
    _check_budget(done, budget)
    with ExitStack() as stack:
        if workers == 1 or len(todo) <= 1:
            results: Iterable[dict[str, Any]] = map(_run_shard_with_context, todo)
        else:
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(min(workers, len(todo)))
            )
            results = pool.imap_unordered(_run_shard_with_context, todo)
        for stats in progress(results, "shards", total=len(todo)):
            done[stats["shard"]] = stats
            _check_budget(done, budget)
    return [done[task.index] for task in tasks]


# --------------------------------------------------------------------------- dedup stage


def dedup_steps(config: DataRunConfig, folder: Path | None = None) -> list[Step]:
    """The dedup stage's steps in order; each keeps its work files in ``folder / name``."""
    dedup = config.steps.dedup
    steps: list[Step] = [UniqueIds(folder and folder / UniqueIds.name)]
    if dedup.exact:
        steps.append(ExactDedup(folder and folder / ExactDedup.name))
    if dedup.minhash is not None:
        steps.append(MinHashDedup(dedup.minhash, folder and folder / MinHashDedup.name))
    return steps


def _write_corpus(docs: Iterable[Document], folder: Path, config: DataRunConfig) -> None:
    fmt, size = config.output.format, config.output.docs_per_shard
    folder.mkdir()
    with ExitStack() as stack:
        writer, shards = None, 0
        for doc in docs:
            if writer is None or writer.count == size:
                stack.close()
                writer = stack.enter_context(ShardWriter(folder / f"{shards:05d}.{fmt}", fmt))
                shards += 1
            writer.write(doc)


def dedup_stage(tasks: list[ShardTask], config: DataRunConfig, run_path: Path) -> dict[str, Any]:
    """Deduplicate all kept shards in shard order and write ``corpus/``; once per run.

    Streaming, in three reads of the kept shards: the first gives the keys of ``unique_id``
    and ``dedup_exact`` to sorted runs on disk, merged into bitmaps of the positions they
    remove; the second drops those positions and MinHash indexes the rest (its band runs are
    then merged into clusters); the third, less the positions removed, writes MinHash's
    selection. Only bitmaps of positions, merge blocks and the near-duplicate clusters are
    held, never the corpus nor one entry per document.
    """
    folder = run_path / "dedup"
    marker = folder / DONE
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8"))
    start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    for stale in run_path.glob(".corpus.*-*"):  # atomic_path leftovers of a killed run
        shutil.rmtree(stale, ignore_errors=True)
    steps, ledger, fmt = dedup_steps(config, folder), Ledger(), config.output.format
    minhash = steps[-1] if isinstance(steps[-1], MinHashDedup) else None
    firsts = [step for step in steps if isinstance(step, FirstOccurrence)]
    chars: Counter[str] = Counter()

    def shard_docs(skip: Bitmap | None = None) -> Iterator[Document]:
        docs = (d for t in tasks for d in read_shard(t.output("kept")))
        return (d for i, d in enumerate(docs) if skip is None or i not in skip)

    for doc in shard_docs():
        for first in firsts:
            first.add(doc)
    dropped = Bitmap()  # stream positions removed before MinHash
    for first in firsts:
        dropped = first.finish(dropped)

    with ShardWriter(folder / f"removed.{fmt}", fmt) as removed:

        def remove(doc: Document, step: str, reason: str) -> None:
            doc.metadata["removal"] = {"step": step, "reason": reason}
            removed.write(doc)
            ledger.add("removed", step, doc)

        docs: Iterable[Document] = shard_docs()
        for step in steps:
            step.removed_sink = remove
            if step is minhash:
                minhash.cluster(docs)
                docs = minhash.select(shard_docs(dropped))
            else:
                assert isinstance(step, FirstOccurrence)
                docs = step.select(docs)

        def counted(docs: Iterable[Document]) -> Iterator[Document]:
            for doc in docs:
                ledger.add("kept", WRITE_STEP, doc)
                chars[doc.language or "unknown"] += len(doc.text)
                yield doc

        with atomic_path(run_path / "corpus") as tmp:
            _write_corpus(counted(docs), tmp, config)
    clusters = minhash.report() if minhash else None
    atomic_write_json(folder / "clusters.json", clusters)
    stats = {
        "steps": [step.stats.to_json() for step in steps],
        "ledger": ledger.to_json(),
        "clusters": clusters,
        "kept_chars_by_language": dict(sorted(chars.items())),
        "seconds": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(marker, stats)
    return stats


def merged_steps(stats: Iterable[dict[str, Any]]) -> dict[str, StepStats]:
    """Step stats of many shards (and the dedup stage) merged by step name."""
    merged: dict[str, StepStats] = {}
    for part in stats:
        for data in part["steps"]:
            step = StepStats.from_json(data)
            merged[step.name] = merged[step.name] + step if step.name in merged else step
    return merged
