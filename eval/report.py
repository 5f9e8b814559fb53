"""Per-language report of one results record: a rich table and a heatmap PNG.

Languages are grouped by family, then resource level (high, mid, low), from
``data_tooling/tables/languages.tsv``; one column per benchmark (its headline metric), each
coloured on its own scale, so better is always darker whatever the metric's direction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bloomkit.console import summary_table
from bloomkit.data_tooling.languages import languages
from bloomkit.eval.compare import headline
from bloomkit.eval.results import EvalResults
from bloomkit.rundir import atomic_path

RESOURCE_ORDER = {"high": 0, "mid": 1, "low": 2}
LOWER_IS_BETTER = {"bits_per_byte", "byte_perplexity", "word_perplexity"}


def language_rows(results: EvalResults) -> list[dict[str, Any]]:
    """One row per language (family/resource order): its headline metric per benchmark."""
    table = languages()
    columns: dict[str, str] = {}
    by_lang: dict[str, dict[str, Any]] = {}
    for task in results.tasks.values():
        if not task.lang:
            continue
        metric = headline(task)
        column = task.benchmark
        columns.setdefault(column, metric)
        by_lang.setdefault(task.lang, {})[column] = task.metrics[metric].value
    for gap in results.missing:
        if gap.lang:
            by_lang.setdefault(gap.lang, {})
    missing = {(m.lang, m.task) for m in results.missing}

    def order(code: str) -> tuple[str, int, int]:
        lang = table.get(code)
        position = list(table).index(code) if lang else len(table)
        return (lang.family if lang else "~", RESOURCE_ORDER.get(lang.resource, 3) if lang else 3,
                position)  # fmt: skip

    rows = []
    for code in sorted(by_lang, key=order):
        lang = table.get(code)
        row: dict[str, Any] = {
            "lang": code,
            "name": lang.name if lang else "",
            "family": lang.family if lang else "",
            "resource": lang.resource if lang else "",
        }
        for column in columns:
            row[column] = by_lang[code].get(column)
        gaps = [task for lang_code, task in missing if lang_code == code]
        row["missing"] = ", ".join(gaps)
        rows.append(row)
    return rows


def headline_metrics(results: EvalResults) -> dict[str, str]:
    """Benchmark -> the metric its report column shows (``acc``, ``bits_per_byte``)."""
    return {t.benchmark: headline(t) for t in results.tasks.values()}


def print_table(results: EvalResults, title: str) -> list[dict[str, Any]]:
    rows = language_rows(results)
    metrics = ", ".join(f"{b}: {m}" for b, m in headline_metrics(results).items())
    summary_table(f"{title} ({metrics})", rows)
    return rows


def heatmap(results: EvalResults, out: Path) -> Path:
    """Languages × benchmarks, grouped by family and resource level; blank where missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = language_rows(results)
    metrics = headline_metrics(results)
    columns = [c for c in rows[0] if c not in ("lang", "name", "family", "resource", "missing")]
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(columns), 1.2 + 0.22 * len(rows)))
    for j, column in enumerate(columns):
        values = np.array([np.nan if r[column] is None else r[column] for r in rows], dtype=float)
        cmap = "viridis" if metrics.get(column) in LOWER_IS_BETTER else "viridis_r"  # dark = good
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        ax.imshow(
            values[:, None], cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-9,
            extent=(j - 0.5, j + 0.5, len(rows) - 0.5, -0.5), aspect="auto",
        )  # fmt: skip
        lower_better = metrics.get(column) in LOWER_IS_BETTER
        for i, value in enumerate(values):
            text = "—" if np.isnan(value) else f"{value:.3g}"
            position = (value - lo) / (hi - lo) if hi > lo else 0.0
            dark = position < 0.5 if lower_better else position > 0.5
            color = "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xticks(range(len(columns)), [f"{c}\n{metrics.get(c, '')}" for c in columns], fontsize=7)
    labels = [f"{r['lang']} · {r['resource']}" for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=6)
    for i in range(1, len(rows)):
        if rows[i]["family"] != rows[i - 1]["family"]:
            ax.axhline(i - 0.5, color="black", linewidth=1.2)
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["family"] != rows[start]["family"]:
            ax.text(len(columns) - 0.4, (start + i - 1) / 2, rows[start]["family"],
                    fontsize=6, va="center", ha="left")  # fmt: skip
            start = i
    ax.set_title(f"{results.suite or 'eval'}: per language (darker = better)", fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
    return out
