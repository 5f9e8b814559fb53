"""Where every input document ended: kept, removed (step + reason) or quarantined.

A :class:`Ledger` counts documents by ``(outcome, step, source, language)`` at the points
where they leave a stage: the reader (``read``), the removed and quarantine sinks, the shard
writer (``passed`` on to deduplication) and the corpus writer (``kept``). :func:`reconcile`
checks, at the end of every run, with counts taken independently of one another:

- per source: ``read == kept + removed + quarantined``;
- per language: documents that entered with that language (counted by the ``lid`` step, or
  ``unknown`` when they left before it) ``== kept + removed + quarantined``;
- per step, in order: ``seen == kept + removed + quarantined`` and each step sees exactly
  what the one before it kept, so no step can lose a document without it showing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bloomkit.data_tooling.pipeline.base import Document, StepStats

OUTCOMES = ("kept", "removed", "quarantined")
READ_STEP = "read"
WRITE_STEP = "write"


class AccountingError(RuntimeError):
    """Counts that do not add up; ``str()`` lists every mismatch, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "accounting failed (documents lost or counted twice):\n  " + "\n  ".join(problems)
        )


@dataclass
class Ledger:
    """Documents counted by ``(outcome, step, source, language)``; merge with ``+``."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def add(self, outcome: str, step: str, doc: Document) -> None:
        self.counts[outcome, step, doc.source, doc.language or "unknown"] += 1

    def __add__(self, other: Ledger) -> Ledger:
        return Ledger(self.counts + other.counts)

    def total(self, outcome: str, by: str = "", steps: Iterable[str] | None = None) -> Counter:
        """Counts of ``outcome`` keyed by ``"source"``, ``"language"``, ``"step"`` or ``""``."""
        wanted = None if steps is None else set(steps)
        out: Counter[str] = Counter()
        for (kind, step, source, language), n in self.counts.items():
            if kind == outcome and (wanted is None or step in wanted):
                key = {"source": source, "language": language, "step": step}.get(by, "")
                out[key] += n
        return out

    def to_json(self) -> list[list[Any]]:
        return [[*key, n] for key, n in sorted(self.counts.items())]

    @classmethod
    def from_json(cls, rows: list[list[Any]]) -> Ledger:
        return cls(Counter({tuple(row[:4]): row[4] for row in rows}))


@dataclass
class Accounting:
    """Reconciled counts per source and per language (rows for tables and the data card)."""

    by_source: dict[str, dict[str, int]]
    by_language: dict[str, dict[str, int]]


def _outcomes(ledger: Ledger, by: str) -> dict[str, Counter]:
    return {outcome: ledger.total(outcome, by) for outcome in OUTCOMES}


def _check_chain(
    stage: str, start: int, steps: Iterable[str], stats: Mapping[str, StepStats], end: int
) -> tuple[list[str], int]:
    problems = []
    flow = start
    for name in steps:
        c = stats[name].counts
        out = c["kept"] + c["removed"] + c["quarantined"]
        if c["seen"] != flow:
            problems.append(f"{stage}: step {name} saw {c['seen']} documents, expected {flow}")
        if c["seen"] != out:
            problems.append(
                f"{stage}: step {name}: seen {c['seen']} != kept {c['kept']} + removed "
                f"{c['removed']} + quarantined {c['quarantined']}"
            )
        flow = c["kept"]
    if flow != end:
        problems.append(f"{stage}: the last step kept {flow} documents but {end} were written")
    return problems, flow


def _rows(
    label: str, entered: Counter, by_outcome: dict[str, Counter], problems: list[str]
) -> dict[str, dict[str, int]]:
    rows = {}
    for key in sorted(set(entered).union(*by_outcome.values())):
        row = {"read": entered[key], **{o: by_outcome[o][key] for o in OUTCOMES}}
        if row["read"] != sum(row[o] for o in OUTCOMES):
            problems.append(
                f"{label} {key}: read {row['read']} != kept {row['kept']} + removed "
                f"{row['removed']} + quarantined {row['quarantined']}"
            )
        rows[key] = row
    return rows


def reconcile(
    ledger: Ledger,
    stats: Mapping[str, StepStats],
    document_steps: list[str],
    dedup_steps: list[str],
) -> Accounting:
    """Check every invariant in the module docstring; raise :class:`AccountingError` if not."""
    read = ledger.total("read", "source")
    read_quarantined = sum(ledger.total("quarantined", steps=[READ_STEP]).values())
    passed = sum(ledger.total("passed").values())
    kept = sum(ledger.total("kept").values())
    problems, _ = _check_chain(
        "shards", sum(read.values()) - read_quarantined, document_steps, stats, passed
    )
    problems += _check_chain("dedup", passed, dedup_steps, stats, kept)[0]
    by_source = _rows("source", read, _outcomes(ledger, "source"), problems)

    # A document's language is the one ``lid`` gave it; ``unknown`` if it left before lid.
    entered: Counter[str] = Counter()
    if "lid" in document_steps:
        before = [READ_STEP, *document_steps[: document_steps.index("lid")]]
        for lang, counter in stats["lid"].by_language.items():
            entered[lang] += counter["seen"]
        for outcome in ("removed", "quarantined"):
            entered.update(ledger.total(outcome, "language", steps=before))
    else:
        entered["unknown"] = sum(read.values())
    by_language = _rows("language", entered, _outcomes(ledger, "language"), problems)
    if problems:
        raise AccountingError(problems)
    return Accounting(by_source, by_language)
