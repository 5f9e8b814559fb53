"""Streaming dedup: sorted runs merged on disk give the in-memory answer; memory stays flat."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from bloomkit.data_tooling.dedup import MinHashConfig, MinHashDedup, near_duplicate_clusters, runs
from bloomkit.data_tooling.dedup import buckets as buckets_module
from bloomkit.data_tooling.dedup import minhash as minhash_module
from bloomkit.data_tooling.dedup.buckets import UnionFind
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.executor import ShardTask, dedup_stage
from bloomkit.data_tooling.pipeline.writers import ShardWriter, read_shard
from tests.data_tooling.dedup.test_minhash import edit_words, paragraphs, with_edits
from tests.data_tooling.pipeline.corpus_fixtures import make_config, small_inputs


@pytest.fixture
def tiny_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small runs, blocks and batches, so every merge and flush path is taken."""
    monkeypatch.setattr(buckets_module, "RUN_DOCS", 50)
    monkeypatch.setattr(buckets_module, "BLOCK_RECORDS", 7)
    monkeypatch.setattr(minhash_module, "BATCH_SHINGLES", 1000)
    monkeypatch.setattr(minhash_module, "BATCH_DOCS", 13)
    monkeypatch.setattr(runs, "RUN_RECORDS", 64)
    monkeypatch.setattr(runs, "BLOCK_BYTES", 256)


def edited(shared_data: Path) -> list[Document]:
    docs = [p for lang in ("en", "hi", "zhs", "sw") for p in paragraphs(shared_data, lang)]
    return [*with_edits(docs, edit_words, 3), Document("empty", "")]


@pytest.mark.parametrize("verify", [None, 0.7])
def test_many_sorted_runs_give_the_same_clusters(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, verify: float | None
) -> None:
    docs, config = edited(shared_data), MinHashConfig(verify=verify)
    reference = near_duplicate_clusters(docs, config)
    assert len(reference) > 30
    monkeypatch.setattr(buckets_module, "RUN_DOCS", 50)
    monkeypatch.setattr(buckets_module, "BLOCK_RECORDS", 7)
    monkeypatch.setattr(minhash_module, "BATCH_DOCS", 13)
    assert near_duplicate_clusters(docs, config) == reference


def test_work_files_removed_and_passes_must_match(shared_data: Path, tmp_path: Path) -> None:
    docs = edited(shared_data)
    step = MinHashDedup(folder=tmp_path / "work")
    step.cluster(iter(docs))
    assert not (tmp_path / "work").exists()
    with pytest.raises(RuntimeError, match="clustered"):
        list(step.select(iter(docs[:-1])))


def test_sorted_runs_merge_in_key_then_index_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "RUN_RECORDS", 10)
    monkeypatch.setattr(runs, "BLOCK_BYTES", 7)  # smaller than any record
    rng = random.Random(1)
    records = [
        (
            rng.choice([b"", b"a", b"ab", b"b" * 40, "é".encode()]),
            i,
            rng.randbytes(rng.randrange(30)),
        )
        for i in rng.sample(range(1000), 95)
    ]
    store = runs.SortedRuns(tmp_path / "runs.bin")
    for record in records:
        store.add(*record)
    assert list(store) == sorted(records)
    assert list(store) == sorted(records)  # read again: the file is unchanged


def test_bitmap_holds_indices_and_unions() -> None:
    a, b = runs.Bitmap(), runs.Bitmap()
    for i in (0, 7, 8, 1000):
        a.add(i)
    b.add(3)
    union = a | b
    assert [i for i in range(2000) if i in union] == [0, 3, 7, 8, 1000]
    assert [i for i in range(2000) if i in b] == [3] and len(union.bits) == 126


def test_union_find_groups_by_lowest_index() -> None:
    forest = UnionFind()
    for i, j in [(9, 4), (7, 2), (4, 2), (12, 11), (3, 1)]:
        forest.union(i, j)
    assert forest.groups() == [[1, 3], [2, 4, 7, 9], [11, 12]]
    assert forest.find(9) == 2


VOCAB = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=6)) for i in range(1000)]
"""Shared by every run, so the token-hash cache is full after the warm-up."""


def random_docs(count: int, seed: int) -> list[Document]:
    """``count`` distinct ~0.5 KB documents of random words, every 10th an edited copy."""
    rng, docs = random.Random(seed), []
    for n in range(count):
        # an edited copy has Jaccard 0.99 to its source: a candidate for sure
        text = docs[n - 5].text + " changed" if n % 10 == 9 else " ".join(rng.choices(VOCAB, k=80))
        docs.append(Document(f"doc-{n:06d}", text, source="s", language="en"))
    return docs


def dedup_peak(folder: Path, count: int) -> tuple[int, dict]:
    """Peak traced bytes of the dedup stage over ``count`` documents in 4 kept shards."""
    config = make_config(small_inputs(folder / "raw", shards=1, per_language=1))
    docs, tasks = random_docs(count, seed=count), []
    for k in range(4):
        task = ShardTask(k, "x", "l", config.inputs[0], config, folder / "run/shards" / str(k))
        task.folder.mkdir(parents=True)
        with ShardWriter(task.output("kept"), "jsonl.zst") as out:
            for doc in docs[k::4]:
                out.write(doc)
        tasks.append(task)
    del docs
    tracemalloc.start()
    try:
        stats = dedup_stage(tasks, config, folder / "run")
        return tracemalloc.get_traced_memory()[1], stats
    finally:
        tracemalloc.stop()


@pytest.mark.usefixtures("tiny_buffers")
def test_dedup_stage_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    dedup_peak(tmp_path / "warm-up", 100)  # caches and imports, not the corpus
    small, small_stats = dedup_peak(tmp_path / "x1", 300)
    large, large_stats = dedup_peak(tmp_path / "x10", 3000)
    # holding the documents (0.5 KB of text each) and their shingles and signatures, as the
    # dedup stage once did, costs > 2 KB per document; an in-memory id set and sha1 → id map
    # 261 bytes. What grows now (~47 bytes): a merge block and generator per run of these
    # tiny buffers (every 50–64 documents), the near-duplicate clusters, 4 bits of bitmaps
    per_doc = (large - small) / 2700
    print(f"dedup stage: peak {small=} {large=}: {per_doc:.0f} bytes per extra document")
    assert per_doc < 100
    near = large_stats["clusters"]
    assert near["duplicates"] == small_stats["clusters"]["duplicates"] * 10 == 300
    kept = [d for p in sorted((tmp_path / "x10/run/corpus").iterdir()) for d in read_shard(p)]
    assert len(kept) == 2700
