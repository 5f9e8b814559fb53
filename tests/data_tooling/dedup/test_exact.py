"""Exact dedup: normalised copies removed with their reason, first kept, state across shards."""

from __future__ import annotations

from pathlib import Path

from bloomkit.data_tooling.dedup import ExactDedup, exact_key
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


def test_state_dedups_across_shards_and_reruns_are_idempotent(
    shared_data: Path, tmp_path: Path
) -> None:
    docs = corpus(shared_data, "sw")
    state = tmp_path / "seen.tsv"
    first = list(ExactDedup(state).run(docs[:60]))
    assert len(first) == 60
    assert len(state.read_text(encoding="utf-8").splitlines()) == 60

    overlap = [Document(f"mirror-{d.id}", d.text, language="sw") for d in docs[40:60]]
    shard2 = [*overlap, *docs[60:], Document("again", docs[0].text.upper(), language="sw")]
    step = ExactDedup(state)
    second = list(step.run(shard2))
    assert [d.id for d in second] == [d.id for d in docs[60:]]
    assert overlap[0].metadata["duplicate_of"] == docs[40].id
    assert shard2[-1].metadata["duplicate_of"] == docs[0].id
    assert step.stats.counts["removed"] == 21

    rerun = list(ExactDedup(state).run(docs[:60]))
    assert len(rerun) == 60
