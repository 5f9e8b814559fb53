"""A small character n-gram naive Bayes language model of our own (hashed 1–4-grams, numpy).

Naive Bayes over character n-grams is the classic recipe for language identification
(Cavnar & Trenkle, 1994; Lui & Baldwin, 2012 — langid.py). Features are hashed into
``2**bits`` buckets (the hashing trick, Weinberger et al., 2009) so the model is one small
matrix: ``weights[bucket, language]`` = log P(bucket | language), centred per bucket (which
changes no decision) and quantised to int8. Scoring a document is one gather and one sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MODEL_FILE = Path(__file__).parent / "ngram_model.npz"
_MIX = 0x9E3779B97F4A7C15
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_PRIME = np.uint64(1_000_003)


def normalise(text: str) -> str:
    """Lowercase, one space between words, a space at both ends (word-boundary n-grams)."""
    return " " + " ".join(text.lower().split()) + " "


def features(text: str, bits: int, orders: tuple[int, ...] = (1, 2, 3, 4)) -> np.ndarray:
    """Bucket ids of every character n-gram (n in ``orders``) of ``normalise(text)``."""
    cps = np.frombuffer(normalise(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    shift = np.uint64(64 - bits)
    for n in orders:
        if len(cps) < n:
            continue
        h = cps[: len(cps) - n + 1] + np.uint64((n * _MIX) % (1 << 64))
        for j in range(1, n):
            h = h * _PRIME + cps[j : len(cps) - n + 1 + j]
        h = (h ^ (h >> np.uint64(31))) * _MIX2
        parts.append((h >> shift).astype(np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class NgramModel:
    """Hashed n-gram naive Bayes: ``scores(text)`` gives mean log-likelihood per language."""

    languages: tuple[str, ...]
    weights: np.ndarray
    """int8 ``[2**bits, len(languages)]``: centred log P(bucket | language) / ``scale``."""
    scale: float
    bits: int
    max_chars: int = 2000
    """Only the first ``max_chars`` characters are read: enough for a stable decision."""

    @classmethod
    def fit(
        cls,
        texts: dict[str, list[str]],
        bits: int = 16,
        alpha: float = 0.1,
        max_chars: int = 2000,
    ) -> NgramModel:
        """Count n-grams of each language's texts; additive (Lidstone) smoothing ``alpha``."""
        languages = tuple(texts)
        counts = np.zeros((1 << bits, len(languages)), dtype=np.float64)
        for column, lang in enumerate(languages):
            ids = np.concatenate([features(t, bits) for t in texts[lang]])
            counts[:, column] = np.bincount(ids, minlength=1 << bits)
        logp = np.log(counts + alpha) - np.log(counts.sum(0) + alpha * (1 << bits))
        logp -= logp.mean(axis=1, keepdims=True)
        scale = float(np.abs(logp).max() / 127.0)
        weights = np.round(logp / scale).astype(np.int8)
        return cls(languages, weights, scale, bits, max_chars)

    def scores(self, text: str) -> np.ndarray:
        """Mean (per n-gram) centred log-likelihood of ``text`` under each language."""
        ids = features(text[: self.max_chars], self.bits)
        if len(ids) == 0:
            return np.zeros(len(self.languages))
        total = self.weights[ids].sum(axis=0, dtype=np.int64)
        return total * (self.scale / len(ids))

    def save(self, path: Path | str | BinaryIO = MODEL_FILE) -> None:
        np.savez_compressed(
            path,
            languages=np.array(self.languages),
            weights=self.weights,
            meta=np.array([self.scale, self.bits, self.max_chars], dtype=np.float64),
        )

    @classmethod
    def load(cls, path: Path | str = MODEL_FILE) -> NgramModel:
        with np.load(path) as data:
            scale, bits, max_chars = data["meta"].tolist()
            return cls(
                tuple(str(x) for x in data["languages"]),
                data["weights"],
                float(scale),
                int(bits),
                int(max_chars),
            )
