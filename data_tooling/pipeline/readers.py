"""The input end of the corpus pipeline: every supported format becomes a stream of Documents.

Supported inputs (one shard each, see :func:`list_inputs`):

- JSON lines: ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``, ``.json`` (one object per line, streamed)
- ``.parquet`` (streamed by record batch)
- a folder of text files: ``.txt``, ``.md`` and source code (:data:`TEXT_SUFFIXES`; one document
  per file, sorted by name; subfolders not read)
- ``.warc`` / ``.warc.gz`` (response records with ``text/html`` or ``text/plain`` bodies)
- a ``datasets`` folder written by ``save_to_disk``, and ``hf://name[:config][/split]``

A bad record never stops a read: it goes to ``quarantine(doc, "read", reason)`` with a raw
snippet and a reason ``"<file>:<line>: <field>: <what is wrong>"``, and reading continues, so
``yielded + quarantined == records in the input`` (blank JSONL lines are not records).
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bloomkit.data_tooling.pipeline.base import Document, Sink
from bloomkit.data_tooling.pipeline.streams import Truncated, lines

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json")
FILE_SUFFIXES = (*JSONL_SUFFIXES, ".parquet", ".warc", ".warc.gz")
DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
TEXT_SUFFIXES = (".txt", ".md", ".py", ".java", ".js", ".ts", ".c", ".h", ".cpp", ".hpp", ".go",
                 ".rs", ".rb", ".php", ".lua", ".scala", ".jl", ".sh")  # fmt: skip
"""Files that a text folder reads: prose and the source code of BLOOM's languages."""
HF_PREFIX = "hf://"
SNIPPET_CHARS = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadRecord(ValueError):
    """A record that cannot become a Document; ``field`` names the culprit."""

    def __init__(self, field: str, what: str):
        super().__init__(f"{field}: {what}")
        self.field = field
        self.what = what


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What every reader needs besides the input itself."""

    source: str
    licence: str
    text_field: str
    id_field: str
    quarantine: Sink
    max_chars: int

    def bad(self, file: str, name: str, line: int, raw: Any, field: str, what: str) -> None:
        if isinstance(raw, bytes):
            raw = raw[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
        elif not isinstance(raw, str):
            raw = json.dumps(raw, ensure_ascii=False, default=str)
        doc = Document(
            id=f"{self.source}/{name}:{line}",
            text=raw[:SNIPPET_CHARS],
            source=self.source,
            licence=self.licence,
            metadata={"file": file, "line": line},
        )
        self.quarantine(doc, "read", f"{file}:{line}: {field}: {what}")

    def documents(
        self, rows: Iterable[tuple[int, Mapping[str, Any]]], file: str, name: str
    ) -> Iterator[Document]:
        for line, row in rows:
            try:
                yield row_to_document(
                    row, file=file, name=name, line=line, source=self.source,
                    licence=self.licence, text_field=self.text_field, id_field=self.id_field,
                    max_chars=self.max_chars,
                )  # fmt: skip
            except BadRecord as err:
                self.bad(file, name, line, row, err.field, err.what)


def row_to_document(
    row: Mapping[str, Any],
    *,
    file: str,
    name: str,
    line: int,
    source: str,
    licence: str,
    text_field: str = "text",
    id_field: str = "id",
    max_chars: int = 10_000_000,
) -> Document:
    """Turn one record (a JSON object, a Parquet or ``datasets`` row) into a Document.

    The id is the record's ``id_field`` when present, else ``f"{source}/{name}:{line}"``.
    Other fields of the record are kept in ``metadata`` next to ``file`` and ``line``.
    Raises :class:`BadRecord` naming the field when the record is unusable.
    """
    if text_field not in row:
        raise BadRecord(text_field, f"missing (fields: {', '.join(sorted(map(str, row)))})")
    text = row[text_field]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadRecord(text_field, f"invalid UTF-8 at byte {err.start}") from None
    if not isinstance(text, str):
        raise BadRecord(text_field, f"expected a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise BadRecord(text_field, f"too long ({len(text):,} chars > max_chars {max_chars:,})")
    if match := _SURROGATE.search(text):
        raise BadRecord(
            text_field, f"lone surrogate U+{ord(match.group()):04X} at char {match.start()}"
        )
    doc_id = row.get(id_field)
    if doc_id is None:
        doc_id = f"{source}/{name}:{line}"
    elif isinstance(doc_id, int | str) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    else:
        raise BadRecord(id_field, f"expected a string or integer, got {type(doc_id).__name__}")
    extra = {k: v for k, v in row.items() if k not in (text_field, id_field)}
    return Document(
        id=doc_id,
        text=text,
        source=source,
        licence=licence,
        metadata={**extra, "file": file, "line": line},
    )


# --------------------------------------------------------------------------- entry points


def read_documents(
    path: Path | str,
    *,
    source: str,
    licence: str,
    text_field: str = "text",
    id_field: str = "id",
    quarantine: Sink,
    max_chars: int = 10_000_000,
) -> Iterator[Document]:
    """Stream the Documents of one shard (a file, a txt folder, a dataset or ``hf://`` name)."""
    ctx = ReadContext(source, licence, text_field, id_field, quarantine, max_chars)
    spec = str(path)
    if spec.startswith("hf:/"):  # Path("hf://a/b") collapses the double slash
        spec = HF_PREFIX + spec.removeprefix("hf:/").lstrip("/")
        return _read_hf(spec, ctx)
    path = Path(path)
    if path.is_dir():
        if is_dataset_folder(path):
            return _read_saved_dataset(path, ctx)
        return _read_txt_folder(path, ctx)
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    name = path.name
    if name.endswith(JSONL_SUFFIXES):
        return _read_jsonl(path, ctx)
    if name.endswith(".parquet"):
        return _read_parquet(path, ctx)
    if name.endswith((".warc", ".warc.gz")):
        from bloomkit.data_tooling.pipeline.warc import read_warc

        return read_warc(path, ctx)
    raise ValueError(
        f"{path}: unsupported input; expected one of {', '.join(FILE_SUFFIXES)}, "
        "a folder of text files, a datasets folder or hf://name[:config][/split]"
    )


def list_inputs(paths: list[str]) -> list[str]:
    """Expand globs and folders into shard units, in a stable order, without duplicates.

    A file is one shard; a ``datasets`` folder is one shard; any other folder yields its
    supported files, itself as one txt shard when it holds ``.txt`` files, then its subfolders
    expanded the same way.
    ``hf://`` names pass through unchanged.
    """
    shards: list[str] = []
    for spec in paths:
        if spec.startswith(HF_PREFIX):
            shards.append(spec)
            continue
        matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
        if not matches or not Path(matches[0]).exists():
            raise FileNotFoundError(f"input not found: {spec}")
        for match in map(Path, matches):
            shards.extend(_expand(match))
    return list(dict.fromkeys(shards))


def _expand(path: Path) -> list[str]:
    if not path.is_dir():
        if path.name.endswith(FILE_SUFFIXES):
            return [str(path)]
        raise ValueError(f"{path}: unsupported input; expected one of {', '.join(FILE_SUFFIXES)}")
    if is_dataset_folder(path):
        return [str(path)]
    children = sorted(path.iterdir())
    found = [str(p) for p in children if p.is_file() and p.name.endswith(FILE_SUFFIXES)]
    if any(p.is_file() and p.suffix in TEXT_SUFFIXES for p in children):
        found.append(str(path))
    for child in children:
        if child.is_dir():
            found.extend(_expand(child))
    return found


def is_dataset_folder(path: Path) -> bool:
    """Whether ``path`` was written by ``datasets`` ``save_to_disk``."""
    return any((path / marker).is_file() for marker in DATASET_MARKERS)


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``hf://name[:config][/split]`` → ``(name, config, split)``; split defaults to train.

    Without a config, ``org/name`` is a name and ``org/name/split`` adds a split;
    with one, everything before the colon is the name: ``hf://allenai/c4:en/validation``.
    """
    rest = spec.removeprefix(HF_PREFIX).strip("/")
    if ":" in rest:
        name, _, tail = rest.partition(":")
        config, _, split = tail.partition("/")
        return name, config or None, split or "train"
    parts = rest.split("/")
    if len(parts) == 3:
        return "/".join(parts[:2]), None, parts[2]
    return rest, None, "train"


# --------------------------------------------------------------------------- JSON lines


def _read_jsonl(path: Path, ctx: ReadContext) -> Iterator[Document]:
    file, name = str(path), path.name
    line = records = 0
    try:
        for line, raw in enumerate(lines(path), 1):
            if not raw.strip():
                continue
            records += 1
            if line == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
            try:
                yield from ctx.documents([(line, _parse_json_line(raw))], file, name)
            except BadRecord as err:
                ctx.bad(file, name, line, raw, err.field, err.what)
    except Truncated as err:
        ctx.bad(file, name, line + 1, err.partial, "file", err.what)
        return
    if records == 0:
        ctx.bad(file, name, 1, b"", "file", "empty file (no records)")


def _parse_json_line(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        field = _field_with_bad_bytes(raw) or "line"
        raise BadRecord(field, f"invalid UTF-8 at byte {err.start} ({err.reason})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRecord("line", f"not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise BadRecord("line", f"expected a JSON object, got {type(record).__name__}")
    return record


def _field_with_bad_bytes(raw: bytes) -> str | None:
    """The first top-level field whose value holds the undecodable bytes, if the line parses."""
    try:
        record = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return next(
        (k for k, v in record.items() if "\ufffd" in json.dumps(v, ensure_ascii=False)), None
    )


# --------------------------------------------------------------------------- tables


def _read_parquet(path: Path, ctx: ReadContext) -> Iterator[Document]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    file, name = str(path), path.name
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            rows = list(enumerate(batch.to_pylist(), row + 1))
            row += len(rows)
            yield from ctx.documents(rows, file, name)
    except (OSError, pa.ArrowException) as err:
        ctx.bad(file, name, row + 1, b"", "file", f"unreadable parquet ({err})")
        return
    if row == 0:
        ctx.bad(file, name, 1, b"", "file", "empty file (no rows)")


def documents_from_dataset(
    dataset: Any,
    *,
    label: str,
    source: str,
    licence: str,
    text_field: str = "text",
    id_field: str = "id",
    quarantine: Sink,
    max_chars: int = 10_000_000,
) -> Iterator[Document]:
    """Documents of a ``datasets.Dataset`` (rows numbered from 1); ``label`` names it in reasons.

    The one path for ``load_from_disk`` and ``load_dataset`` results alike.
    """
    ctx = ReadContext(source, licence, text_field, id_field, quarantine, max_chars)
    yield from _dataset_documents(dataset, label, ctx)


def _dataset_documents(dataset: Any, label: str, ctx: ReadContext) -> Iterator[Document]:
    name = label.removeprefix(HF_PREFIX) if label.startswith(HF_PREFIX) else Path(label).name
    rows = 0
    for rows, row in enumerate(dataset, 1):
        yield from ctx.documents([(rows, row)], label, name)
    if rows == 0:
        ctx.bad(label, name, 1, b"", "file", "empty dataset (no rows)")


def _read_saved_dataset(path: Path, ctx: ReadContext) -> Iterator[Document]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        for split in sorted(loaded):
            yield from _dataset_documents(loaded[split], str(path / split), ctx)
    else:
        yield from _dataset_documents(loaded, str(path), ctx)


def _read_hf(spec: str, ctx: ReadContext) -> Iterator[Document]:
    import datasets

    name, config, split = parse_hf_spec(spec)
    yield from _dataset_documents(datasets.load_dataset(name, config, split=split), spec, ctx)


# --------------------------------------------------------------------------- text files


def _read_txt_folder(folder: Path, ctx: ReadContext) -> Iterator[Document]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not files:
        ctx.bad(str(folder), folder.name, 1, b"", "file", "no text files in folder")
    for path in files:
        file, name = str(path), path.name
        if path.stat().st_size > 4 * ctx.max_chars:  # UTF-8 needs at most 4 bytes a char
            ctx.bad(file, name, 1, b"", "text", f"too long ({path.stat().st_size:,} bytes)")
            continue
        raw = path.read_bytes()
        try:
            text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        except UnicodeDecodeError as err:
            ctx.bad(file, name, 1, raw, "text", f"invalid UTF-8 at byte {err.start} ({err.reason})")
            continue
        if not text.strip():
            ctx.bad(file, name, 1, raw, "text", "empty file")
            continue
        yield from ctx.documents([(1, {ctx.text_field: text})], file, name)
