"""Per-language quality profiles: thresholds, stopwords and flagged words, read from tables.

``tables/quality_thresholds.tsv`` (one row per language, plus ``*`` for documents whose
language is not one of the 46), ``tables/stopwords.tsv`` and ``tables/flagged_words.tsv`` are
written by :mod:`.derive` (flagged words excepted: see ``docs/quality_filters.md``).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import regex

from bloomkit.data_tooling.quality.signals import terminal_pattern

TABLES = Path(__file__).parents[1] / "tables"
THRESHOLDS = TABLES / "quality_thresholds.tsv"
STOPWORDS = TABLES / "stopwords.tsv"
FLAGGED = TABLES / "flagged_words.tsv"
DEFAULT = "*"
SCRIPTS = {
    "Latn": "Latin", "Arab": "Arabic", "Hans": "Han", "Hant": "Han", "Deva": "Devanagari",
    "Beng": "Bengali", "Taml": "Tamil", "Telu": "Telugu", "Mlym": "Malayalam",
    "Knda": "Kannada", "Gujr": "Gujarati", "Guru": "Gurmukhi", "Orya": "Oriya",
}  # fmt: skip
"""``languages.tsv`` script codes (ISO 15924) -> Unicode script names for ``\\p{...}``."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One row of ``quality_thresholds.tsv``; a ``None`` bound turns its check off."""

    language: str
    script: str
    min_words: int | None
    min_chars: int | None
    max_char_repetition: float | None
    max_duplicate_5gram: float | None
    max_top_2gram: float | None
    max_special_ratio: float | None
    max_mojibake_ratio: float | None
    min_stopword_ratio: float | None
    max_flagged_ratio: float | None
    max_boilerplate: float | None
    extra_chars: str
    """Characters outside script/Latin/digits that the language's clean text uses."""
    terminals: str
    """Sentence-final punctuation of the language beyond Unicode's Sentence_Terminal."""

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Thresholds:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = row[f.name]
            if f.name in ("language", "script", "extra_chars", "terminals"):
                values[f.name] = raw
            elif raw in ("", "-"):
                values[f.name] = None
            else:
                values[f.name] = int(raw) if f.name in ("min_words", "min_chars") else float(raw)
        return cls(**values)  # type: ignore[arg-type]

    def to_row(self) -> dict[str, str]:
        """Table cells; bounds keep 4 decimals, rounded outward (never stricter)."""

        def cell(name: str, value: object) -> str:
            if value is None:
                return "-"
            if isinstance(value, float):
                rounded = math.ceil if name.startswith("max_") else math.floor
                return f"{rounded(round(value * 1e4, 6)) / 1e4:.4f}"
            return str(value)

        return {f.name: cell(f.name, getattr(self, f.name)) for f in fields(self)}


def special_pattern(script: str, extra_chars: str) -> regex.Pattern[str]:
    """Characters that are *special* for a language: not space, digit, mark, letter of Latin
    or of the language's own script (any letter for script ``*``), nor one of its
    ``extra_chars``."""
    scripts = {"Latin", *(SCRIPTS[s] for s in script.split("+") if s in SCRIPTS)}
    allowed = "".join(rf"\p{{{s}}}" for s in sorted(scripts)) if script != "*" else r"\p{L}"
    extra = "".join(regex.escape(ch) for ch in extra_chars)
    return regex.compile(rf"[^\s\p{{N}}\p{{M}}{allowed}{extra}]")


@dataclass(frozen=True)
class Profile:
    thresholds: Thresholds
    stopwords: frozenset[str]
    flagged: frozenset[str]
    special: regex.Pattern[str]
    terminal: regex.Pattern[str]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def _word_lists(path: Path) -> dict[str, frozenset[str]]:
    lists: dict[str, set[str]] = defaultdict(set)
    for row in read_tsv(path):
        lists[row["language"]].add(row["word"])
    return {lang: frozenset(words) for lang, words in lists.items()}


@cache
def profiles() -> dict[str, Profile]:
    """``{code: Profile}`` for the 46 languages and ``*`` (any other language)."""
    stopwords, flagged = _word_lists(STOPWORDS), _word_lists(FLAGGED)
    out = {}
    for row in read_tsv(THRESHOLDS):
        t = Thresholds.from_row(row)
        out[t.language] = Profile(
            t,
            stopwords.get(t.language, frozenset()),
            flagged.get(t.language, frozenset()),
            special_pattern(t.script, t.extra_chars),
            terminal_pattern(t.terminals),
        )
    return out


def profile(language: str | None) -> Profile:
    """The profile of ``language``, or the permissive ``*`` profile for anything else."""
    table = profiles()
    return table.get(language or DEFAULT, table[DEFAULT])
