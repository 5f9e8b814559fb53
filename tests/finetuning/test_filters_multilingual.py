"""Instruction filters on real text in the 46 languages: the blacklist table, opening
punctuation, length in tokens, whole-word and multi-character blacklist terms."""

from __future__ import annotations

import csv

import pytest

from bloomkit.data_tooling.languages import languages
from bloomkit.finetuning.instruction_filters import (
    BLACKLIST,
    BLACKLIST_TABLE,
    InstructionFilter,
    blacklist_pattern,
    read_blacklist,
    starts_with_punctuation,
)

CONCEPTS = {"image", "picture", "graph", "plot", "file", "map", "draw", "go to", "video",
            "audio", "music", "flowchart", "diagram", "program"}  # fmt: skip


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def sib200(shared_data):
    """index_id → sentence, per language (SIB-200 train: the same id is the same sentence)."""
    return {code: {r["index_id"]: r["text"] for r in read_tsv(shared_data / "sib200" / code /
                                                              "train.tsv")}
            for code in languages()}  # fmt: skip


def drop(instruction: str, language: str, **kw) -> str | None:
    return InstructionFilter(**kw).reason({"instruction": instruction, "output": "x"}, language)


def test_table_has_terms_for_every_language_and_says_what_it_left_out():
    rows = read_tsv(BLACKLIST_TABLE)
    assert {r["language"] for r in rows} == set(languages()) == set(BLACKLIST)
    for code in languages():
        assert BLACKLIST[code], f"{code}: no blacklist term"
        assert blacklist_pattern(BLACKLIST[code]) is not None  # no single-character Han term
    for row in rows:
        assert row["concept"] in CONCEPTS, row
        if row["term"]:
            assert row["confidence"] in {"source", "high", "medium", "low"}, row
        else:  # an untranslated concept says why instead of guessing
            assert row["note"], row
    untranslated = {r["concept"] for r in rows if r["language"] == "fon" and not r["term"]}
    assert "music" in untranslated and "go to" in untranslated


def test_bad_table_row_names_file_and_line(tmp_path):
    path = tmp_path / "blacklist.tsv"
    path.write_text("language\tconcept\tterm\tconfidence\tnote\nsw\timage\tpicha\thigh\t\n\tx\n")
    with pytest.raises(ValueError, match=r"blacklist.tsv:3: missing field 'language'"):
        read_blacklist(path)


@pytest.mark.parametrize("code", list(languages()))
def test_sib200_sentences_are_kept_in_every_language(code, sib200):
    """Real sentences pass as instructions: at most 5% blacklisted (English: 18 of 701, 2.6%),
    at most 1% for every other reason. Novelty is off (threshold above 1): the sentences are
    distinct and ROUGE-L over 701² pairs would take minutes."""
    reasons = [drop(text, code, rouge_threshold=1.01) for text in sib200[code].values()]
    blacklisted = reasons.count("blacklisted") / len(reasons)
    other = sum(r not in (None, "blacklisted") for r in reasons) / len(reasons)
    assert blacklisted <= 0.05 and other <= 0.01, (code, blacklisted, other)


def test_terms_marked_reliable_hit_the_translations_of_blacklisted_english(sib200):
    """SIB-200 rows align: where the English sentence is blacklisted (a picture, a video…), the
    terms of every high- or medium-confidence language catch some of its translations."""
    english = blacklist_pattern(BLACKLIST["en"])
    hit = [i for i, text in sib200["en"].items() if english.search(text.lower())]
    assert len(hit) == 18
    reliable = {r["language"] for r in read_tsv(BLACKLIST_TABLE)
                if r["confidence"] in ("high", "medium")}  # fmt: skip
    recall = {}
    for code in sorted(reliable):
        pattern = blacklist_pattern(BLACKLIST[code])
        recall[code] = sum(bool(pattern.search(sib200[code][i].lower())) for i in hit) / len(hit)
    assert min(recall.values()) >= 0.2, recall


@pytest.mark.parametrize(
    ("instruction", "language", "reason"),
    [
        ("¿Cuál es la diferencia entre un virus y una bacteria?", "es", None),
        ("¡Escribe un poema sobre el mar!", "es", None),
        ("《红楼梦》的作者是谁？请简要介绍。", "zhs", None),
        ("「紅樓夢」的作者是誰？", "zht", None),
        ("«Le Petit Prince» : résume l'histoire en trois phrases.", "fr", None),
        ('"Ubuntu" ni nini? Eleza kwa ufupi.', "sw", None),
        ("- Write a haiku about rain.", "en", "starts_with_punctuation"),
        (". Explain how tides work.", "en", "starts_with_punctuation"),
        ("介绍一位著名的画家。", "zhs", None),  # 画 alone is not a term: 画家 is a painter
        ("总结这份文件的要点。", "zhs", None),  # 文件 is a document here
        ("画一幅秋天的风景。", "zhs", "blacklisted"),
        ("请上传附件并说明内容。", "zhs", "blacklisted"),
        ("翻译成英文", "zhs", None),  # 5 characters: a whole instruction in Chinese
        ("你好", "zhs", "too_short"),
        ("Qué?", "es", "too_short"),
        ("Dessine un chat qui dort.", "fr", "blacklisted"),
        ("Décris une carte de crédit.", "fr", None),  # carte alone is also a card
        ("Chora ramani ya Kenya.", "sw", "blacklisted"),
        ("Eleza sauti ya mwimbaji huyu kwa maneno.", "sw", None),  # sauti: also a voice
        ("Nêu ảnh hưởng của biến đổi khí hậu.", "vi", None),  # ảnh hưởng: influence
        ("Vẽ bản đồ Việt Nam.", "vi", "blacklisted"),
        ("ارسم خريطة لمدينة القاهرة.", "ar", "blacklisted"),
        ("ছবিটি বর্ণনা করুন।", "bn", None),  # inflected ছবিটি: whole words only, a known gap
        ("একটি ছবি আঁকুন।", "bn", "blacklisted"),
        ("Fanya video fupi kuhusu paka.", "sw", "blacklisted"),
        ("Thala setshwantsho sa ntlo.", "tn", "blacklisted"),
    ],
)
def test_real_instructions_in_many_scripts(instruction, language, reason):
    assert drop(instruction, language) == reason


@pytest.mark.parametrize("code", ["fr", "zhs", "ar", "hi", "ta", "sw", "yo", "zu"])
def test_quoted_sib200_sentences_do_not_start_with_punctuation(code, sib200):
    text = next(iter(sib200[code].values()))
    for opened in (f"«{text}»", f"“{text}”", f"({text})", f"《{text}》", f'"{text}"'):
        assert not starts_with_punctuation(opened), opened
    for broken in (f".{text}", f",{text}", f"){text}", f"-{text}", f'"{text}'):
        assert starts_with_punctuation(broken), broken


def test_single_character_han_term_is_refused():
    with pytest.raises(ValueError, match="single character"):
        drop("画一幅画。", "zhs", blacklist={"zhs": ["画"]})
