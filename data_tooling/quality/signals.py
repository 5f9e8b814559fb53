"""Text signals behind the quality filters, computed in one pass per document.

Words are ``\\p{Han}`` characters one by one (Chinese has no spaces; one character is the
unit, as in ROOTS's Chinese settings) and otherwise runs of letters, marks and digits, so
Indic vowel signs stay inside their words. Heuristic sources:

* character repetition: ROOTS (Laurençon et al., 2022, app. C) — share of the
  ``floor(sqrt(distinct))`` most frequent character 10-grams among all 10-grams;
* word repetition: Gopher (Rae et al., 2021, app. A) — share of word characters inside
  duplicated word 5-grams, and inside the most frequent word 2-gram;
* special characters: ROOTS — characters outside the language's script, Latin, digits and
  the punctuation its clean text uses;
* mojibake: UTF-8 read as cp1252/Latin-1 leaves tell-tale pairs (``é`` -> ``Ã©``; the
  heuristic behind ftfy, Speer 2019) — pairs per non-space character;
* stopword ratio: ROOTS / Gopher — share of words in the language's stopword list;
* flagged words: ROOTS — share of words in the language's flagged list;
* boilerplate lines: C4 (Raffel et al., 2020) keeps only lines ending in terminal punctuation,
  Gopher caps duplicated lines — share of characters in short unpunctuated or repeated lines.
"""

from __future__ import annotations

import itertools
from collections import Counter
from functools import cached_property

import regex

WORD = regex.compile(r"\p{Han}|[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*")
MOJIBAKE = regex.compile(
    r"[\u00c2-\u00f4][\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030"
    r"\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161"
    r"\u203a\u0153\u017e\u0178]|\ufffd"
)
"""A UTF-8 lead byte read as Latin-1/cp1252 followed by a continuation byte read the same
way (``é`` -> ``Ã©``), or U+FFFD, the replacement character."""
CLOSING = r"\p{Pe}\p{Pf}\p{Pi}\"'*"
"""Closing brackets and quotes that may follow a sentence's terminal punctuation."""
SHORT_LINE = 80
"""Lines shorter than this (characters) without terminal punctuation are boilerplate: menus,
buttons, headings. C4 drops every such line; a long unpunctuated line is more often cut-off
prose than boilerplate, so it is not counted."""
CHAR_NGRAM = 10
WORD_NGRAM = 5


def words(text: str) -> list[str]:
    """Lowercased words; each Han character is one word."""
    return WORD.findall(text.lower())


def char_repetition(text: str, n: int = CHAR_NGRAM) -> float:
    """ROOTS character repetition ratio of ``text`` (0 when shorter than ``n``)."""
    text = " ".join(text.split())
    if len(text) <= n:
        return 0.0
    counts = Counter(text[i : i + n] for i in range(len(text) - n + 1))
    k = int(len(counts) ** 0.5)
    top = sorted(counts.values(), reverse=True)[:k]
    return sum(top) / (len(text) - n + 1)


def duplicate_ngram_fraction(tokens: list[str], n: int = WORD_NGRAM) -> float:
    """Gopher: characters in word n-grams already seen earlier, over all word characters."""
    total = sum(map(len, tokens))
    if total == 0 or len(tokens) < n:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    duplicate, i = 0, 0
    while i <= len(tokens) - n:
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            duplicate += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return duplicate / total


def top_bigram_fraction(tokens: list[str]) -> float:
    """Gopher: characters covered by the most frequent word 2-gram, over all word characters."""
    total = sum(map(len, tokens))
    if total == 0 or len(tokens) < 2:
        return 0.0
    (gram, count), *_ = Counter(itertools.pairwise(tokens)).most_common(1)
    return count * (len(gram[0]) + len(gram[1])) / total if count > 1 else 0.0


def terminal_pattern(extra: str = "") -> regex.Pattern[str]:
    """Line end with terminal punctuation: Unicode Sentence_Terminal, ``:;…`` or ``extra``
    (a language's own, e.g. Assamese ``৷``), then optional closing brackets and quotes."""
    chars = "".join(regex.escape(ch) for ch in extra)
    return regex.compile(rf"[\p{{Sentence_Terminal}}:;…{chars}][{CLOSING}]*$")


TERMINAL = terminal_pattern()


def boilerplate_fraction(text: str, terminal: regex.Pattern[str] = TERMINAL) -> float:
    """Characters in lines that repeat an earlier line, or are short and lack terminal
    punctuation, over all line characters."""
    seen: set[str] = set()
    total = boiler = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        total += len(line)
        if line in seen or (len(line) < SHORT_LINE and not terminal.search(line)):
            boiler += len(line)
        seen.add(line)
    return boiler / total if total else 0.0


class Analysis:
    """The signals of one document for one language, each computed on first use."""

    def __init__(
        self,
        text: str,
        special: regex.Pattern[str],
        stopwords: frozenset[str] = frozenset(),
        flagged: frozenset[str] = frozenset(),
        terminal: regex.Pattern[str] = TERMINAL,
    ) -> None:
        self.text = text
        self._special, self._stopwords, self._flagged = special, stopwords, flagged
        self._terminal = terminal

    @cached_property
    def tokens(self) -> list[str]:
        return words(self.text)

    @cached_property
    def n_words(self) -> int:
        return len(self.tokens)

    @cached_property
    def n_chars(self) -> int:
        """Non-space characters."""
        return sum(map(len, self.text.split()))

    @cached_property
    def char_repetition(self) -> float:
        return char_repetition(self.text)

    @cached_property
    def duplicate_5gram(self) -> float:
        return duplicate_ngram_fraction(self.tokens)

    @cached_property
    def top_2gram(self) -> float:
        return top_bigram_fraction(self.tokens)

    @cached_property
    def special_ratio(self) -> float:
        return len(self._special.findall(self.text)) / self.n_chars if self.n_chars else 0.0

    @cached_property
    def mojibake_ratio(self) -> float:
        return len(MOJIBAKE.findall(self.text)) / self.n_chars if self.n_chars else 0.0

    @cached_property
    def stopword_ratio(self) -> float:
        stop = self._stopwords
        return sum(t in stop for t in self.tokens) / self.n_words if self.n_words else 0.0

    @cached_property
    def flagged_ratio(self) -> float:
        if not self._flagged or not self.n_words:
            return 0.0
        return sum(t in self._flagged for t in self.tokens) / self.n_words

    @cached_property
    def boilerplate(self) -> float:
        return boilerplate_fraction(self.text, self._terminal)
