"""Readers: every input format becomes Documents; every bad record is quarantined and named."""

from __future__ import annotations

import gzip
import json
import re
from io import BytesIO
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.readers import (
    BadRecord,
    documents_from_dataset,
    list_inputs,
    parse_hf_spec,
    read_documents,
    row_to_document,
)
from bloomkit.data_tooling.sample import read_tsv

LANGS = ("en", "hi", "zhs", "ar", "yo", "ta")


class Quarantine:
    """A quarantine sink that remembers what it was given."""

    def __init__(self) -> None:
        self.items: list[tuple[Document, str, str]] = []

    def __call__(self, doc: Document, step: str, reason: str) -> None:
        self.items.append((doc, step, reason))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, _, reason in self.items]


def read(path: Path | str, **kwargs) -> tuple[list[Document], Quarantine]:
    sink = Quarantine()
    docs = list(read_documents(path, source="src", licence="CC-BY-4.0", quarantine=sink, **kwargs))
    assert all(step == "read" for _, step, _ in sink.items)
    return docs, sink


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    """Real sentences in six scripts (SIB-200 dev)."""
    return [
        row["text"]
        for lang in LANGS
        for row in read_tsv(shared_data / f"sib200/{lang}/dev.tsv")[:5]
    ]


def jsonl_bytes(records: list) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def write_compressed(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json"])
def test_jsonl_formats(tmp_path, texts, suffix):
    records = [{"text": t, "lang_hint": i} for i, t in enumerate(texts)]
    records[0]["id"] = "given-0"
    path = write_compressed(tmp_path / f"part{suffix}", jsonl_bytes(records))
    docs, sink = read(path)
    assert sink.items == []
    assert [d.text for d in docs] == texts
    assert docs[0].id == "given-0"
    assert docs[1].id == f"src/part{suffix}:2"
    assert docs[1].metadata == {"lang_hint": 1, "file": str(path), "line": 2}
    assert (docs[1].source, docs[1].licence) == ("src", "CC-BY-4.0")
    assert [d.id for d in read(path)[0]] == [d.id for d in docs], "ids are stable across runs"


def test_bad_jsonl_lines_are_quarantined_with_file_line_and_field(tmp_path, texts):
    lines = [
        jsonl_bytes([{"text": texts[0]}]),
        b"{not json\n",
        b'["a", "list"]\n',
        jsonl_bytes([{"body": "no text field"}]),
        jsonl_bytes([{"text": 42}]),
        '{"text": "café latin-1"}\n'.encode("latin-1"),  # mixed encodings
        jsonl_bytes([{"text": texts[7], "id": {"nested": 1}}]),
        b'{"text": "\\ud800 lone surrogate"}\n',
        b"   \n",  # blank: not a record
        jsonl_bytes([{"text": texts[8]}]),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    docs, sink = read(path)
    assert [d.text for d in docs] == [texts[0], texts[8]]
    assert [d.metadata["line"] for d in docs] == [1, 10]
    expected = [
        (2, "line: not JSON"),
        (3, "line: expected a JSON object, got list"),
        (4, "text: missing (fields: body)"),
        (5, "text: expected a string, got int"),
        (6, "text: invalid UTF-8 at byte"),
        (7, "id: expected a string or integer, got dict"),
        (8, "text: lone surrogate U+D800"),
    ]
    assert len(sink.reasons) == len(expected)
    for reason, (line, what) in zip(sink.reasons, expected, strict=True):
        assert reason.startswith(f"{path}:{line}: {what}"), reason
    for doc, _, _ in sink.items:
        assert doc.metadata["file"] == str(path)
        assert doc.id == f"src/bad.jsonl:{doc.metadata['line']}"
        assert (doc.source, doc.licence) == ("src", "CC-BY-4.0")
    assert "café" in sink.items[4][0].text.replace("\ufffd", "é"), "the raw snippet is kept"
    assert len(docs) + len(sink.items) == 9, "every non-blank line is yielded or quarantined"


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_empty_file_is_quarantined(tmp_path, suffix):
    path = write_compressed(tmp_path / f"empty{suffix}", b"")
    docs, sink = read(path)
    assert docs == []
    assert sink.reasons == [f"{path}:1: file: empty file (no records)"]


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_truncated_stream_yields_what_decoded_then_one_quarantine(tmp_path, suffix):
    records = [{"text": f"record {i} " + "x" * (i % 97)} for i in range(20_000)]
    path = tmp_path / f"cut{suffix}"
    data = write_compressed(path, jsonl_bytes(records)).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    docs, sink = read(path)
    assert 0 < len(docs) < len(records)
    assert [d.text for d in docs] == [r["text"] for r in records[: len(docs)]]
    assert len(sink.items) == 1
    assert sink.reasons[0].startswith(f"{path}:{len(docs) + 1}: file: truncated")


def test_ten_megabyte_document_is_quarantined_as_too_long(tmp_path, texts):
    big = "ab" * 5_242_880  # 10 MiB of text
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl_bytes([{"text": texts[0]}, {"text": big}, {"text": texts[1]}]))
    docs, sink = read(path)
    assert [d.text for d in docs] == texts[:2]
    assert sink.reasons == [f"{path}:2: text: too long (10,485,760 chars > max_chars 10,000,000)"]
    assert len(sink.items[0][0].text) == 1000, "only a snippet is kept"


def test_parquet(tmp_path, texts):
    path = tmp_path / "rows.parquet"
    rows = [{"id": f"p{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "x", "text": None}]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)
    docs, sink = read(path)
    assert [d.text for d in docs] == texts
    assert [d.metadata["line"] for d in docs] == list(range(1, len(texts) + 1))
    assert sink.reasons == [f"{path}:{len(rows)}: text: expected a string, got NoneType"]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    assert read(empty)[1].reasons == [f"{empty}:1: file: empty file (no rows)"]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(path.read_bytes()[:100])
    assert read(broken)[1].reasons[0].startswith(f"{broken}:1: file: unreadable parquet")


def test_txt_folder_one_document_per_file(tmp_path, texts):
    folder = tmp_path / "txt"
    folder.mkdir()
    for i, text in enumerate(texts[:3]):
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    (folder / "3.txt").write_bytes("déjà vu".encode("cp1252"))
    (folder / "4.txt").write_text("  \n", encoding="utf-8")
    (folder / "5.py").write_text("print('code is text too')\n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG not read")
    docs, sink = read(folder)
    assert [d.text for d in docs] == [*texts[:3], "print('code is text too')\n"]
    assert [d.id for d in docs] == ["src/0.txt:1", "src/1.txt:1", "src/2.txt:1", "src/5.py:1"]
    assert sink.reasons[0].startswith(f"{folder / '3.txt'}:1: text: invalid UTF-8 at byte 1")
    assert sink.reasons[1] == f"{folder / '4.txt'}:1: text: empty file"


def warc_file(path: Path, pages: list[tuple[str, str, bytes]]) -> Path:
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=path.name.endswith(".gz"))
        for url, content_type, body in pages:
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                url, "response", payload=BytesIO(body), http_headers=headers
            )
            writer.write_record(record)
    return path


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_warc_text_responses(tmp_path, texts, name):
    html = (
        f"<html><head><title>T</title><style>p {{color: red}}</style></head><body>"
        f"<p>{texts[0]}</p><script>var x = 1;</script><div>{texts[5]} &amp; co</div></body></html>"
    ).encode()
    path = warc_file(
        tmp_path / name,
        [
            ("https://example.org/a", "text/html; charset=utf-8", html),
            ("https://example.org/logo.png", "image/png", b"\x89PNG..."),
            (
                "https://example.org/b.txt",
                "text/plain; charset=iso-8859-1",
                "déjà".encode("latin-1"),
            ),
            ("https://example.org/c", "text/html", b"<p>caf\xe9</p>"),
        ],
    )
    docs, sink = read(path)
    assert [d.text for d in docs] == [f"T\n{texts[0]}\n{texts[5]} & co", "déjà"]
    assert [d.metadata["url"] for d in docs] == [
        "https://example.org/a",
        "https://example.org/b.txt",
    ]
    assert docs[0].id.startswith("<urn:uuid:")
    assert [d.metadata["line"] for d in docs] == [1, 3]
    assert len(sink.items) == 1
    assert sink.reasons[0].startswith(f"{path}:4: content: undecodable body")
    assert sink.items[0][0].metadata == {"file": str(path), "line": 4}


def test_saved_dataset_folder(tmp_path, texts):
    folder = tmp_path / "ds"
    rows = {"text": [*texts[:4], None], "score": [1, 2, 3, 4, 5]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(folder))
    docs, sink = read(folder)
    assert [d.text for d in docs] == texts[:4]
    assert docs[2].id == "src/ds:3"
    assert docs[2].metadata == {"score": 3, "file": str(folder), "line": 3}
    assert sink.reasons == [f"{folder}:5: text: expected a string, got NoneType"]


def test_hf_datasets_share_the_row_path_with_files(tmp_path, texts):
    """``load_dataset`` results (what hf:// gives) go through the same row → Document code."""
    path = tmp_path / "hub" / "train.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.Table.from_pylist([{"id": f"h{i}", "text": t} for i, t in enumerate(texts)]), path
    )
    dataset = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    sink = Quarantine()
    label = "hf://org/name:cfg/train"
    docs = list(
        documents_from_dataset(
            dataset, label=label, source="src", licence="CC-BY-4.0", quarantine=sink
        )
    )
    from_file, _ = read(path)
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in from_file]
    assert docs[0].metadata == {"file": label, "line": 1}
    assert sink.items == []


def test_row_to_document():
    kwargs = {"file": "f.parquet", "name": "f.parquet", "line": 3, "source": "s", "licence": "l"}
    doc = row_to_document({"id": 7, "text": "héllo".encode(), "extra": [1]}, **kwargs)
    assert (doc.id, doc.text, doc.metadata) == (
        "7",
        "héllo",
        {"extra": [1], "file": "f.parquet", "line": 3},
    )
    assert row_to_document({"content": "x"}, text_field="content", **kwargs).id == "s/f.parquet:3"
    for row, message in [
        ({"text": b"\xff"}, "text: invalid UTF-8 at byte 0"),
        ({"text": "x", "id": True}, "id: expected a string or integer, got bool"),
        ({"text": "xxxx"}, "text: too long (4 chars > max_chars 3)"),
    ]:
        with pytest.raises(BadRecord, match=re.escape(message)):
            row_to_document(row, max_chars=3, **kwargs)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("hf://wikitext", ("wikitext", None, "train")),
        ("hf://org/name", ("org/name", None, "train")),
        ("hf://org/name/validation", ("org/name", None, "validation")),
        ("hf://allenai/c4:en/validation", ("allenai/c4", "en", "validation")),
        ("hf://wikitext:wikitext-2-raw-v1", ("wikitext", "wikitext-2-raw-v1", "train")),
    ],
)
def test_parse_hf_spec(spec, parsed):
    assert parse_hf_spec(spec) == parsed


def test_list_inputs(tmp_path):
    (tmp_path / "a.jsonl.zst").write_bytes(b"")
    (tmp_path / "b.parquet").write_bytes(b"")
    (tmp_path / "skip.csv").write_bytes(b"")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "1.txt").write_text("x")
    (tmp_path / "txt" / "deeper").mkdir()
    (tmp_path / "txt" / "deeper" / "c.warc.gz").write_bytes(b"")
    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    expected = [
        str(tmp_path / "a.jsonl.zst"),
        str(tmp_path / "b.parquet"),
        str(tmp_path / "ds"),
        str(tmp_path / "txt"),
        str(tmp_path / "txt" / "deeper" / "c.warc.gz"),
    ]
    assert list_inputs([str(tmp_path)]) == expected
    assert list_inputs(
        [str(tmp_path / "*.jsonl.zst"), str(tmp_path / "a.jsonl.zst"), "hf://x/y"]
    ) == [
        str(tmp_path / "a.jsonl.zst"),
        "hf://x/y",
    ]
    with pytest.raises(FileNotFoundError, match="nothing"):
        list_inputs([str(tmp_path / "nothing*.jsonl")])
    with pytest.raises(ValueError, match=r"skip\.csv: unsupported input"):
        list_inputs([str(tmp_path / "skip.csv")])
    with pytest.raises(ValueError, match=r"skip\.csv: unsupported input"):
        read(tmp_path / "skip.csv")
