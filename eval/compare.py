"""``bloomkit eval compare A B``: per-language differences between two runs, with significance.

Per task, the headline metric (``acc`` or ``bits_per_byte``) of B minus A. When both runs
logged the same documents, the p-value comes from a paired bootstrap over documents (Koehn,
2004, "Statistical Significance Tests for Machine Translation Evaluation"); otherwise from a
two-sided z-test on the two stderrs. With 46 languages some differences look significant by
chance, so p-values are Holm–Bonferroni adjusted across the rows (Holm, 1979) before
``significant`` is set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from bloomkit.eval.results import EvalResults, TaskResult

HEADLINE = ("acc", "bits_per_byte")
Method = Literal["paired-bootstrap", "z-test", "none"]


@dataclass(frozen=True, slots=True)
class Difference:
    task: str
    lang: str | None
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    """b - a."""
    p_value: float | None
    p_adjusted: float | None
    method: Method
    significant: bool

    def row(self) -> dict[str, Any]:
        return asdict(self)


def headline(task: TaskResult) -> str:
    for metric in HEADLINE:
        if metric in task.metrics:
            return metric
    return next(iter(task.metrics))


def _statistic(metric: str, per_doc: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """The metric on each bootstrap resample (rows of ``idx``)."""
    if metric == "bits_per_byte":
        ll, nbytes = per_doc["loglikelihood"][idx], per_doc["bytes"][idx]
        return -ll.sum(axis=-1) / nbytes.sum(axis=-1) / math.log(2)
    return per_doc[metric][idx].mean(axis=-1)


def _needs(metric: str) -> tuple[str, ...]:
    return ("loglikelihood", "bytes") if metric == "bits_per_byte" else (metric,)


def paired_bootstrap(
    a: TaskResult, b: TaskResult, metric: str, iters: int = 10_000, seed: int = 0
) -> float | None:
    """Two-sided p-value of b ≠ a over resamples of the shared documents; None if not paired."""
    keys = _needs(metric)
    if a.doc_ids != b.doc_ids or len(a.doc_ids) < 2:
        return None
    if not all(k in a.per_doc and k in b.per_doc for k in keys):
        return None
    pa = {k: np.asarray(a.per_doc[k]) for k in keys}
    pb = {k: np.asarray(b.per_doc[k]) for k in keys}
    idx = np.random.default_rng(seed).integers(0, len(a.doc_ids), (iters, len(a.doc_ids)))
    deltas = _statistic(metric, pb, idx) - _statistic(metric, pa, idx)
    if np.all(deltas == 0):
        return 1.0
    tail = min(np.mean(deltas <= 0), np.mean(deltas >= 0))
    return float(min(1.0, 2 * tail))


def z_test(delta: float, se_a: float | None, se_b: float | None) -> float | None:
    if se_a is None or se_b is None:
        return None
    se = math.hypot(se_a, se_b)
    if se == 0:
        return 1.0 if delta == 0 else 0.0
    return math.erfc(abs(delta) / se / math.sqrt(2))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (None stays None)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def compare(
    a: EvalResults, b: EvalResults, *, alpha: float = 0.05, iters: int = 10_000
) -> list[Difference]:
    """One row per task both runs scored, in A's order."""
    rows: list[tuple[str, str | None, str, float | None, float | None, float | None, Any]] = []
    for name, ta in a.tasks.items():
        tb = b.tasks.get(name)
        if tb is None:
            continue
        metric = headline(ta)
        sa, sb = ta.metrics.get(metric), tb.metrics.get(metric)
        va = sa.value if sa else None
        vb = sb.value if sb else None
        if va is None or vb is None:
            rows.append((name, ta.lang, metric, va, vb, None, (None, "none")))
            continue
        p = paired_bootstrap(ta, tb, metric, iters=iters)
        test: tuple[float | None, Method] = (p, "paired-bootstrap")
        if p is None:
            z = z_test(vb - va, sa.stderr if sa else None, sb.stderr if sb else None)
            test = (z, "z-test" if z is not None else "none")
        rows.append((name, ta.lang, metric, va, vb, vb - va, test))
    adjusted = holm([r[6][0] for r in rows])
    return [
        Difference(
            task=name,
            lang=lang,
            metric=metric,
            a=va,
            b=vb,
            delta=delta,
            p_value=test[0],
            p_adjusted=adj,
            method=test[1],
            significant=adj is not None and adj < alpha,
        )
        for (name, lang, metric, va, vb, delta, test), adj in zip(rows, adjusted, strict=True)
    ]
