"""The two well-kept offline detectors, pycld2 (Google CLD2) and py3langid, as plain labels.

Each returns a detector label (its own ISO code, ``none`` when it abstains or is unsure) and a
confidence in [0, 1]. Labels are *not* mapped to BLOOM codes here: how each label relates to
the 46 languages (``ak`` covers Akan and Twi, ``rw`` also Kirundi, ...) is learned from the
training split by :mod:`.train` and stored with the model.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import py3langid.langid as _langid
import pycld2

NONE = "none"
MAX_CHARS = 4000
"""Detectors read at most this many leading characters (CLD2 and langid saturate well before)."""
LANGID_MIN_PROB = 0.5
"""Below this normalised probability py3langid's answer counts as ``none``."""


def _clean(text: str) -> str:
    # CLD2 rejects some control characters and unpaired surrogates ("input contains invalid
    # UTF-8"); they carry no language signal.
    text = text[:MAX_CHARS]
    return (
        "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
        .encode("utf-8", "ignore")
        .decode("utf-8")
    )


def cld2(text: str) -> tuple[str, float]:
    """CLD2's top language if it calls the text reliable, with its percent of bytes / 100."""
    try:
        reliable, _, details = pycld2.detect(text[:MAX_CHARS])
    except pycld2.error:
        try:
            reliable, _, details = pycld2.detect(_clean(text))
        except pycld2.error:
            return NONE, 0.0
    code, percent = details[0][1], details[0][2]
    if not reliable or code in ("un", "xxx"):
        return NONE, 0.0
    return code, percent / 100.0


@cache
def _langid_model() -> Any:
    return _langid.LanguageIdentifier.from_model_file(_langid.MODEL_FILE, norm_probs=True)


def langid(text: str) -> tuple[str, float]:
    """py3langid's top language and normalised probability (``none`` below the floor)."""
    code, prob = _langid_model().classify(text[:MAX_CHARS])
    if prob < LANGID_MIN_PROB:
        return NONE, float(prob)
    return str(code), float(prob)


DETECTORS = {"cld2": cld2, "langid": langid}
