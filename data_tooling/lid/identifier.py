"""The ensemble language identifier: our n-gram model x pycld2 x py3langid, or ``unknown``.

Decision, for one text (all parts learned on SIB-200 ``train`` by :mod:`.train`):

1. our n-gram model gives logits ``tau * mean_loglik * sqrt(n_ngrams)`` over the 46 codes;
2. each detector's label ``x`` adds ``log P(x | language)``, estimated from how often the
   detector said ``x`` on train documents of each language (add-``beta`` smoothing). This is
   naive Bayes stacking: CLD2's ``ak`` then means "Akan or Twi", its ``ny`` "Chichewa or
   Tumbuka", and our model settles the pair; a confident ``fr`` from CLD2 on text our model
   calls Wolof costs Wolof about 6 nats;
3. the posterior's top code is the answer if its probability is at least ``min_score``, no
   detector-independent rule rejects it, and the support table marks it supported.

Otherwise the answer is ``unknown`` with its score (never a silent mislabel). Text that both
detectors place in a language none of the 46 ever produced on train (German, Russian, ...)
is ``unknown`` too, as is text with too few letters to judge.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bloomkit.data_tooling.lid.detectors import DETECTORS, NONE
from bloomkit.data_tooling.lid.ngram import NgramModel, features

UNKNOWN = "unknown"
ENSEMBLE_FILE = Path(__file__).parent / "ensemble.json"
SUPPORT_TABLE = Path(__file__).parents[1] / "tables" / "lid_support.tsv"
MIN_SCORE = 0.5
"""Posterior below which the answer is ``unknown``."""
MIN_LETTERS = 8
"""Texts with fewer letters than this are ``unknown`` (nothing to judge)."""
FOREIGN_MIN_COUNT = 5
"""A detector label seen fewer times than this on all 46 languages' train text is foreign."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """``language`` is a BLOOM code or ``unknown``; ``best`` is the top code even then."""

    language: str
    score: float
    best: str
    reason: str = ""
    """Why the answer is ``unknown``: ``low_score``, ``unsupported``, ``foreign``, ``too_short``."""


def read_support(path: Path = SUPPORT_TABLE) -> dict[str, bool]:
    """``{code: supported}`` from the table :mod:`.evaluate` writes."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row["language"]: row["supported"] == "yes" for row in rows}


class LanguageIdentifier:
    """Identify one of the 46 BLOOM languages, or answer ``unknown``.

    ``support`` maps codes to whether they may be answered (default: the shipped
    ``tables/lid_support.tsv``; ``None`` allows all, as the evaluation does).
    """

    def __init__(
        self,
        model: NgramModel | None = None,
        ensemble: dict | None = None,
        support: dict[str, bool] | str | None = "table",
        min_score: float = MIN_SCORE,
        beta: float = 0.5,
        detectors: tuple[str, ...] = tuple(DETECTORS),
    ) -> None:
        self.model = model or NgramModel.load()
        ensemble = ensemble or json.loads(ENSEMBLE_FILE.read_text(encoding="utf-8"))
        self.tau = float(ensemble["temperature"])
        self.min_score = min_score
        self.support = read_support() if support == "table" else support
        self.detectors = detectors
        docs = np.array([ensemble["documents_per_language"][c] for c in self.model.languages])
        self._log_likelihood: dict[str, dict[str, np.ndarray]] = {}
        self._foreign_default: dict[str, np.ndarray] = {}
        for name in detectors:
            table = ensemble["detectors"][name]
            n_labels = len(table) + 1
            rows = {}
            for label, counts in table.items():
                row = np.array([counts.get(c, 0) for c in self.model.languages], dtype=float)
                if row.sum() >= FOREIGN_MIN_COUNT or label == NONE:
                    rows[label] = np.log((row + beta) / (docs + beta * n_labels))
            self._log_likelihood[name] = rows
            self._foreign_default[name] = np.log(beta / (docs + beta * n_labels))

    def posterior(self, text: str) -> tuple[np.ndarray, list[str]]:
        """Probabilities over ``model.languages`` and the detector labels that shaped them."""
        n = len(features(text[: self.model.max_chars], self.model.bits))
        logits = self.model.scores(text) * (self.tau * math.sqrt(max(n, 1)))
        labels = []
        for name in self.detectors:
            label, _ = DETECTORS[name](text)
            rows = self._log_likelihood[name]
            labels.append(label if label in rows else f"foreign:{label}")
            logits = logits + rows.get(label, self._foreign_default[name])
        z = np.exp(logits - logits.max())
        return z / z.sum(), labels

    def predict(self, text: str) -> Prediction:
        if sum(ch.isalpha() for ch in text[:200]) < MIN_LETTERS:
            return Prediction(UNKNOWN, 0.0, UNKNOWN, "too_short")
        probs, labels = self.posterior(text)
        top = int(np.argmax(probs))
        best, score = self.model.languages[top], float(probs[top])
        decided = [label for label in labels if label != NONE]
        if decided and all(label.startswith("foreign:") for label in decided):
            return Prediction(UNKNOWN, score, best, "foreign")
        if score < self.min_score:
            return Prediction(UNKNOWN, score, best, "low_score")
        if self.support is not None and not self.support.get(best, False):
            return Prediction(UNKNOWN, score, best, "unsupported")
        return Prediction(best, score, best)


@cache
def default_identifier() -> LanguageIdentifier:
    """The shipped identifier, loaded once per process."""
    return LanguageIdentifier()


def identify(text: str) -> Prediction:
    """Identify ``text`` with the shipped model and support table."""
    return default_identifier().predict(text)
