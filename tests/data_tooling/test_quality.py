"""Quality filters: no false removals on clean text, noise removed, exact reasons per check."""

from __future__ import annotations

import inspect
import json
import random
from collections import Counter

import pytest
import regex

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.sib200 import documents, read_sentences
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.quality import (
    BoilerplateFilter,
    CharRepetitionFilter,
    FlaggedWordsFilter,
    LengthFilter,
    MojibakeFilter,
    QualityFilter,
    SpecialCharFilter,
    StopwordFilter,
    WordRepetitionFilter,
    profile,
    words,
)
from bloomkit.data_tooling.quality.derive import derive_language

KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890")


# ----------------------------------------------------------------- noise made from real text


def repeated_lines(sents: list[str], rng: random.Random) -> str:
    return "\n".join(rng.sample(sents, 2) * rng.randint(3, 6))


def gibberish(sents: list[str], rng: random.Random) -> str:
    """Keyboard mashing, dressed up as sentences (capital, full stop) so layout gives no hint."""
    lines = []
    for _ in range(rng.randint(3, 6)):
        mash = []
        for _ in range(rng.randint(6, 14)):
            row = rng.choice(KEYBOARD)
            start = rng.randrange(len(row) - 2)
            mash.append(row[start : start + rng.randint(2, len(row) - start)])
        lines.append(" ".join(mash).capitalize() + ".")
    return "\n".join(lines)


def mojibake(sents: list[str], rng: random.Random) -> str | None:
    """UTF-8 read as cp1252 or Latin-1; None when the text has nothing to garble."""
    marked = [s for s in sents if not s.isascii()]
    picked = rng.sample(marked, min(5, len(marked)))
    picked += rng.sample([s for s in sents if s.isascii()], 5 - len(picked))
    text = "\n".join(picked)
    bad = text.encode("utf-8").decode(rng.choice(["cp1252", "latin-1"]), errors="replace")
    return bad if bad != text else None


def menu(sents: list[str], rng: random.Random) -> str:
    vocab = [w for s in sents for w in regex.split(r"[\s\p{P}]+", s) if 2 < len(w) < 12]
    sep = rng.choice([" | ", " · ", " » ", " / "])
    lines = [sep.join(rng.sample(vocab, rng.randint(3, 6))) for _ in range(rng.randint(6, 12))]
    return "\n".join([*lines, rng.choice(sents)])


def spam(sents: list[str], other: list[str], rng: random.Random) -> str:
    """Keyword stuffing around fragments of another language, links and hashtags."""
    vocab = [w.strip(".,;:!?\"'()") for s in sents for w in s.split() if len(w) > 3]
    keys = rng.sample(vocab, 2)
    lines = []
    for _ in range(rng.randint(4, 8)):
        foreign = rng.choice(other).split()
        cut = rng.randrange(max(1, len(foreign) - 6))
        lines.append(
            f"{keys[0]} {keys[1]} {' '.join(foreign[cut : cut + 6])} {keys[0]} {keys[1]} "
            f"https://www.{keys[0].lower()}.example/{rng.randint(100, 999)} #{keys[1]} !!!"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def noise(shared_data) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(4)
    codes = language_codes()
    out: dict[str, list[tuple[str, str]]] = {}
    for i, code in enumerate(codes):
        sents = read_sentences(shared_data, code, "dev")
        other = read_sentences(shared_data, codes[(i + 7) % len(codes)], "dev")
        made = {
            "repeated_lines": [repeated_lines(sents, rng) for _ in range(2)],
            "gibberish": [gibberish(sents, rng) for _ in range(2)],
            "mojibake": [mojibake(sents, rng) for _ in range(2)],
            "menu": [menu(sents, rng) for _ in range(2)],
            "spam": [spam(sents, other, rng) for _ in range(2)],
        }
        for kind, texts in made.items():
            out.setdefault(kind, []).extend((code, t) for t in texts if t is not None)
    return out


def _removed(f: QualityFilter, code: str, text: str) -> str | None:
    verdict = f.filter(Document("t", text, language=code))
    return None if verdict is True else verdict[1]


# ----------------------------------------------------------------- requirements


def test_clean_documents_false_removal_at_most_5_percent_in_every_language(shared_data) -> None:
    f = QualityFilter()
    for code in language_codes():
        docs = documents(shared_data, code, "dev")
        reasons = [r for d in docs if (r := _removed(f, code, d))]
        assert len(reasons) <= 0.05 * len(docs), (code, Counter(reasons))


def test_injected_noise_removal_at_least_90_percent(noise) -> None:
    f = QualityFilter()
    total = removed = 0
    for kind, docs in noise.items():
        hits = sum(_removed(f, code, text) is not None for code, text in docs)
        assert hits >= 0.9 * len(docs), (kind, hits, len(docs))
        total, removed = total + len(docs), removed + hits
    assert removed >= 0.9 * total


@pytest.mark.parametrize(
    ("single", "kind", "reason"),
    [
        (StopwordFilter, "gibberish", "quality_stopwords"),
        (MojibakeFilter, "mojibake", "quality_mojibake"),
        (BoilerplateFilter, "menu", "quality_boilerplate"),
        (BoilerplateFilter, "repeated_lines", "quality_boilerplate"),
        (WordRepetitionFilter, "repeated_lines", "quality_word_repetition"),
        (WordRepetitionFilter, "spam", "quality_word_repetition"),
    ],
)
def test_each_check_alone_catches_its_noise(noise, single, kind: str, reason: str) -> None:
    f = single()
    reasons = [_removed(f, code, text) for code, text in noise[kind]]
    assert reasons.count(reason) >= 0.9 * len(reasons)


# ----------------------------------------------------------------- exact reasons, several scripts


def test_exact_reasons_on_small_real_examples(shared_data) -> None:
    def doc(code: str) -> str:
        return documents(shared_data, code, "dev")[1]

    hi = doc("hi")
    assert _removed(QualityFilter(), "hi", hi) is None
    garbled = hi.encode("utf-8").decode("latin-1")
    assert _removed(MojibakeFilter(), "hi", garbled) == "quality_mojibake"
    assert _removed(StopwordFilter(), "hi", garbled) == "quality_stopwords"

    zh_line = read_sentences(shared_data, "zhs", "dev")[0]
    assert _removed(WordRepetitionFilter(), "zhs", "\n".join([zh_line] * 4)) == (
        "quality_word_repetition"
    )
    assert _removed(LengthFilter(), "zhs", zh_line[:4]) == "quality_length"

    ar_words = [w for w in words(doc("ar")) if len(w) > 2][:24]
    ar_menu = "\n".join(" | ".join(ar_words[i : i + 4]) for i in range(0, 24, 4))
    assert _removed(BoilerplateFilter(), "ar", ar_menu) == "quality_boilerplate"
    assert _removed(SpecialCharFilter(), "ar", ar_menu) == "quality_special_chars"

    ta = doc("ta")
    assert _removed(SpecialCharFilter(), "ta", ta + " ★☆✓✗" * 10) == "quality_special_chars"
    en = doc("en")
    assert _removed(CharRepetitionFilter(), "en", en + "\n" + "ha" * 400 + ".") == (
        "quality_char_repetition"
    )
    flagged = sorted(profile("en").flagged)[:12]
    assert _removed(FlaggedWordsFilter(), "en", en + " " + " ".join(flagged)) == (
        "quality_flagged_words"
    )
    assert _removed(FlaggedWordsFilter(), "sw", doc("sw") + " " + " ".join(flagged)) is None


def test_unspaced_chinese_is_segmented_into_characters() -> None:
    assert words("土耳其三面环海：西面 is Turkey") == [
        "土",
        "耳",
        "其",
        "三",
        "面",
        "环",
        "海",
        "西",
        "面",
        "is",
        "turkey",
    ]
    assert words("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs stay inside words


def test_code_documents_skip_natural_language_checks() -> None:
    source = inspect.getsource(json)  # Python standard library (PSF licence)
    f = QualityFilter()
    assert f.filter(Document("py", source, language="python")) is True
    assert f.filter(Document("py", source, language="en")) is not True
    assert f.stats.counts["skipped_code"] == 1


def test_overrides_turn_checks_off_and_unknown_names_fail() -> None:
    assert QualityFilter({"max_special_ratio": None})._profile("en")[1].max_special_ratio is None
    with pytest.raises(ValueError, match="max_special"):
        QualityFilter({"max_special": 0.1})


def test_shipped_thresholds_are_reproducible_from_train(shared_data) -> None:
    for code in ("en", "zhs", "fon"):
        derived, stopwords = derive_language(code, shared_data)
        assert derived.to_row() == profile(code).thresholds.to_row()
        assert {w for w, _ in stopwords} == profile(code).stopwords
