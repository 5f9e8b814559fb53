"""Language-aware shingles for near-duplicate detection, hashed to stable 64-bit integers.

Text is normalised (NFKC, casefold, punctuation, symbols and digits removed), then cut into
word n-grams, or into character n-grams for scripts written without spaces between words
(Chinese, Japanese, Thai, Lao, Khmer, Burmese). Tokens are hashed with BLAKE2b and n-grams are
combined in numpy, so the values are the same in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import lru_cache

import numpy as np
import regex

from bloomkit.data_tooling.languages import languages

UNSPACED_LANGUAGES = frozenset({"zh", "zhs", "zht", "ja", "th", "lo", "km", "my"})
UNSPACED_SCRIPTS = frozenset({"Hans", "Hant", "Hani", "Jpan", "Thai", "Laoo", "Khmr", "Mymr"})
"""Languages and ISO 15924 scripts written without spaces between words."""

_UNSPACED_CHARS = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]"
)
_NOISE = regex.compile(r"[\p{P}\p{S}\p{N}\s]+")

_M = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime, to combine the tokens of an n-gram


def normalise(text: str) -> str:
    """NFKC, casefold, punctuation/symbols/digits removed, runs of whitespace made one space."""
    return _NOISE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def unspaced(language: str | None, text: str = "") -> bool:
    """True when ``language`` (BLOOM code, ISO code or ``xxx_Scrp``) is written without spaces.

    With no language, true when most letters of ``text`` are in such a script.
    """
    if language is None:
        letters = sum(c.isalpha() for c in text)
        return letters > 0 and len(_UNSPACED_CHARS.findall(text)) * 2 > letters
    code, _, script = language.partition("_")
    known = languages().get(code)
    return (
        code in UNSPACED_LANGUAGES
        or script in UNSPACED_SCRIPTS
        or (known is not None and known.script in UNSPACED_SCRIPTS)
    )


@lru_cache(maxsize=1 << 20)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: spreads every input bit over the output (wrapping uint64)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def shingle_hashes(text: str, language: str | None, n: int = 5) -> np.ndarray:
    """Unique 64-bit hashes (``uint64``, sorted) of the n-grams of ``text``.

    A text shorter than ``n`` tokens gives one shingle (all its tokens); an empty one, none.
    """
    if n < 1:
        raise ValueError(f"shingle size n must be >= 1, got {n}")
    clean = normalise(text)
    tokens = list(clean.replace(" ", "")) if unspaced(language, clean) else clean.split()
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    hashes = np.fromiter((_token_hash(t) for t in tokens), dtype=np.uint64, count=len(tokens))
    width = min(n, len(hashes))
    count = len(hashes) - width + 1
    grams = hashes[:count].copy()
    for i in range(1, width):
        grams = grams * _M ^ hashes[i : i + count]
    return np.unique(_mix(grams))


def shingles(text: str, language: str | None, n: int = 5) -> set[int]:
    """The n-gram shingles of ``text`` as a set of 64-bit integers (see :func:`shingle_hashes`)."""
    return set(shingle_hashes(text, language, n).tolist())
