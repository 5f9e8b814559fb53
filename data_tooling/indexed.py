"""Corpus shards → megatron-core indexed datasets (``.bin``/``.idx``), one per language.

``tokenize_corpus`` encodes every document with the tokenizer's fast Rust batch encoder in
``workers`` processes (one thread each; ``workers: 1`` encodes here with the encoder's own
thread pool), appends the end-of-document id and writes, per shard, one partial
dataset per language (or source) with megatron-core's ``IndexedDatasetBuilder``; a shard's
partials appear atomically together with ``done.json``, so a rerun skips finished shards.
The partials are then merged (``add_index``) into ``RUN/datasets/<key>.{bin,idx}`` and the
blend ``RUN/blend.json`` (``{prefix: weight}``, what ``pretrain`` takes as ``data.blend``)
is written with weights ``∝ tokens^alpha``. Tokens are int32 when the vocabulary exceeds
65,535, else uint16.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import re
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from bloomkit.config import Section
from bloomkit.console import log, progress
from bloomkit.data_tooling.tokenizer.corpus import (
    CorpusError,
    alpha_weights,
    find_shards,
    parse_record,
    shard_lines,
)
from bloomkit.data_tooling.tokenizer.train import eod_id_of, load_tokenizer
from bloomkit.rundir import RunDir, atomic_path, atomic_write_json, sha256_file

DONE = "done.json"


class TokenizeConfig(Section):
    """``bloomkit data tokenize CONFIG``."""

    inputs: list[Path]
    """Corpus shards (``.jsonl[.gz|.zst]``) or folders of them."""
    tokenizer: Path
    """A tokenizer folder (``bloomkit data tokenizer train`` writes ``RUN/tokenizer``)."""
    group_by: Literal["language", "source"] = "language"
    """One dataset per value of this record field."""
    workers: Annotated[int, Field(ge=1)] = 2
    """Encoding processes (1 = in this process)."""
    batch_docs: Annotated[int, Field(ge=1)] = 512
    """Documents per encode_batch call / work item."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    """Blend weights ``∝ tokens^alpha``: 1 = token shares, lower flattens towards uniform."""
    model_vocab_size: Annotated[int, Field(gt=0)] | None = None
    """The model's (padded) vocabulary size: refuse a tokenizer with more tokens."""


def token_dtype(vocab_size: int) -> type[np.number]:
    return np.int32 if vocab_size > 65_535 else np.uint16


# --------------------------------------------------------------------------- encoding workers

_STATE: dict[str, Any] = {}


def _init_worker(tokenizer_dir: str, eod: int, group_by: str, dtype: str) -> None:
    if multiprocessing.parent_process() is not None:
        # One encoding thread per worker process: the workers already use the cores, and
        # tokenizers' own thread pool in each of them would oversubscribe them.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _STATE.update(tokenizer=load_tokenizer(tokenizer_dir), eod=eod, key=group_by, dtype=dtype)


def _encode_chunk(item: tuple[str, list[tuple[int, bytes]]]) -> dict[str, Any]:
    """Parse and encode one chunk of lines: ``{key: (lengths, tokens, bytes)}`` in input order."""
    shard, lines = item
    records = [parse_record(line, f"{shard}:{number}") for number, line in lines]
    texts = [r["text"] for r in records]
    encodings = _STATE["tokenizer"].encode_batch_fast(texts, add_special_tokens=True)
    eod, field = _STATE["eod"], _STATE["key"]
    grouped: dict[str, tuple[list[int], list[int], int]] = {}
    for record, text, encoding in zip(records, texts, encodings, strict=True):
        key = record.get(field)
        if not isinstance(key, str) or not key:
            raise CorpusError(f"{shard}: document {record.get('id')!r} has no {field!r}")
        lengths, tokens, size = grouped.setdefault(key, ([], [], 0))
        ids = encoding.ids
        tokens.extend(ids)
        tokens.append(eod)
        lengths.append(len(ids) + 1)
        grouped[key] = (lengths, tokens, size + len(text.encode("utf-8")))
    return {
        key: (np.asarray(lengths, np.int64), np.asarray(tokens, _STATE["dtype"]), size)
        for key, (lengths, tokens, size) in grouped.items()
    }


def _chunks(shard: Path, size: int) -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    batch: list[tuple[int, bytes]] = []
    for number, line in shard_lines(shard):
        batch.append((number, line))
        if len(batch) == size:
            yield str(shard), batch
            batch = []
    if batch:
        yield str(shard), batch


# --------------------------------------------------------------------------- per-shard partials


def safe_name(key: str) -> str:
    """A file-name-safe form of a language/source value."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._") or "unnamed"


def _write_shard(shard: Path, out: Path, results: Iterator[dict[str, Any]], dtype: Any) -> dict:
    """Append encoded chunks to one builder per key under ``out`` (atomically); return counts."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    counts: dict[str, dict[str, Any]] = {}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        builders: dict[str, Any] = {}
        for chunk in results:
            for key, (lengths, tokens, size) in chunk.items():
                if key not in builders:
                    name = safe_name(key)
                    if any(c["name"] == name for c in counts.values()):
                        raise CorpusError(f"{shard}: keys collide on file name {name!r}")
                    builders[key] = IndexedDatasetBuilder(str(tmp / f"{name}.bin"), dtype=dtype)
                    counts[key] = {"name": name, "documents": 0, "tokens": 0, "bytes": 0}
                builder, offsets = builders[key], np.concatenate([[0], np.cumsum(lengths)])
                for start, end in pairwise(offsets.tolist()):
                    builder.add_document(tokens[start:end], [int(end - start)])
                counts[key]["documents"] += len(lengths)
                counts[key]["tokens"] += int(offsets[-1])
                counts[key]["bytes"] += size
        if not builders:
            raise CorpusError(f"{shard}: empty shard (no documents)")
        for key, builder in builders.items():
            builder.finalize(str(tmp / f"{counts[key]['name']}.idx"))
        atomic_write_json(tmp / DONE, counts)
    return counts


def _shard_fingerprint(shard: Path, tokenizer_hash: str, config: TokenizeConfig) -> str:
    stat = shard.stat()
    blob = f"{shard.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{tokenizer_hash}|{config.group_by}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the command


def tokenize_corpus(
    config: TokenizeConfig,
    run: RunDir,
    *,
    task: tuple[int, int] | None = None,
    merge: bool = False,
) -> dict[str, Any]:
    """Tokenize ``config.inputs`` into ``RUN/datasets/`` and ``RUN/blend.json``; see module doc.

    Over a job array: ``task=(i, n)`` encodes only the shards whose index is ``i`` mod ``n``
    and stops before the merge; ``merge=True`` encodes nothing and merges, once every shard is
    done (else :class:`ValueError` naming the missing ones).
    """
    shards = find_shards(config.inputs)
    tokenizer = load_tokenizer(config.tokenizer, config.model_vocab_size)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    dtype = token_dtype(vocab)
    eod = eod_id_of(config.tokenizer)
    tokenizer_hash = sha256_file(Path(config.tokenizer) / "tokenizer.json")
    start = time.perf_counter()
    todo: list[tuple[Path, Path]] = []
    partials: list[Path] = []
    for index, shard in enumerate(shards):
        fingerprint = _shard_fingerprint(shard, tokenizer_hash, config)
        part = run / "partial" / f"{index:05d}-{safe_name(shard.name)}-{fingerprint}"
        partials.append(part)
        mine = task is None or index % task[1] == task[0]
        if mine and not (part / DONE).is_file():
            todo.append((shard, part))
    if merge and todo:
        missing = ", ".join(str(shard) for shard, _ in todo[:5])
        raise ValueError(
            f"{len(todo)} shard(s) not tokenized yet ({missing}); run their array tasks first "
            "(`bloomkit slurm resubmit RUN --failed`) or tokenize without --merge"
        )
    log.info("tokenizing %d shard(s), %d already done", len(todo), len(shards) - len(todo))
    init_args = (str(config.tokenizer), eod, config.group_by, np.dtype(dtype).name)
    if todo and config.workers > 1:
        with multiprocessing.get_context("fork").Pool(
            config.workers, _init_worker, init_args
        ) as pool:
            for shard, part in progress(todo, "tokenize shards"):
                _write_shard(
                    shard, part, pool.imap(_encode_chunk, _chunks(shard, config.batch_docs)), dtype
                )
    else:
        _init_worker(*init_args)
        for shard, part in progress(todo, "tokenize shards"):
            _write_shard(shard, part, map(_encode_chunk, _chunks(shard, config.batch_docs)), dtype)
    encode_seconds = time.perf_counter() - start
    if task is not None:
        return {
            "task": task[0],
            "tasks": task[1],
            "shards": [i for i in range(len(shards)) if i % task[1] == task[0]],
            "encoded": len(todo),
            "encode_seconds": round(encode_seconds, 3),
        }
    summary = run.run_step(
        "merge",
        lambda: merge_partials(partials, run, dtype, config.alpha),
        inputs=[p / DONE for p in partials],
        params={"alpha": config.alpha, "dtype": np.dtype(dtype).name},
        outputs=["datasets", "blend.json"],
    )
    documents = sum(row["documents"] for row in summary["datasets"].values())
    return {
        **summary,
        "eod_id": eod,
        "vocab_size": vocab,
        "shards": len(shards),
        "shards_skipped": len(shards) - len(todo),
        "encode_seconds": round(encode_seconds, 3),
        "docs_per_second": round(documents / encode_seconds, 1) if todo else None,
    }


def _merge_key(target: Path, parts: list[Path], dtype: Any) -> None:
    """Concatenate the partial datasets ``parts`` (prefixes) into ``target.{bin,idx}``."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    builder = IndexedDatasetBuilder(f"{target}.bin", dtype=dtype)
    for prefix in parts:
        try:
            builder.add_index(str(prefix))
        except Exception as err:  # megatron-core asserts on a bad header or dtype
            raise ValueError(
                f"{prefix}.idx: corrupt partial dataset ({err!r}); delete {prefix.parent} "
                "and rerun to re-tokenize that shard"
            ) from None
    builder.finalize(f"{target}.idx")


def merge_partials(partials: list[Path], run: RunDir, dtype: Any, alpha: float) -> dict[str, Any]:
    """Concatenate every key's per-shard partials in shard order; write datasets and blend."""
    totals: dict[str, dict[str, Any]] = {}
    sources: dict[str, list[Path]] = {}
    for part in partials:
        for key, counts in json.loads((part / DONE).read_text(encoding="utf-8")).items():
            row = totals.setdefault(key, {"name": counts["name"], "documents": 0, "tokens": 0,
                                          "bytes": 0})  # fmt: skip
            for field in ("documents", "tokens", "bytes"):
                row[field] += counts[field]
            sources.setdefault(key, []).append(part / counts["name"])
    out = run / "datasets"
    # add_index runs gc.collect() per partial; with torch and megatron loaded that is ~0.7 s
    # each (46 languages x N shards). Freezing the heap leaves it only the merge's own objects.
    gc.freeze()
    try:
        with atomic_path(out) as tmp:
            tmp.mkdir()
            for key in sorted(totals):
                _merge_key(tmp / totals[key]["name"], sources[key], dtype)
    finally:
        gc.unfreeze()
    weights = alpha_weights({k: v["tokens"] for k, v in totals.items()}, alpha)
    blend = {str(out / totals[k]["name"]): weights[k] for k in sorted(totals)}
    atomic_write_json(run / "blend.json", blend)
    for key, row in totals.items():
        row["weight"] = weights[key]
        row["tokens_per_byte"] = row["tokens"] / row["bytes"]
    return {"datasets": totals, "blend": str(run / "blend.json"), "dtype": np.dtype(dtype).name}
