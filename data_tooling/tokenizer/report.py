"""Tokenizer fairness across the 46 BLOOM languages, on aligned SIB-200 sentences.

For each language: tokens per word (whitespace words; not for scripts written without
spaces), tokens per UTF-8 byte, and the *premium*: tokens needed for the same sentences
(rows with the same ``index_id`` are translations) divided by English's. Optionally side by
side with a baseline tokenizer (e.g. one trained without language balancing).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bloomkit.data_tooling.languages import languages
from bloomkit.data_tooling.sample import read_tsv
from bloomkit.data_tooling.tokenizer.train import load_tokenizer
from bloomkit.rundir import atomic_path, atomic_write_json, atomic_write_text

NO_SPACE_SCRIPTS = {"Hans", "Hant", "Jpan", "Thai"}
GOAL_MAX, GOAL_MEDIAN = 2.0, 1.3


def aligned_rows(sib200: Path, split: str = "dev") -> dict[str, dict[str, str]]:
    """``{language: {index_id: text}}`` restricted to ids present in every language."""
    table: dict[str, dict[str, str]] = {}
    for code in languages():
        path = sib200 / code / f"{split}.tsv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (need {split}.tsv for all 46 languages)")
        table[code] = {row["index_id"]: row["text"] for row in read_tsv(path)}
    common = set.intersection(*(set(rows) for rows in table.values()))
    return {code: {i: rows[i] for i in sorted(common)} for code, rows in table.items()}


def measure(tokenizer_dir: Path, rows: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Per-language tokens, bytes, words, tokens/word, tokens/byte and premium over English."""
    tokenizer = load_tokenizer(tokenizer_dir)
    info = languages()
    result: dict[str, dict[str, Any]] = {}
    for code, texts in rows.items():
        encodings = tokenizer.encode_batch_fast(list(texts.values()), add_special_tokens=False)
        tokens = sum(len(e.ids) for e in encodings)
        size = sum(len(t.encode("utf-8")) for t in texts.values())
        spaced = info[code].script not in NO_SPACE_SCRIPTS
        words = sum(len(t.split()) for t in texts.values()) if spaced else None
        result[code] = {
            "tokens": tokens,
            "bytes": size,
            "tokens_per_word": tokens / words if words else None,
            "tokens_per_byte": tokens / size,
        }
    english = result["en"]["tokens"]
    for row in result.values():
        row["premium"] = row["tokens"] / english
    return result


def goals(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Highest and median premium of the languages other than English, and the goals met."""
    premiums = [row["premium"] for code, row in measured.items() if code != "en"]
    worst, median = max(premiums), statistics.median(premiums)
    return {
        "max_premium": worst,
        "median_premium": median,
        "meets_max_goal": worst <= GOAL_MAX,
        "meets_median_goal": median <= GOAL_MEDIAN,
    }


def versus_baseline(
    main: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Languages whose premium ``main`` lowers compared with ``base`` (English excluded), the
    others, and the languages that need more tokens with ``main`` (English included)."""
    non_en = [code for code in main if code != "en"]
    better = [code for code in non_en if main[code]["premium"] < base[code]["premium"]]
    return {
        "better_than_baseline": len(better),
        "worse_or_equal": sorted(set(non_en) - set(better)),
        "more_tokens_than_baseline": sorted(
            code for code in main if main[code]["tokens"] > base[code]["tokens"]
        ),
    }


def fairness_report(
    tokenizer_dir: Path, sib200: Path, out: Path, baseline_dir: Path | None = None
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and ``premium.png`` under ``out``; return the report."""
    rows = aligned_rows(sib200)
    main = measure(tokenizer_dir, rows)
    base = measure(baseline_dir, rows) if baseline_dir is not None else None
    report: dict[str, Any] = {
        "tokenizer": str(tokenizer_dir),
        "baseline": str(baseline_dir) if baseline_dir else None,
        "sentences_per_language": len(rows["en"]),
        "summary": goals(main),
        "languages": main,
    }
    if base is not None:
        report["baseline_summary"] = goals(base)
        report["baseline_languages"] = base
        report |= versus_baseline(main, base)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", to_markdown(report))
    series = {"tokenizer": main}
    if base is not None:
        series = {"balanced": main, "baseline (no balancing)": base}
    plot(series, out / "premium.png")
    return report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, languages sorted by premium (worst first)."""
    main, base = report["languages"], report.get("baseline_languages")
    head = "| lang | tokens/word | tokens/byte | premium |"
    rule = "|---|---:|---:|---:|"
    if base:
        head += " baseline tokens/word | baseline premium | change |"
        rule += "---:|---:|---:|"
    lines = [f"# Tokenizer fairness: {report['tokenizer']}", ""]
    for name, key in (("tokenizer", "summary"), ("baseline", "baseline_summary")):
        if key in report:
            s = report[key]
            lines.append(
                f"- {name}: max premium {s['max_premium']:.2f}× (goal ≤{GOAL_MAX}), "
                f"median {s['median_premium']:.2f}× (goal ≤{GOAL_MEDIAN})"
            )
    if base:
        lines.append(f"- better than baseline in {report['better_than_baseline']}/45 languages")
    lines += ["", head, rule]
    for code in sorted(main, key=lambda c: -main[c]["premium"]):
        row = main[code]
        cells = [code, _fmt(row["tokens_per_word"]), _fmt(row["tokens_per_byte"]),
                 _fmt(row["premium"], 2)]  # fmt: skip
        if base:
            b = base[code]
            change = row["premium"] / b["premium"] - 1
            cells += [_fmt(b["tokens_per_word"]), _fmt(b["premium"], 2), f"{change:+.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(series: dict[str, dict[str, dict[str, Any]]], target: Path) -> None:
    """Bar chart of the premium per language, one bar per tokenizer of ``series`` (label:
    per-language measures, languages ordered by the first), goal lines included."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(series.values()))
    order = sorted(first, key=lambda c: first[c]["premium"])
    fig, ax = plt.subplots(figsize=(14, 4.5))
    width = 0.8 / len(series)
    for i, (label, measured) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        xs = [x + offset for x in range(len(order))]
        ax.bar(xs, [measured[c]["premium"] for c in order], width, label=label)
    ax.axhline(GOAL_MAX, color="red", linestyle="--", linewidth=1, label=f"goal max {GOAL_MAX}×")
    ax.axhline(GOAL_MEDIAN, color="orange", linestyle=":", linewidth=1, label="goal median")
    ax.set_xticks(range(len(order)), order, rotation=90)
    ax.set_ylabel("tokens vs English (aligned)")
    ax.set_title("Tokenizer premium over English on SIB-200 dev")
    ax.legend()
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
