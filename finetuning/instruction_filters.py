"""Filters for generated instructions that work in every script (see :mod:`.self_instruct`).

- :func:`rouge_tokens` splits spaced scripts into words (letters + combining marks, so
  Devanagari vowel signs stay in their word) and unspaced scripts (Han, kana, Thai, Lao, Khmer,
  Myanmar, Tibetan) into characters; :func:`rouge_l` is ROUGE-L F1 over them (no
  ``rouge_score``, whose tokenizer drops every non-Latin character);
- :data:`BLACKLIST`: tasks a text-only model cannot do (images, files, audio…), per language,
  from ``tables/instruction_blacklist.tsv``: whole words in spaced scripts, terms of two or
  more characters in unspaced ones;
- :func:`script_share` and :func:`starts_with_punctuation` replace Alpaca's "first character
  must be ASCII" rule.

:class:`InstructionFilter` applies them in a fixed order and returns the first reason to drop.
"""

from __future__ import annotations

import csv
import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from bloomkit.data_tooling.languages import languages

_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_TOKEN = regex.compile(rf"[{_UNSPACED}]|[^\s\p{{P}}\p{{S}}{_UNSPACED}]+")
_WORD = r"[\p{L}\p{M}\p{N}]"


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased ROUGE tokens: words of spaced scripts, single characters of unspaced ones.

    >>> rouge_tokens("Translate 这句话 into हिन्दी!")
    ['translate', '这', '句', '话', 'into', 'हिन्दी']
    """
    return _TOKEN.findall(text.lower())


def rouge_l(candidate: list[str], reference: list[str]) -> float:
    """ROUGE-L F1 (Lin, 2004) from the longest common subsequence of two token lists."""
    if not candidate or not reference:
        return 0.0
    previous = [0] * (len(reference) + 1)
    for token in candidate:
        current = [0]
        for j, other in enumerate(reference):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


class Novelty:
    """The instructions seen so far, for "is this one new enough?" by ROUGE-L."""

    def __init__(self, texts: Iterable[str] = ()):
        self.items: list[tuple[list[str], str]] = []
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self.items.append((rouge_tokens(text), text))

    def most_similar(self, text: str, threshold: float) -> tuple[float, str]:
        """The highest ROUGE-L against the seen texts and that text. Pairs whose length ratio
        alone keeps F1 under ``threshold`` (F1 ≤ 2·min/(m+n)) are skipped, so a result under
        ``threshold`` only says "below threshold"."""
        tokens = rouge_tokens(text)
        best, best_text = 0.0, ""
        for other, other_text in self.items:
            bound = 2 * min(len(tokens), len(other)) / max(1, len(tokens) + len(other))
            if bound < threshold or bound <= best:
                continue
            score = rouge_l(tokens, other)
            if score > best:
                best, best_text = score, other_text
        return best, best_text


BLACKLIST_TABLE = Path(__file__).parent / "tables" / "instruction_blacklist.tsv"


def read_blacklist(path: Path = BLACKLIST_TABLE) -> dict[str, list[str]]:
    """Terms per language from the blacklist table: ``language``, ``concept`` (the Alpaca word it
    stands for), ``term``, ``confidence`` (``source``: Alpaca's list; ``high``/``medium``/
    ``low``: the translator's, not yet reviewed by native speakers) and ``note``. A row with an
    empty ``term`` records a concept left untranslated, and why."""
    table: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for number, row in enumerate(rows, 2):
            if not row.get("language") or row.get("term") is None:
                raise ValueError(f"{path}:{number}: missing field 'language' or 'term'")
            table.setdefault(row["language"], [])
            if row["term"]:
                table[row["language"]].append(row["term"])
    return table


BLACKLIST: dict[str, list[str]] = read_blacklist()
"""Tasks a text-only model cannot do (Alpaca's list: image, graph, file, map, draw, video,
audio, music…) in each of the 46 languages, from ``tables/instruction_blacklist.tsv``."""


def blacklist_pattern(words: Iterable[str]) -> regex.Pattern[str] | None:
    """One pattern for ``words``: whole words in spaced scripts, substrings in unspaced ones,
    where a term must be two or more characters (画 alone is inside 画家, "painter")."""
    return _compile(tuple(sorted(set(words), key=lambda w: (-len(w), w))))


@functools.lru_cache(maxsize=256)
def _compile(words: tuple[str, ...]) -> regex.Pattern[str] | None:
    parts = []
    for word in words:
        escaped = regex.escape(word.lower())
        if regex.match(rf"[{_UNSPACED}]", word):
            if len(word) < 2:
                raise ValueError(
                    f"blacklist term {word!r}: a single character of an unspaced "
                    "script matches inside ordinary words; use a longer term"
                )
            parts.append(escaped)
        else:
            parts.append(rf"(?<!{_WORD}){escaped}(?!{_WORD})")
    return regex.compile("|".join(parts)) if parts else None


def script_share(text: str, script: str) -> float:
    """Share of the letters of ``text`` written in ``script`` (ISO 15924; Hans/Hant: Han)."""
    letters = regex.findall(r"\p{L}", text)
    if not letters:
        return 0.0
    name = "Han" if script in ("Hans", "Hant") else script
    return len(regex.findall(rf"\p{{sc={name}}}", text)) / len(letters)


# marks that open a sentence besides brackets and quotes (categories Ps, Pi): Spanish ¿ ¡
_OPENING = frozenset("¿¡")


def starts_with_punctuation(text: str) -> bool:
    """Alpaca's rule without its ASCII bias: a leading mark that cannot open a sentence (``.``,
    ``,``, ``)``, ``-``, …). Opening brackets and quotes (《红楼梦》, «…», “…”), ¿ ¡, and a
    straight quote closed later in the text ("To be…" — explain) pass."""
    first = text[0]
    category = unicodedata.category(first)
    if not category.startswith("P") or category in ("Ps", "Pi") or first in _OPENING:
        return False
    return not (first in "\"'" and first in text[1:])


@dataclass(kw_only=True, slots=True)
class InstructionFilter:
    """Keep-or-reason for ``{instruction, input, output}`` rows; kept ones join the pool the
    next ones must differ from. Reasons, in order: ``malformed`` (no instruction or output),
    ``too_short`` (under ``min_tokens`` :func:`rouge_tokens`: words of spaced scripts,
    characters of unspaced ones, so 翻译成英文 is 5 and "Qué?" is 1), ``too_long``
    (characters), ``starts_with_punctuation``, ``blacklisted``, ``wrong_script``,
    ``not_novel`` (ROUGE-L ≥ ``rouge_threshold``, Alpaca's 0.7)."""

    min_tokens: int = 3
    max_chars: int = 1000
    rouge_threshold: float = 0.7
    min_script_share: float = 0.5
    blacklist: dict[str, list[str]] = field(default_factory=dict)
    """Extra words per language, added to :data:`BLACKLIST`."""
    novelty: Novelty = field(default_factory=Novelty)
    _patterns: dict[str, regex.Pattern[str] | None] = field(default_factory=dict)

    def pattern(self, language: str) -> regex.Pattern[str] | None:
        if language not in self._patterns:
            words = BLACKLIST.get(language, []) + self.blacklist.get(language, [])
            self._patterns[language] = blacklist_pattern(words)
        return self._patterns[language]

    def reason(self, row: dict[str, Any], language: str) -> str | None:
        """Why ``row`` (in ``language``) is dropped, or None (then it joins the pool). Sets
        ``row["rouge_l_max"]`` and ``row["most_similar"]`` when novelty was measured."""
        instruction = row["instruction"]
        if not instruction or not row["output"]:
            return "malformed"
        if len(rouge_tokens(instruction)) < self.min_tokens:
            return "too_short"
        if len(instruction) > self.max_chars:
            return "too_long"
        if starts_with_punctuation(instruction):
            return "starts_with_punctuation"
        pattern = self.pattern(language)
        if pattern is not None and pattern.search(instruction.lower()):
            return "blacklisted"
        share = script_share(instruction, languages()[language].script)
        if self.min_script_share and share < self.min_script_share:
            return "wrong_script"
        score, similar = self.novelty.most_similar(instruction, self.rouge_threshold)
        row["rouge_l_max"], row["most_similar"] = round(score, 4), similar
        if score >= self.rouge_threshold:
            return "not_novel"
        self.novelty.add(instruction)
        return None
