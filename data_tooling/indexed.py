"""Corpus shards → megatron-core indexed datasets (``.bin``/``.idx``), one per language.

``tokenize_corpus`` encodes every document in ``workers`` processes (one thread each;
``workers: 1`` encodes here) with tiktoken's encoder where it gives exactly the tokenizer's ids
(checked, see ``tokenizer/fast_encoder.py``), else the tokenizer's own Rust batch encoder,
appends the end-of-document id and writes, per shard, one partial
dataset per language (or source) with megatron-core's ``IndexedDatasetBuilder``; a shard's
partials appear atomically together with ``done.json``, so a rerun skips finished shards.
The partials are then merged (``add_index``) into ``RUN/datasets/<key>.{bin,idx}`` and the
blend ``RUN/blend.json`` (``{prefix: weight}``, what ``pretrain`` takes as ``data.blend``)
is written with weights ``∝ tokens^alpha``. Tokens are int32 when the vocabulary exceeds
65,535, else uint16. ``RUN/vocab.json``, beside the blend, records the tokenizer's vocabulary
size, its padded size, the token dtype and the end-of-document id, so that training can
refuse data written with a tokenizer that does not match its model.
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
from bloomkit.data_tooling.megatron_format import check_index, megatron_indexed
from bloomkit.data_tooling.tokenizer.corpus import (
    CorpusError,
    alpha_weights,
    find_shards,
    parse_record,
    shard_lines,
)
from bloomkit.data_tooling.tokenizer.fast_encoder import batch_encoder
from bloomkit.data_tooling.tokenizer.train import (
    eod_id_of,
    load_tokenizer,
    padded_vocab_size,
)
from bloomkit.rundir import RunDir, atomic_path, atomic_write_json, sha256_file

DONE = "done.json"
ALL = "all"
"""The one dataset's name when ``group_by`` is null."""
VOCAB_FILE = "vocab.json"


class TokenizeConfig(Section):
    """``bloomkit data tokenize CONFIG``."""

    inputs: list[Path]
    """Corpus shards (``.jsonl[.gz|.zst]``) or folders of them."""
    tokenizer: Path
    """A tokenizer folder (``bloomkit data tokenizer train`` writes ``RUN/tokenizer``)."""
    text_field: str = "text"
    """The record field holding the document (Megatron-LM's ``--json-keys``)."""
    group_by: Literal["language", "source"] | None = "language"
    """One dataset per value of this record field; ``null``: one dataset, ``all``, of every
    document (records then need no such field, as for Megatron-LM's preprocess_data.py)."""
    workers: Annotated[int, Field(ge=1)] = 2
    """Encoding processes (1 = in this process)."""
    batch_docs: Annotated[int, Field(ge=1)] = 512
    """Documents per encode_batch call / work item."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    """Blend weights ``∝ tokens^alpha``: 1 = token shares, lower flattens towards uniform."""
    tensor_parallel: Annotated[int, Field(ge=1)] = 1
    """The model's tensor-parallel size: its vocabulary is padded to a multiple of 128 × this."""
    model_vocab_size: Annotated[int, Field(gt=0)] | None = None
    """The model's padded vocabulary size: refuse a tokenizer that does not pad to exactly it."""
    encoder: Literal["auto", "tokenizers"] = "auto"
    """``auto``: tiktoken's faster encoder where it is checked to give the same ids, else
    ``tokenizers``' own (the summary says which and why); ``tokenizers``: always the latter."""


def token_dtype(vocab_size: int) -> type[np.number]:
    return np.int32 if vocab_size > 65_535 else np.uint16


def check_vocabulary(folder: Path, vocab_size: int, model_vocab_size: int, tp: int) -> None:
    """Refuse a tokenizer whose ``vocab_size`` does not pad to ``model_vocab_size`` at ``tp``.

    A model built for this tokenizer has ``padded_vocab_size(vocab_size, tp)`` embedding rows:
    fewer cannot hold every id, more mean the model was built for another tokenizer.
    """
    padded = padded_vocab_size(vocab_size, tp)
    if padded != model_vocab_size:
        raise ValueError(
            f"{folder / 'tokenizer.json'}: {vocab_size} tokens pad to {padded} at "
            f"tensor_parallel={tp}, but model_vocab_size is {model_vocab_size}: tokenize with "
            "the tokenizer the model is built for (or set its tensor_parallel)"
        )


# --------------------------------------------------------------------------- encoding workers

_STATE: dict[str, Any] = {}


def _init_worker() -> None:
    """Forked workers inherit ``_STATE`` (the encoder included) and encode on one thread each:
    the workers already use the cores, tokenizers' thread pool in each would oversubscribe."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _encode_chunk(item: tuple[str, list[tuple[int, bytes]]]) -> dict[str, Any]:
    """Parse and encode one chunk of lines: ``{key: (lengths, tokens, bytes)}`` in input order."""
    shard, lines = item
    text, group = _STATE["text_field"], _STATE["group_by"]
    fields = (text, group) if group else (text,)
    records = [parse_record(line, f"{shard}:{number}", fields) for number, line in lines]
    texts = [r[text] for r in records]
    sizes = [_utf8_size(t, f"{shard}:{n}", text) for t, (n, _) in zip(texts, lines, strict=True)]
    eod = _STATE["eod"]
    grouped: dict[str, tuple[list[int], list[int], int]] = {}
    for record, size, ids in zip(records, sizes, _STATE["encode"](texts), strict=True):
        key = record[group] if group else ALL
        lengths, tokens, total = grouped.setdefault(key, ([], [], 0))
        tokens.extend(ids)
        tokens.append(eod)
        lengths.append(len(ids) + 1)
        grouped[key] = (lengths, tokens, total + size)
    return {
        key: (np.asarray(lengths, np.int64), np.asarray(tokens, _STATE["dtype"]), size)
        for key, (lengths, tokens, size) in grouped.items()
    }


def _utf8_size(text: str, where: str, field: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as err:  # a lone surrogate, which JSON's \\uD800 escapes allow
        bad = err.object[err.start]
        raise CorpusError(f"{where}: {field!r} holds a lone surrogate U+{ord(bad):04X}") from None


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
    """Append encoded chunks to one builder per key under ``out`` (atomically); return counts.

    megatron-core's builder takes one document per ``add_document`` call (a call with several
    lengths writes one document of several sequences), so each document is one call on a view.
    """
    builder_class = megatron_indexed().IndexedDatasetBuilder

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
                    builders[key] = builder_class(str(tmp / f"{name}.bin"), dtype=dtype)
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
    if config.text_field != "text":  # so that runs from before text_field existed resume
        blob += f"|{config.text_field}"
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
    tokenizer = load_tokenizer(config.tokenizer)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if config.model_vocab_size is not None:
        check_vocabulary(
            Path(config.tokenizer), vocab, config.model_vocab_size, config.tensor_parallel
        )
    dtype = token_dtype(vocab)
    eod = eod_id_of(config.tokenizer, tokenizer)
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
    encode, encoder = batch_encoder(tokenizer, config.encoder) if todo else (None, "none needed")
    log.info("encoder: %s", encoder)
    _STATE.update(encode=encode, eod=eod, text_field=config.text_field, group_by=config.group_by,
                  dtype=np.dtype(dtype).name)  # fmt: skip
    if todo and config.workers > 1:
        with multiprocessing.get_context("fork").Pool(config.workers, _init_worker) as pool:
            for shard, part in progress(todo, "tokenize shards"):
                _write_shard(
                    shard, part, pool.imap(_encode_chunk, _chunks(shard, config.batch_docs)), dtype
                )
    else:
        for shard, part in progress(todo, "tokenize shards"):
            _write_shard(shard, part, map(_encode_chunk, _chunks(shard, config.batch_docs)), dtype)
    encode_seconds = time.perf_counter() - start
    if task is not None:
        return {
            "task": task[0],
            "tasks": task[1],
            "shards": [i for i in range(len(shards)) if i % task[1] == task[0]],
            "encoded": len(todo),
            "encoder": encoder,
            "encode_seconds": round(encode_seconds, 3),
        }
    vocab_info = {
        "tokenizer": str(Path(config.tokenizer).resolve()),
        "tokenizer_sha256": tokenizer_hash,
        "vocab_size": vocab,
        "padded_vocab_size": padded_vocab_size(vocab, config.tensor_parallel),
        "tensor_parallel": config.tensor_parallel,
        "dtype": np.dtype(dtype).name,
        "eod_id": eod,
    }
    summary = run.run_step(
        "merge",
        lambda: merge_partials(partials, run, dtype, config.alpha, vocab_info),
        inputs=[p / DONE for p in partials],
        params={"alpha": config.alpha, **vocab_info},
        outputs=["datasets", VOCAB_FILE, "blend.json"],
        check=lambda merged: _check_merged(run, merged, dtype),
    )
    documents = sum(row["documents"] for row in summary["datasets"].values())
    return {
        **summary,
        "eod_id": eod,
        "vocab_size": vocab,
        "shards": len(shards),
        "shards_skipped": len(shards) - len(todo),
        "encoder": encoder,
        "encode_seconds": round(encode_seconds, 3),
        "docs_per_second": round(documents / encode_seconds, 1) if todo else None,
    }


def _check_merged(run: RunDir, merged: dict[str, Any], dtype: Any) -> None:
    """Refuse a finished merge whose datasets no longer pass :func:`check_index` (it reruns)."""
    for row in merged["datasets"].values():
        check_index(run / "datasets" / row["name"], dtype)


def _merge_key(target: Path, parts: list[Path], dtype: Any) -> None:
    """Concatenate the partial datasets ``parts`` (prefixes) into ``target.{bin,idx}``."""
    builder = megatron_indexed().IndexedDatasetBuilder(f"{target}.bin", dtype=dtype)
    for prefix in parts:
        try:
            check_index(prefix, dtype)
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(
                f"corrupt partial dataset: {err}; delete {prefix.parent} and rerun to "
                "re-tokenize that shard"
            ) from None
        builder.add_index(str(prefix))
    builder.finalize(f"{target}.idx")


def merge_partials(
    partials: list[Path], run: RunDir, dtype: Any, alpha: float, vocab_info: dict[str, Any]
) -> dict[str, Any]:
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
    atomic_write_json(run / VOCAB_FILE, vocab_info)
    atomic_write_json(run / "blend.json", blend)
    for key, row in totals.items():
        row["weight"] = weights[key]
        row["tokens_per_byte"] = row["tokens"] / row["bytes"]
    return {"datasets": totals, "blend": str(run / "blend.json"), "dtype": np.dtype(dtype).name}
