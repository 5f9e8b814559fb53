"""Filters for generated instructions that work in every script (see :mod:`.self_instruct`).

- :func:`rouge_tokens` splits spaced scripts into words (letters + combining marks, so
  Devanagari vowel signs stay in their word) and unspaced scripts (Han, kana, Thai, Lao, Khmer,
  Myanmar, Tibetan) into characters; :func:`rouge_l` is ROUGE-L F1 over them (no
  ``rouge_score``, whose tokenizer drops every non-Latin character);
- :data:`BLACKLIST`: tasks a text-only model cannot do (images, files, audio…), per language;
- :func:`script_share` replaces Alpaca's "first character must be ASCII" rule.

:class:`InstructionFilter` applies them in a fixed order and returns the first reason to drop.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
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


BLACKLIST: dict[str, list[str]] = {
    # Alpaca's list (generate_instruction.py) and its counterparts; extend with `blacklist`
    "en": ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map",
           "maps", "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
           "write a program"],
    "fr": ["image", "images", "graphique", "photo", "fichier", "fichiers", "carte", "dessiner",
           "dessin", "vidéo", "audio", "musique", "diagramme", "organigramme"],
    "es": ["imagen", "imágenes", "gráfico", "gráfica", "foto", "archivo", "archivos", "mapa",
           "dibuja", "dibujar", "vídeo", "video", "audio", "música", "diagrama"],
    "pt": ["imagem", "imagens", "gráfico", "foto", "arquivo", "ficheiro", "mapa", "desenhe",
           "desenhar", "vídeo", "áudio", "música", "diagrama"],
    "zhs": ["图片", "图像", "照片", "图表", "文件", "地图", "画", "视频", "音频", "音乐", "流程图"],
    "zht": ["圖片", "圖像", "照片", "圖表", "檔案", "文件", "地圖", "畫", "影片", "視頻", "音訊",
            "音樂", "流程圖"],
    "ar": ["صورة", "صور", "رسم بياني", "ملف", "ملفات", "خريطة", "ارسم", "فيديو", "صوت", "موسيقى"],
    "hi": ["चित्र", "तस्वीर", "छवि", "ग्राफ", "ग्राफ़", "फ़ाइल", "फाइल", "नक्शा", "वीडियो",
           "ऑडियो", "संगीत", "आरेख"],
    "sw": ["picha", "grafu", "faili", "ramani", "chora", "video", "sauti", "muziki", "mchoro"],
}  # fmt: skip


def blacklist_pattern(words: Iterable[str]) -> regex.Pattern[str] | None:
    """One pattern for ``words``: whole words in spaced scripts, substrings in unspaced ones."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = regex.escape(word.lower())
        if regex.match(rf"[{_UNSPACED}]", word):
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


@dataclass(kw_only=True, slots=True)
class InstructionFilter:
    """Keep-or-reason for ``{instruction, input, output}`` rows; kept ones join the pool the
    next ones must differ from. Reasons, in order: ``malformed`` (no instruction or output),
    ``too_short``/``too_long`` (characters), ``starts_with_punctuation``, ``blacklisted``,
    ``wrong_script``, ``not_novel`` (ROUGE-L ≥ ``rouge_threshold``, Alpaca's 0.7)."""

    min_chars: int = 6
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
        if len(instruction) < self.min_chars:
            return "too_short"
        if len(instruction) > self.max_chars:
            return "too_long"
        if unicodedata.category(instruction[0]).startswith("P"):
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
