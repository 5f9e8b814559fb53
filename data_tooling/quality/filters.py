"""Quality filters with per-language thresholds; each check removes with its own reason.

:class:`QualityFilter` runs every check on one shared :class:`~.signals.Analysis` (words are
split once) and removes a document for the first check it fails, in ``CHECKS`` order. The
single-check subclasses (:class:`LengthFilter`, ...) exist for pipelines that want one
heuristic alone. Thresholds come from ``tables/quality_thresholds.tsv`` for the document's
language (``*`` row for any other); ``overrides`` replaces a bound for every language and
``None`` turns it off. Documents in a programming language (``python``, ...) skip the
natural-language checks and are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import ClassVar

from bloomkit.data_tooling.lid.codes import code_language, is_code
from bloomkit.data_tooling.pipeline.base import Document, Filter
from bloomkit.data_tooling.quality.profiles import Profile, Thresholds, profile
from bloomkit.data_tooling.quality.signals import Analysis


def _above(value: float, bound: float | None) -> bool:
    return bound is not None and value > bound


def _below(value: float, bound: float | None) -> bool:
    return bound is not None and value < bound


Check = Callable[[Analysis, Thresholds], bool]
"""``check(analysis, thresholds)`` is True when the document fails."""

CHECKS: dict[str, Check] = {
    "quality_length": lambda a, t: _below(a.n_words, t.min_words) or _below(a.n_chars, t.min_chars),
    "quality_special_chars": lambda a, t: _above(a.special_ratio, t.max_special_ratio),
    "quality_mojibake": lambda a, t: _above(a.mojibake_ratio, t.max_mojibake_ratio),
    "quality_boilerplate": lambda a, t: _above(a.boilerplate, t.max_boilerplate),
    "quality_word_repetition": lambda a, t: (
        _above(a.duplicate_5gram, t.max_duplicate_5gram) or _above(a.top_2gram, t.max_top_2gram)
    ),
    "quality_char_repetition": lambda a, t: _above(a.char_repetition, t.max_char_repetition),
    "quality_stopwords": lambda a, t: (
        bool(a._stopwords) and _below(a.stopword_ratio, t.min_stopword_ratio)
    ),
    "quality_flagged_words": lambda a, t: _above(a.flagged_ratio, t.max_flagged_ratio),
}
"""Reason -> check, cheapest and most telling first."""


class QualityFilter(Filter):
    """All quality checks of ``checks`` (default: every one), per-language thresholds."""

    name: ClassVar[str] = "quality"
    checks: ClassVar[tuple[str, ...]] = tuple(CHECKS)

    def __init__(self, overrides: Mapping[str, float | int | None] | None = None) -> None:
        super().__init__()
        fields = {f.name for f in dataclasses.fields(Thresholds)}
        unknown = sorted(set(overrides or {}) - fields)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown threshold(s) {unknown}; known: {sorted(fields)}"
            )
        self.overrides = dict(overrides or {})
        self._profiles: dict[str | None, tuple[Profile, Thresholds]] = {}

    def _profile(self, language: str | None) -> tuple[Profile, Thresholds]:
        if language not in self._profiles:
            p = profile(language)
            self._profiles[language] = (p, dataclasses.replace(p.thresholds, **self.overrides))
        return self._profiles[language]

    def analyse(self, doc: Document) -> Analysis:
        """The signals of ``doc`` under its language's profile (for reports and tests)."""
        p, _ = self._profile(doc.language)
        return Analysis(doc.text, p.special, p.stopwords, p.flagged, p.terminal)

    def failures(self, doc: Document) -> list[str]:
        """Every check of ``checks`` that ``doc`` fails (all of them, for reports)."""
        _, thresholds = self._profile(doc.language)
        analysis = self.analyse(doc)
        return [reason for reason in self.checks if CHECKS[reason](analysis, thresholds)]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if is_code(doc.language) or code_language(doc.metadata.get("language_hint")):
            self.stats.add("skipped_code", doc.language)
            return True
        _, thresholds = self._profile(doc.language)
        analysis = self.analyse(doc)
        for reason in self.checks:
            if CHECKS[reason](analysis, thresholds):
                return False, reason
        return True


class LengthFilter(QualityFilter):
    """Too few words or characters (min: half the 1st-percentile length of one sentence)."""

    name = "quality_length"
    checks = ("quality_length",)


class SpecialCharFilter(QualityFilter):
    """Too many special characters or mojibake pairs (ROOTS special-character ratio)."""

    name = "quality_special_chars"
    checks = ("quality_special_chars",)


class MojibakeFilter(QualityFilter):
    """Too many UTF-8-read-as-cp1252 pairs (``Ã©``) or replacement characters."""

    name = "quality_mojibake"
    checks = ("quality_mojibake",)


class BoilerplateFilter(QualityFilter):
    """Too much text in repeated lines or lines without terminal punctuation (C4, Gopher)."""

    name = "quality_boilerplate"
    checks = ("quality_boilerplate",)


class WordRepetitionFilter(QualityFilter):
    """Duplicated word 5-grams or one dominant word 2-gram (Gopher repetition)."""

    name = "quality_word_repetition"
    checks = ("quality_word_repetition",)


class CharRepetitionFilter(QualityFilter):
    """Repeated character 10-grams (ROOTS character repetition ratio)."""

    name = "quality_char_repetition"
    checks = ("quality_char_repetition",)


class StopwordFilter(QualityFilter):
    """Too few of the language's stopwords (ROOTS / Gopher stop-word rule, per language)."""

    name = "quality_stopwords"
    checks = ("quality_stopwords",)


class FlaggedWordsFilter(QualityFilter):
    """Too many flagged words (ROOTS); a no-op for languages whose list is empty."""

    name = "quality_flagged_words"
    checks = ("quality_flagged_words",)
