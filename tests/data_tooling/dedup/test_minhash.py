"""MinHash-LSH: edited paragraphs clustered, different ones not, Chinese by characters."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bloomkit.data_tooling.dedup import (
    MinHashConfig,
    MinHashDedup,
    cluster_report,
    near_duplicate_clusters,
    shingle_hashes,
    shingles,
)
from bloomkit.data_tooling.dedup.minhash import MERSENNE, _permutations, signatures
from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.sib200 import documents, read_sentences
from bloomkit.data_tooling.pipeline.base import Document

SPACED = ["en", "fr", "sw", "hi", "ar", "yo"]


def edit_words(text: str, k: int, rng: random.Random) -> str:
    """``text`` with ``k`` words replaced by other words of the same text."""
    words = text.split(" ")
    for i in rng.sample(range(len(words)), k):
        words[i] = rng.choice(words[:i] + words[i + 1 :])
    return " ".join(words)


def edit_chars(text: str, k: int, rng: random.Random) -> str:
    """``text`` with ``k`` characters replaced by other characters of the same text."""
    chars = list(text)
    for i in rng.sample(range(len(chars)), k):
        chars[i] = rng.choice(chars)
    return "".join(chars)


def paragraphs(shared_data: Path, lang: str) -> list[Document]:
    """10-sentence dev paragraphs (~200 words), ids ``<lang>-<n>``."""
    return [
        Document(f"{lang}-{i}", text, language=lang)
        for i, text in enumerate(documents(shared_data, lang, "dev", size=10, sep=" "))
    ]


def with_edits(docs: list[Document], edit, k: int, seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    edited = [Document(f"{d.id}-edit", edit(d.text, k, rng), language=d.language) for d in docs]
    return docs + edited


def recall(docs: list[Document], clusters: list[list[str]]) -> float:
    """Share of originals clustered with their edit; fails on any cluster mixing two sources."""
    for cluster in clusters:
        assert len({i.removesuffix("-edit") for i in cluster}) == 1, cluster
    found = {tuple(c) for c in clusters}
    originals = [d.id for d in docs if not d.id.endswith("-edit")]
    return sum((i, f"{i}-edit") in found for i in originals) / len(originals)


def test_edited_paragraphs_clustered_with_their_source_only(shared_data: Path) -> None:
    # 3 words changed in ~180 word 5-grams: Jaccard ~0.85, candidate with p ~0.99 (0.80: 0.92)
    docs = with_edits([p for lang in SPACED for p in paragraphs(shared_data, lang)], edit_words, 3)
    assert recall(docs, near_duplicate_clusters(docs)) >= 0.9


def test_chinese_near_duplicates_need_character_shingles(shared_data: Path) -> None:
    docs = with_edits(
        paragraphs(shared_data, "zhs") + paragraphs(shared_data, "zht"), edit_chars, 4
    )
    assert recall(docs, near_duplicate_clusters(docs)) >= 0.9
    # split on whitespace, a whole clause is one "word": almost every pair is missed
    as_words = [Document(d.id, d.text, language="en") for d in docs]
    assert recall(as_words, near_duplicate_clusters(as_words)) <= 0.2


def test_translations_and_empty_texts_not_clustered(shared_data: Path) -> None:
    aligned = [
        Document(f"{lang}-{i}", text, language=lang)
        for lang in ("en", "fr", "es", "pt", "ca", "zhs", "zht", "hi", "mr", "ne")
        for i, text in enumerate(read_sentences(shared_data, lang, "dev"))
    ]
    empty = [Document(f"empty-{i}", text) for i, text in enumerate(["", "123 !!", "—"])]
    assert near_duplicate_clusters(aligned + empty) == []


def test_step_keeps_first_of_each_cluster(shared_data: Path) -> None:
    source = paragraphs(shared_data, "sw")
    copy = Document("late-copy", source[2].text.upper(), language="sw")
    docs = [*with_edits(source, edit_words, 3, seed=1), copy]
    removed: list[tuple[str, str]] = []
    step = MinHashDedup()
    step.removed_sink = lambda doc, name, reason: removed.append((doc.id, reason))
    kept = list(step.run(docs))

    assert [d.id for d in kept] == [d.id for d in source]
    assert removed == [(d.id, "near_duplicate") for d in docs[len(source) :]]
    assert copy.metadata["duplicate_of"] == "sw-2"
    assert docs[len(source)].metadata["duplicate_of"] == "sw-0"
    assert sorted(map(len, step.clusters)) == [2] * (len(source) - 1) + [3]
    counts = step.stats.counts
    assert counts["seen"] == counts["kept"] + counts["removed"] == len(docs)
    assert counts["removed_near_duplicate"] == len(source) + 1


def test_verify_threshold_filters_candidates(shared_data: Path) -> None:
    source = paragraphs(shared_data, "en")[:4]
    docs = [*with_edits(source, edit_words, 3), Document("copy", source[0].text, language="en")]
    strict = near_duplicate_clusters(docs, MinHashConfig(verify=1.0))
    assert strict == [["en-0", "copy"]]


def test_signatures_match_the_definition_and_estimate_jaccard(shared_data: Path) -> None:
    config = MinHashConfig(bands=4, rows=8)
    texts = [d.text for d in paragraphs(shared_data, "fr")]
    texts.append(edit_words(texts[0], 12, random.Random(3)))
    sets = [shingle_hashes(t, "fr") for t in texts] + [np.empty(0, dtype=np.uint64)]
    sigs = signatures(sets, config)
    a, b = _permutations(config)
    for s, sig in zip(sets[:-1], sigs, strict=False):
        assert np.array_equal(sig, ((s[:, None] * a + b) % MERSENNE).min(axis=0))
    assert (sigs[-1] == MERSENNE).all()
    x, y = shingles(texts[0], "fr"), shingles(texts[-1], "fr")
    exact = len(x & y) / len(x | y)
    assert abs(np.mean(sigs[0] == sigs[-2]) - exact) < 0.15


def test_config_validates() -> None:
    assert MinHashConfig().num_perm == 112
    with pytest.raises(ValidationError):
        MinHashConfig(bands=0)
    with pytest.raises(ValidationError):
        MinHashConfig(band=14)


def test_cluster_report(shared_data: Path) -> None:
    docs = with_edits(paragraphs(shared_data, "en")[:5], edit_words, 3)
    docs.append(Document("copy", docs[0].text, language="en"))
    clusters = near_duplicate_clusters(docs)
    report = cluster_report(clusters, docs, examples=2)
    assert report["documents"] == 11
    assert report["clusters"] == 5
    assert report["duplicates"] == 6
    assert report["duplicate_rate"] == pytest.approx(6 / 11)
    assert report["largest_cluster"] == 3
    assert report["cluster_sizes"] == {2: 4, 3: 1}
    assert report["duplicates_by_language"] == {"en": 6}
    first = report["examples"][0]
    assert first["cluster_size"] == 3
    assert first["kept"]["id"] == "en-0"
    assert first["removed"]["id"] == "en-0-edit"
    assert 0.5 < first["jaccard"] < 1.0
    assert len(first["kept"]["text"]) <= 160
    assert len(report["examples"]) == 2


def test_speed_on_sib200(shared_data: Path) -> None:
    docs = [
        Document(f"{lang}-{i}", text, language=lang)
        for lang in language_codes()
        for i, text in enumerate(read_sentences(shared_data, lang, "dev"))
    ]
    step = MinHashDedup()
    start = time.perf_counter()
    kept = list(step.run(docs))
    rate = len(docs) / (time.perf_counter() - start)
    print(f"dedup_minhash: {rate:.0f} docs/s over {len(docs)} sib200 dev sentences")
    assert len(kept) + step.stats.counts["removed"] == len(docs)
    assert rate > 500
