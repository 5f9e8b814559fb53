"""Derive per-language quality thresholds and stopword lists from SIB-200 ``train`` only.

    python -m bloomkit.data_tooling.quality.derive SHARED_DATA_DIR

Method (documented in ``docs/quality_filters.md``):

* reference documents: train sentences in groups of 5, in file order and in
  ``SHUFFLES`` seeded random re-groupings (~840 clean documents per language);
* stopwords: the ``STOPWORDS`` most frequent words that occur in at least ``MIN_DF`` of the
  file-order documents (frequent *and* spread out, so topic words stay out);
* extra characters: non-letter characters of the language's clean text seen ``MIN_CHAR``
  times or more (its punctuation, and letters borrowed from another script, like Akan's ԑ);
* an upper bound is ``max(q99.5 * UPPER_MARGIN, floor)`` and a lower bound
  ``q0.5 * LOWER_MARGIN`` of the signal over the reference documents. The floors are the
  published defaults (Gopher, C4) for signals that are ~0 on clean text, where a percentile
  alone would make a bound too tight to mean anything;
* minimum length: half the 1st-percentile length of one train sentence.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import regex

from bloomkit.data_tooling.languages import language_codes, languages
from bloomkit.data_tooling.lid.sib200 import documents, group, read_sentences
from bloomkit.data_tooling.quality.profiles import (
    DEFAULT,
    FLAGGED,
    STOPWORDS,
    THRESHOLDS,
    Thresholds,
    special_pattern,
)
from bloomkit.data_tooling.quality.signals import (
    CLOSING,
    TERMINAL,
    Analysis,
    terminal_pattern,
    words,
)
from bloomkit.rundir import atomic_write_text

SHUFFLES = 5
STOPWORDS_N = 100
MIN_DF = 0.10
MIN_CHAR = 3
UPPER_MARGIN = 1.5
LOWER_MARGIN = 0.5
FLOORS = {
    "max_char_repetition": 0.20,  # ROOTS: most languages' cut-off lies at 0.1-0.2 (10-grams)
    "max_duplicate_5gram": 0.15,  # Gopher: duplicate 5-gram character fraction
    "max_top_2gram": 0.20,  # Gopher: top 2-gram character fraction
    "max_special_ratio": 0.05,  # ours: 1 odd character in 20 when clean text has ~none
    "max_mojibake_ratio": 0.001,  # ours: 1 mojibake pair per 1,000 characters
    "max_flagged_ratio": 0.01,  # ROOTS flags documents with a few percent of flagged words
    "max_boilerplate": 0.30,  # Gopher: duplicate-line character fraction
}


def derive_stopwords(sentences: list[str]) -> list[tuple[str, int]]:
    """``(word, count)`` of the language's stopwords, most frequent first."""
    docs = group(sentences, 5)
    counts = Counter(w for s in sentences for w in words(s) if not w.isdigit())
    df = Counter(w for d in docs for w in set(words(d)))
    kept = [(w, c) for w, c in counts.most_common() if df[w] >= MIN_DF * len(docs)]
    return kept[:STOPWORDS_N]


def extra_chars(script: str, sentences: list[str]) -> str:
    base = special_pattern(script, "")
    counts = Counter(ch for s in sentences for ch in base.findall(s))
    return "".join(sorted(ch for ch, c in counts.items() if c >= MIN_CHAR))


def terminals(sentences: list[str]) -> str:
    """Sentence-final characters (before closing quotes) that are not letters, not already
    terminal for Unicode, and end at least 1% of the language's sentences."""
    ends = Counter()
    for s in sentences:
        line = regex.sub(rf"[{CLOSING}\s]+$", "", s)
        if line and not regex.match(r"[\p{L}\p{M}\p{Nd}]", line[-1]) and not TERMINAL.search(line):
            ends[line[-1]] += 1
    return "".join(sorted(ch for ch, c in ends.items() if c >= 0.01 * len(sentences)))


def derive_language(lang: str, shared_data: Path) -> tuple[Thresholds, list[tuple[str, int]]]:
    script = languages()[lang].script
    sentences = read_sentences(shared_data, lang, "train")
    stop = derive_stopwords(sentences)
    extra = extra_chars(script, sentences)
    special = special_pattern(script, extra)
    finals = terminals(sentences)
    terminal = terminal_pattern(finals)
    docs = documents(shared_data, lang, "train", shuffles=SHUFFLES)
    stopset = frozenset(w for w, _ in stop)
    signals = [Analysis(d, special, stopset, terminal=terminal) for d in docs]

    def upper(name: str, attr: str) -> float:
        value = float(np.quantile([getattr(s, attr) for s in signals], 0.995))
        return max(value * UPPER_MARGIN, FLOORS[name])

    one = [Analysis(s, special) for s in sentences]
    thresholds = Thresholds(
        language=lang,
        script=script,
        min_words=int(np.quantile([s.n_words for s in one], 0.01) * LOWER_MARGIN),
        min_chars=int(np.quantile([s.n_chars for s in one], 0.01) * LOWER_MARGIN),
        max_char_repetition=upper("max_char_repetition", "char_repetition"),
        max_duplicate_5gram=upper("max_duplicate_5gram", "duplicate_5gram"),
        max_top_2gram=upper("max_top_2gram", "top_2gram"),
        max_special_ratio=upper("max_special_ratio", "special_ratio"),
        max_mojibake_ratio=upper("max_mojibake_ratio", "mojibake_ratio"),
        min_stopword_ratio=float(np.quantile([s.stopword_ratio for s in signals], 0.005))
        * LOWER_MARGIN,
        max_flagged_ratio=FLOORS["max_flagged_ratio"],
        max_boilerplate=upper("max_boilerplate", "boilerplate"),
        extra_chars=extra,
        terminals=finals,
    )
    return thresholds, stop


def default_row(rows: list[Thresholds]) -> Thresholds:
    """The ``*`` row: the most permissive bound of any language; no stopword check."""
    return Thresholds(
        language=DEFAULT,
        script=DEFAULT,
        min_words=min(r.min_words or 0 for r in rows),
        min_chars=min(r.min_chars or 0 for r in rows),
        max_char_repetition=max(r.max_char_repetition or 0 for r in rows),
        max_duplicate_5gram=max(r.max_duplicate_5gram or 0 for r in rows),
        max_top_2gram=max(r.max_top_2gram or 0 for r in rows),
        max_special_ratio=max(r.max_special_ratio or 0 for r in rows),
        max_mojibake_ratio=max(r.max_mojibake_ratio or 0 for r in rows),
        min_stopword_ratio=None,
        max_flagged_ratio=FLOORS["max_flagged_ratio"],
        max_boilerplate=max(r.max_boilerplate or 0 for r in rows),
        extra_chars="".join(sorted({ch for r in rows for ch in r.extra_chars})),
        terminals="".join(sorted({ch for r in rows for ch in r.terminals})),
    )


def flagged_words() -> list[str] | None:
    """English flagged words from datatrove's ``assets/banned_words.txt`` (Apache-2.0; the
    adult-content word list of its URL filter), lines not commented out; ``None`` when
    datatrove is not installed. No list for the 45 other languages: nothing here derives one
    honestly from clean text, so those lists stay empty (see docs/quality_filters.md)."""
    try:
        import datatrove
    except ImportError:
        return None
    source = Path(datatrove.__file__).parent / "assets" / "banned_words.txt"
    lines = source.read_text(encoding="utf-8").splitlines()
    return sorted({w.strip().lower() for w in lines if w.strip() and not w.startswith("#")})


def derive(shared_data: Path, tables: Path = THRESHOLDS.parent) -> list[Thresholds]:
    rows, stop_lines = [], ["language\trank\tword\tcount"]
    for lang in language_codes():
        thresholds, stop = derive_language(lang, shared_data)
        rows.append(thresholds)
        stop_lines += [f"{lang}\t{i}\t{w}\t{c}" for i, (w, c) in enumerate(stop, 1)]
    rows.append(default_row(rows))
    header = list(rows[0].to_row())
    lines = ["\t".join(header)] + ["\t".join(r.to_row().values()) for r in rows]
    atomic_write_text(tables / THRESHOLDS.name, "\n".join(lines) + "\n")
    atomic_write_text(tables / STOPWORDS.name, "\n".join(stop_lines) + "\n")
    flagged = flagged_words()
    if flagged is not None:
        source = "datatrove-0.10.1/assets/banned_words.txt (Apache-2.0)"
        body = "".join(f"en\t{w}\t{source}\n" for w in flagged)
        atomic_write_text(tables / FLAGGED.name, "language\tword\tsource\n" + body)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path, help="folder holding sib200/<lang>/train.tsv")
    parser.add_argument("--tables", type=Path, default=THRESHOLDS.parent)
    args = parser.parse_args(argv)
    rows = derive(args.shared_data, args.tables)
    print(f"wrote {len(rows)} rows to {args.tables / THRESHOLDS.name}")


if __name__ == "__main__":
    main()
