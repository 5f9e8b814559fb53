"""Shingles: normalisation, word vs character n-grams by script, stable hashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bloomkit.data_tooling.dedup import normalise, shingles, unspaced
from bloomkit.data_tooling.lid.sib200 import read_sentences


def test_normalise_drops_case_punctuation_digits_and_extra_space() -> None:
    assert normalise("  Hello,   WORLD! 42 times—ﬁne ") == "hello world times fine"
    assert normalise("Straße") == "strasse"


def test_case_punctuation_and_digits_do_not_change_shingles(shared_data: Path) -> None:
    sentence = read_sentences(shared_data, "fr", "dev")[0]
    noisy = f"« {sentence.upper()} » 2024 !!"
    assert shingles(noisy, "fr") == shingles(sentence, "fr")


@pytest.mark.parametrize("lang", ["en", "sw", "hi", "ar"])
def test_word_ngrams_for_spaced_scripts(shared_data: Path, lang: str) -> None:
    sentence = read_sentences(shared_data, lang, "dev")[0]
    words = normalise(sentence).split()
    grams = {tuple(words[i : i + 5]) for i in range(len(words) - 4)}
    assert len(shingles(sentence, lang)) == len(grams)
    assert len(shingles(sentence, lang, n=1)) == len(set(words))


@pytest.mark.parametrize("lang", ["zhs", "zht"])
def test_character_ngrams_for_chinese(shared_data: Path, lang: str) -> None:
    sentence = read_sentences(shared_data, lang, "dev")[0]
    chars = normalise(sentence).replace(" ", "")
    assert len(chars) > 20
    grams = {chars[i : i + 5] for i in range(len(chars) - 4)}
    assert len(shingles(sentence, lang)) == len(grams)
    # no whitespace assumption: spaces between characters change nothing
    assert shingles(" ".join(sentence), lang) == shingles(sentence, lang)
    # read as a spaced language, a whole sentence is one "word": a single shingle
    assert len(shingles(sentence, "en")) == 1


def test_unspaced_languages() -> None:
    for lang in ("zhs", "zht", "zh", "ja", "th", "lo", "km", "my", "zho_Hans", "tha_Thai"):
        assert unspaced(lang), lang
    for lang in ("en", "ar", "hi", "ta", "vi", "eng_Latn"):
        assert not unspaced(lang), lang
    assert unspaced(None, "今天天气很好，我们去公园散步吧")
    assert not unspaced(None, "the weather is fine today")


def test_short_and_empty_texts() -> None:
    assert len(shingles("two words", "en")) == 1
    assert shingles("", "en") == set()
    assert shingles("12, 34 !?", "en") == set()
    with pytest.raises(ValueError, match="n must be >= 1"):
        shingles("text", "en", n=0)


def test_hashes_are_64_bit_and_stable_across_processes() -> None:
    text = "The quick brown fox jumps over the lazy dog again and again"
    code = (
        f"from bloomkit.data_tooling.dedup import shingles;print(sorted(shingles({text!r}, 'en')))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == f"{sorted(shingles(text, 'en'))}\n"
    values = shingles(text, "en")
    assert len(values) == 8  # 12 words, 8 distinct 5-grams
    assert all(0 <= v < 2**64 for v in values)
    assert max(values) >= 2**32  # full 64-bit range is used
