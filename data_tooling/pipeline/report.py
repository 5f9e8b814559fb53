"""What a corpus run reports: summary rows, two PNG plots and a Markdown data card.

Everything here is computed from the reconciled :class:`~.accounting.Accounting`, the merged
step stats and the catalogue, so the data card can only say what the run counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloomkit.data_tooling.catalogue import Catalogue
from bloomkit.data_tooling.pipeline.accounting import Accounting
from bloomkit.data_tooling.pipeline.base import StepStats
from bloomkit.data_tooling.pipeline.config import DataRunConfig
from bloomkit.rundir import atomic_path, atomic_write_text

LIMITATIONS = (
    "Quality thresholds come from clean reference text per language (FLORES-200 via "
    "SIB-200); genres far from it (code-mixed chat, poetry, lists) are removed more often.",
    "PII redaction is pattern-based (e-mail, IP, handles, keys, Luhn-valid cards): names, "
    "street addresses and phone numbers are not redacted.",
    "Near-duplicate removal keeps the first document of a cluster in shard order and holds "
    "the corpus in memory during the dedup stage.",
)


@dataclass
class RunReport:
    """The facts a report is made of."""

    config: DataRunConfig
    catalogue: Catalogue
    accounting: Accounting
    steps: Mapping[str, StepStats]
    step_order: Sequence[str]
    kept_chars: Mapping[str, int]
    clusters: Mapping[str, Any] | None
    optout: list[dict[str, Any]] = field(default_factory=list)


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def summary_rows(report: RunReport) -> list[dict[str, Any]]:
    """One row per source, then one per step: what it saw, removed and quarantined."""
    rows: list[dict[str, Any]] = []
    for source, row in report.accounting.by_source.items():
        rows.append({"what": f"source {source}", **row})
    for name in report.step_order:
        counts = report.steps[name].counts
        rows.append(
            {
                "what": f"step {name}",
                "read": counts["seen"],
                "kept": counts["kept"],
                "removed": counts["removed"],
                "quarantined": counts["quarantined"],
            }
        )
    return rows


def removals(steps: Mapping[str, StepStats], order: Sequence[str]) -> Counter[str]:
    """``"step: reason"`` → documents removed or quarantined, in step order."""
    out: Counter[str] = Counter()
    for name in order:
        counts = steps[name].counts
        for key, n in counts.items():
            if key.startswith("removed_"):
                out[f"{name}: {key.removeprefix('removed_')}"] += n
        if counts["quarantined"]:
            out[f"{name}: quarantined"] += counts["quarantined"]
    return out


def write_plots(report: RunReport, folder: Path) -> list[Path]:
    """``languages.png`` (kept document share per language) and ``removals.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = {k: v["kept"] for k, v in report.accounting.by_language.items() if v["kept"]}
    total = sum(kept.values()) or 1
    langs = sorted(kept, key=lambda k: (-kept[k], k))
    removed = removals(report.steps, report.step_order)
    reasons = list(removed)
    plots = [
        ("languages.png", langs, [100 * kept[k] / total for k in langs], "% of kept documents"),
        ("removals.png", reasons, [removed[r] for r in reasons], "documents removed"),
    ]
    paths = []
    for name, labels, values, xlabel in plots:
        fig, ax = plt.subplots(figsize=(7, max(2.0, 0.22 * len(labels) + 1)))
        ax.barh(labels or ["(none)"], values or [0], color="#4c72b0")
        ax.set_xlabel(xlabel)
        ax.invert_yaxis()  # the first label on top
        fig.tight_layout()
        path = folder / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ["None in this run.", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in r) + " |"
              for r in rows]  # fmt: skip
    return [*lines, ""]


def data_card(report: RunReport) -> str:
    """The Markdown data card of a run."""
    acc = report.accounting
    kept_docs = sum(r["kept"] for r in acc.by_source.values())
    read_docs = sum(r["read"] for r in acc.by_source.values())
    chars = sum(report.kept_chars.values())
    out = [
        "# Data card",
        "",
        f"{kept_docs:,} documents kept of {read_docs:,} read "
        f"({_share(kept_docs, read_docs)}), {chars:,} characters, "
        f"format `{report.config.output.format}`. Every document carries `id`, `source`, "
        "`licence`, `language`, `language_score` and its step `history`.",
        "",
        "## Sources and licences",
        "",
    ]
    sources = []
    for source_id, row in acc.by_source.items():
        src = report.catalogue.source(source_id)
        sources.append([f"`{src.id}`", src.name, src.licence, src.provenance, row["read"],
                        row["kept"], src.attribution or "–"])  # fmt: skip
    out += _table(["id", "name", "licence", "provenance", "read", "kept", "attribution"], sources)
    out += ["## Languages", ""]
    langs = sorted(acc.by_language.items(), key=lambda kv: (-kv[1]["kept"], kv[0]))
    out += _table(
        ["language", "documents", "doc share", "characters", "char share"],
        [[f"`{lang}`", r["kept"], _share(r["kept"], kept_docs), report.kept_chars.get(lang, 0),
          _share(report.kept_chars.get(lang, 0), chars)] for lang, r in langs if r["kept"]],
    )  # fmt: skip
    out += ["## Filters and their effect", ""]
    removed = removals(report.steps, report.step_order)
    out += _table(["step: reason", "documents", "share of read"],
                  [[r, n, _share(n, read_docs)] for r, n in removed.items()])  # fmt: skip
    out += _pii_section(report) + _dedup_section(report)
    if report.optout:
        out += ["## Opt-outs", "", "Every entry, with the documents it removed; none of them "
                "is left in the corpus (checked at the end of the run).", ""]  # fmt: skip
        out += _table(["entry", "removed"], [[e["entry"], e["removed"]] for e in report.optout])
    from bloomkit.data_tooling.lid import read_support

    unsupported = ", ".join(f"`{k}`" for k, ok in sorted(read_support().items()) if not ok)
    lid = (f"Language identification answers `unknown` rather than guess; it is below 0.90 "
           f"accuracy on held-out text for {unsupported or 'no language'} "
           "(`data_tooling/tables/lid_support.tsv`).")  # fmt: skip
    out += ["## Known limitations", "", *(f"- {item}" for item in (lid, *LIMITATIONS)), ""]
    return "\n".join(out)


def _pii_section(report: RunReport) -> list[str]:
    pii = report.steps.get("pii")
    if pii is None:
        return ["## PII", "", "PII redaction was off for this run.", ""]
    rows = [
        [f"`{lang}`", *(counts[f"pii_{k}"] for k in report.config.steps.pii.types)]
        for lang, counts in sorted(pii.by_language.items())
        if any(key.startswith("pii_") for key in counts)
    ]
    totals = ["**all**", *(pii.counts[f"pii_{k}"] for k in report.config.steps.pii.types)]
    out = ["## PII", "", f"Matches replaced by typed placeholders in {pii.counts['modified']:,} "
           "documents (before deduplication).", ""]  # fmt: skip
    return out + _table(["language", *report.config.steps.pii.types], [*rows, totals])


def _dedup_section(report: RunReport) -> list[str]:
    rows = []
    for name in ("unique_id", "dedup_exact", "dedup_minhash"):
        if name in report.steps:
            c = report.steps[name].counts
            rows.append([name, c["seen"], c["removed"], _share(c["removed"], c["seen"])])
    out = ["## Deduplication", "", *_table(["step", "seen", "removed", "rate"], rows)]
    if report.clusters:
        cfg = report.config.steps.dedup.minhash
        out += [f"MinHash-LSH ({cfg.n_gram}-gram shingles, {cfg.bands} bands × {cfg.rows} rows): "
                f"{report.clusters['clusters']:,} clusters, largest "
                f"{report.clusters['largest_cluster']}.", ""]  # fmt: skip
    return out


def write_report(report: RunReport, folder: Path) -> dict[str, str]:
    """Write ``data_card.md`` and the plots under ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    card = atomic_write_text(folder / "data_card.md", data_card(report))
    paths = {"data_card": card, **{p.stem: p for p in write_plots(report, folder)}}
    return {k: str(v) for k, v in paths.items()}
