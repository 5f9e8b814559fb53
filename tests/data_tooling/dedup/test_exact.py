"""Exact dedup: normalised copies removed with their reason, the first kept, on disk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bloomkit.data_tooling.dedup import ExactDedup, UniqueIds, exact_key, runs
from bloomkit.data_tooling.lid.sib200 import read_sentences
from bloomkit.data_tooling.pipeline.base import Document


def corpus(shared_data: Path, lang: str) -> list[Document]:
    return [
        Document(f"{lang}-{i}", text, language=lang)
        for i, text in enumerate(read_sentences(shared_data, lang, "dev"))
    ]


def variant(text: str, i: int) -> str:
    """The same text with case and whitespace changed."""
    return ["  " + text.upper(), text.replace(" ", "\n  ") + "\t", text.lower()][i % 3]


def test_copies_with_case_and_whitespace_changes_removed(shared_data: Path) -> None:
    docs = corpus(shared_data, "en") + corpus(shared_data, "zhs")
    copies = [
        Document(f"copy-{d.id}", variant(d.text, i), language=d.language)
        for i, d in enumerate(docs[::7])
    ]
    removed: list[tuple[str, str, str]] = []
    step = ExactDedup()
    step.removed_sink = lambda doc, name, reason: removed.append((doc.id, name, reason))
    kept = list(step.run(docs + copies))

    assert [d.id for d in kept] == [d.id for d in docs]
    assert removed == [(c.id, "dedup_exact", "exact_duplicate") for c in copies]
    assert [c.metadata["duplicate_of"] for c in copies] == [d.id for d in docs[::7]]
    counts = step.stats.counts
    assert counts["seen"] == counts["kept"] + counts["removed"] == len(docs) + len(copies)
    assert counts["removed_exact_duplicate"] == len(copies)
    assert step.stats.by_language["zhs"]["removed"] == sum(c.language == "zhs" for c in copies)


def test_key_ignores_case_and_whitespace_only() -> None:
    assert exact_key("Hello  World\n") == exact_key("hello world")
    assert exact_key("Ｈｅｌｌｏ") == exact_key("hello")  # NFKC folds full-width forms
    assert exact_key("hello world") != exact_key("hello world!")
    assert exact_key("hello world") != exact_key("helloworld")


def test_first_occurrence_on_disk_matches_a_dict(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "RUN_RECORDS", 9)
    monkeypatch.setattr(runs, "BLOCK_BYTES", 20)  # smaller than one record
    docs = corpus(shared_data, "sw")[:80]
    rng = random.Random(0)
    for n in range(80):
        src = rng.choice(docs)
        docs.append(Document(f"copy-{n}", variant(src.text, n), language="sw"))
    rng.shuffle(docs)
    seen: dict[str, str] = {}
    expected = [d.id for d in docs if seen.setdefault(exact_key(d.text), d.id) == d.id]
    step = ExactDedup(tmp_path / "work")
    kept = list(step.run(docs))
    assert [d.id for d in kept] == expected
    dropped = [d for d in docs if "duplicate_of" in d.metadata]
    assert [d.metadata["duplicate_of"] for d in dropped] == [
        seen[exact_key(d.text)] for d in dropped
    ]
    assert step.stats.counts["removed"] == len(docs) - len(expected) > 20
    assert not (tmp_path / "work").exists()


def test_later_steps_skip_what_earlier_ones_removed() -> None:
    docs = [
        Document("a", "one"),
        Document("a", "two", language="sw"),  # duplicate id: not the first "two"
        Document("b", "TWO"),
        Document("c", "one"),
        Document("\ud800", "two  "),
    ]
    unique, exact = UniqueIds(), ExactDedup()
    for doc in docs:
        unique.add(doc)
        exact.add(doc)
    removed = exact.finish(unique.finish())
    assert [i for i in range(6) if i in removed] == [1, 3, 4]
    kept = list(exact.select(unique.select(docs)))
    assert [d.id for d in kept] == ["a", "b"]
    assert [d.metadata.get("duplicate_of") for d in docs] == [None, None, None, "a", "b"]
    assert unique.stats.by_language["sw"] == {"seen": 1, "removed": 1, "removed_duplicate_id": 1}


def test_select_checks_it_gets_what_was_added() -> None:
    step = UniqueIds()
    step.add(Document("a", "x"))
    step.finish()
    with pytest.raises(RuntimeError, match="more than the 1"):
        list(step.select([Document("a", "x"), Document("b", "y")]))
    step = UniqueIds()
    for doc in [Document("a", "x"), Document("a", "y")]:
        step.add(doc)
    step.finish()
    with pytest.raises(RuntimeError, match="fewer than the 2"):
        list(step.select([Document("a", "x")]))
