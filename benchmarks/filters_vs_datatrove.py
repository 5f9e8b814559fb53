"""bloomkit quality filters vs datatrove 0.10.1's default filters: speed and false removals.

    .venv/bin/python benchmarks/filters_vs_datatrove.py ../shared/data

Same input for both (clean SIB-200 ``dev`` documents of 5 sentences, all 46 languages,
repeated ``--repeat`` times for timing), same process, one core. datatrove runs
GopherRepetitionFilter + GopherQualityFilter + C4QualityFilter + FineWebQualityFilter with
their defaults (English word tokenizer and stop words, as a user gets them); bloomkit runs
``QualityFilter`` with the per-language tables. Two timings each:

* pipeline: filters in sequence, a document stops at its first removal (what a run costs);
* all checks: every filter/check on every document (cost independent of what is removed).

Writes ``benchmarks/results/filters_vs_datatrove.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from datatrove.data import Document as DTDocument
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.sib200 import documents
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.quality.filters import QualityFilter

RESULTS = Path(__file__).parent / "results" / "filters_vs_datatrove.md"


def datatrove_filters(stop_words: bool = True) -> list:
    gopher = GopherQualityFilter() if stop_words else GopherQualityFilter(min_stop_words=None)
    return [GopherRepetitionFilter(), gopher, C4QualityFilter(), FineWebQualityFilter()]


def datatrove_verdict(filters: list, text: str, every: bool = False) -> bool:
    doc = DTDocument(text=text, id="0", metadata={})
    keep = True
    for f in filters:
        verdict = f.filter(doc)
        ok = verdict if isinstance(verdict, bool) else verdict[0]
        keep = keep and ok
        if not keep and not every:
            return False
    return keep


def bloomkit_verdict(quality: QualityFilter, text: str, lang: str, every: bool = False) -> bool:
    doc = Document(id="0", text=text, language=lang)
    if not every:
        return quality.filter(doc) is True
    return not quality.failures(doc)


def timed(fn: Callable[[str, str], bool], corpus: list[tuple[str, str]]) -> float:
    """Characters per second of ``fn`` over the corpus."""
    start = time.perf_counter()
    for lang, text in corpus:
        fn(text, lang)
    return sum(len(t) for _, t in corpus) / (time.perf_counter() - start)


def run(shared_data: Path, repeat: int) -> str:
    docs = {lang: documents(shared_data, lang, "dev") for lang in language_codes()}
    corpus = [(lang, text) for lang, texts in docs.items() for text in texts] * repeat
    quality, dt, dt_nostop = QualityFilter(), datatrove_filters(), datatrove_filters(False)
    bloomkit_verdict(quality, "warm up the tables", "en")
    datatrove_verdict(dt, "Warm up the tokenizer.")

    speed = {
        ("pipeline", "bloomkit"): timed(lambda t, lang: bloomkit_verdict(quality, t, lang), corpus),
        ("pipeline", "datatrove"): timed(lambda t, lang: datatrove_verdict(dt, t), corpus),
        ("all checks", "bloomkit"): timed(
            lambda t, lang: bloomkit_verdict(quality, t, lang, every=True), corpus
        ),
        ("all checks", "datatrove"): timed(
            lambda t, lang: datatrove_verdict(dt, t, every=True), corpus
        ),
    }
    rows = []
    for lang, texts in docs.items():
        removed = [
            sum(not bloomkit_verdict(quality, t, lang) for t in texts),
            sum(not datatrove_verdict(dt, t) for t in texts),
            sum(not datatrove_verdict(dt_nostop, t) for t in texts),
        ]
        rows.append((lang, len(texts), *(r / len(texts) for r in removed)))

    chars = sum(len(t) for _, t in corpus)
    command = f"{Path(sys.executable).name} benchmarks/filters_vs_datatrove.py {shared_data}"
    out = [
        "# bloomkit quality filters vs datatrove 0.10.1 default filters",
        "",
        f"Command: `.venv/bin/{command} --repeat {repeat}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" datatrove {version('datatrove')}, spacy {version('spacy')}, one process.  ",
        f"Input: {len(corpus)} clean SIB-200 dev documents (5 sentences, 46 languages,"
        f" x{repeat}), {chars:,} characters.",
        "",
        "datatrove: GopherRepetitionFilter + GopherQualityFilter + C4QualityFilter +"
        " FineWebQualityFilter, defaults (English tokenizer and stop words). bloomkit:"
        " `QualityFilter` (per-language tables).",
        "",
        "## Speed (characters per second)",
        "",
        "| mode | bloomkit | datatrove | ratio |",
        "|---|---|---|---|",
    ]
    for mode in ("pipeline", "all checks"):
        b, d = speed[(mode, "bloomkit")], speed[(mode, "datatrove")]
        out.append(f"| {mode} | {b:,.0f} | {d:,.0f} | {b / d:.1f}x |")
    out += [
        "",
        "pipeline: a document stops at its first removal; all checks: every check on every"
        " document.",
        "",
        "## False removal on clean dev documents",
        "",
        "| language | documents | bloomkit | datatrove | datatrove without stop-word rule |",
        "|---|---|---|---|---|",
    ]
    out += [f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} |" for r in rows]
    mean = [sum(r[i] for r in rows) / len(rows) for i in (2, 3, 4)]
    out.append(f"| **mean** | | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path, help="folder holding sib200/<lang>/dev.tsv")
    parser.add_argument("--repeat", type=int, default=2, help="corpus repetitions for timing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args.shared_data, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
