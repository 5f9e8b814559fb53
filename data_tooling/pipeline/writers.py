"""The output end of the corpus pipeline: one shard per file, written atomically.

Two formats, the same columns (the fields of :class:`Document`):

- ``jsonl.zst``: one ``Document.to_json()`` object per line, zstd level 3, single-threaded;
- ``parquet``: ``metadata`` as a JSON string, ``history`` as ``list<string>``, zstd pages.

Neither holds a timestamp, so the same documents give the same bytes (a resumed run hashes
identically). Metadata values that JSON cannot hold are written as ``str(value)``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import zstandard

from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.rundir import atomic_path

Format = Literal["jsonl.zst", "parquet"]
ZSTD_LEVEL = 3
ROW_GROUP_ROWS = 10_000
ROW_GROUP_CHARS = 64 << 20
"""A Parquet row group is flushed at this many rows or this much text, whichever comes first."""


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.large_string()),  # 10 M-char documents overflow int32 offsets quickly
            ("source", pa.string()),
            ("licence", pa.string()),
            ("language", pa.string()),
            ("language_score", pa.float64()),
            ("metadata", pa.string()),
            ("history", pa.list_(pa.string())),
        ]
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class ShardWriter:
    """Write one shard: ``with ShardWriter(path, "parquet") as out: out.write(doc)``.

    The shard is written to a temporary file beside ``path`` and renamed to ``path`` on a
    clean exit; on an exception the temporary file is removed and ``path`` is left untouched.
    """

    def __init__(self, path: Path, fmt: Format):
        if fmt not in ("jsonl.zst", "parquet"):
            raise ValueError(f"fmt={fmt!r}: expected 'jsonl.zst' or 'parquet'")
        self.path = Path(path)
        self.fmt = fmt
        self.count = 0
        """Documents written so far."""
        self._stack = ExitStack()
        self._handle: Any = None
        self._zstd: Any = None
        self._parquet: Any = None
        self._rows: list[dict[str, Any]] = []
        self._chars = 0

    def __enter__(self) -> ShardWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._handle = self._stack.enter_context(open(tmp, "wb"))
        if self.fmt == "jsonl.zst":
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0)
            self._zstd = compressor.stream_writer(self._handle, closefd=False)
        else:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self._handle, _schema(), compression="zstd")
        return self

    def write(self, doc: Document) -> None:
        if self._handle is None:
            raise RuntimeError("ShardWriter.write outside its `with` block")
        if self._zstd is not None:
            self._zstd.write((_dumps(doc.to_json()) + "\n").encode("utf-8"))
        else:
            row = doc.to_json()
            row["metadata"] = _dumps(row["metadata"])
            self._rows.append(row)
            self._chars += len(doc.text)
            if len(self._rows) >= ROW_GROUP_ROWS or self._chars >= ROW_GROUP_CHARS:
                self._flush_rows()
        self.count += 1

    def _flush_rows(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._parquet.write_table(pa.Table.from_pylist(self._rows, schema=_schema()))
        self._rows, self._chars = [], 0

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            with self._stack:  # an error while finishing still removes the temporary file
                self._close_writer()
                self._handle.flush()
                os.fsync(self._handle.fileno())
        else:
            with suppress(Exception):
                self._close_writer()
            self._stack.__exit__(exc_type, exc, tb)
        self._handle = None

    def _close_writer(self) -> None:
        if self._zstd is not None:
            self._zstd.close()
        else:
            self._flush_rows()
            self._parquet.close()


def read_shard(path: Path) -> Iterator[Document]:
    """Stream the Documents of a shard written by :class:`ShardWriter` (either format)."""
    path = Path(path)
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                row["metadata"] = json.loads(row["metadata"])
                yield Document.from_json(row)
    elif path.name.endswith(".jsonl.zst"):
        with open(path, "rb") as handle:
            reader = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True)
            with reader, io.TextIOWrapper(reader, encoding="utf-8", newline="\n") as lines:
                for line in lines:
                    yield Document.from_json(json.loads(line))
    else:
        raise ValueError(f"{path}: not a shard; expected a .jsonl.zst or .parquet file")
