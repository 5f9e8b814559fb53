"""Shard writers: atomic, deterministic, and byte-exact round trips in both formats."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.writers import ShardWriter, read_shard
from bloomkit.data_tooling.sample import read_tsv

FORMATS = ["jsonl.zst", "parquet"]
LANGS = ("en", "hi", "zhs", "zht", "ar", "ur", "yo", "fon", "ta", "or", "as", "vi")


@pytest.fixture(scope="module")
def docs(shared_data) -> list[Document]:
    """Real SIB-200 dev sentences in twelve languages, with every field filled in."""
    out = []
    for lang in LANGS:
        for row in read_tsv(shared_data / f"sib200/{lang}/dev.tsv"):
            out.append(
                Document(
                    id=f"sib200/{lang}/dev.tsv:{row['index_id']}",
                    text=row["text"],
                    source="sib200",
                    licence="CC-BY-SA-4.0",
                    language=lang,
                    language_score=0.5 + len(row["text"]) % 50 / 100,
                    metadata={"category": row["category"], "line": int(row["index_id"])},
                    history=["normalise", "pii:email"][: len(out) % 3],
                )
            )
    out[0].language, out[0].language_score = None, None
    return out


def write(path, fmt, docs) -> bytes:
    with ShardWriter(path, fmt) as out:
        for doc in docs:
            out.write(doc)
    assert out.count == len(docs)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_byte_exact(tmp_path, docs, fmt):
    path = tmp_path / f"00000.{fmt}"
    write(path, fmt, docs)
    back = list(read_shard(path))
    assert back == docs
    assert [d.text.encode() for d in back] == [d.text.encode() for d in docs]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no temporary file left"


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_documents_same_bytes(tmp_path, docs, fmt):
    first = write(tmp_path / f"a.{fmt}", fmt, docs)
    second = write(tmp_path / f"b.{fmt}", fmt, docs)
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_error_leaves_no_output_and_keeps_the_old_one(tmp_path, docs, fmt):
    path = tmp_path / f"shard.{fmt}"
    old = write(path, fmt, docs[:2])
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(path, fmt) as out:
        out.write(docs[3])
        raise RuntimeError("boom")
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(tmp_path / f"new.{fmt}", fmt):
        raise RuntimeError("boom")
    assert not (tmp_path / f"new.{fmt}").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_and_huge_shards(tmp_path, fmt):
    write(tmp_path / f"e.{fmt}", fmt, [])
    assert list(read_shard(tmp_path / f"e.{fmt}")) == []
    big = [Document(id="big", text="ऄ" * 10_000_000, metadata={"odd": {1, 2}})]
    write(tmp_path / f"big.{fmt}", fmt, big)
    (back,) = read_shard(tmp_path / f"big.{fmt}")
    assert back.text == big[0].text
    assert back.metadata == {"odd": "{1, 2}"}, "values JSON cannot hold are written as str()"


def test_parquet_columns(tmp_path, docs):
    path = tmp_path / "s.parquet"
    write(path, "parquet", docs[:3])
    schema = pq.read_schema(path)
    assert schema.names == [
        "id", "text", "source", "licence", "language", "language_score", "metadata", "history"
    ]  # fmt: skip
    assert schema.field("history").type == pa.list_(pa.string())
    assert schema.field("metadata").type == pa.string()


def test_misuse_is_explained(tmp_path):
    with pytest.raises(ValueError, match=r"expected 'jsonl\.zst' or 'parquet'"):
        ShardWriter(tmp_path / "x.csv", "csv")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        ShardWriter(tmp_path / "x.parquet", "parquet").write(Document(id="1", text="x"))
    with pytest.raises(ValueError, match="not a shard"):
        list(read_shard(tmp_path / "x.csv"))
