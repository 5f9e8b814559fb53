"""SFT data: read, template, tokenize, mask the prompt, pack, and write the trainer's arrays.

Masking: an example's tokens are its template segments, tokenized one by one, then the
end-of-sequence id. Inputs are ``ids[:-1]``, labels ``ids[1:]``, and a position counts in the
loss (``loss_mask = 1``) exactly when its label is a trained token (an assistant turn, its
``response_suffix``, or the final end-of-sequence): the model learns to write responses, never
to predict prompts.

Packing: examples are placed first-fit into rows of ``seq_length`` positions; each position
carries ``segment_ids`` (the example's index in its row; padding gets the next id and no loss),
from which the trainer builds a block-diagonal causal mask (:func:`bloomkit.pretraining.step.
document_mask`), so no example attends to another. Positions need no reset: ALiBi biases by
``slope × key position``, and shifting every key of an example by the same offset adds one
constant per query row, which softmax removes (see ``pretraining/model/alibi.py``).

Output, read by :class:`bloomkit.pretraining.data.PackedDataset`::

    OUT/train/{tokens,labels,loss_mask,segment_ids}.npy   [rows, seq_length]
    OUT/valid/…                                           the held-out examples, packed alike
    OUT/report.json                                       counts: read, kept, dropped_<reason>,
                                                          truncated, per source; packing fill
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bloomkit.console import log
from bloomkit.finetuning.formats import BadRow, Example, detect_format, normalise, read_rows
from bloomkit.finetuning.templates import PromptTemplate, resolve_template
from bloomkit.rundir import atomic_path, atomic_write_json

ARRAYS = ("tokens", "labels", "loss_mask", "segment_ids")


class Tokenizer(Protocol):
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes as token ids (vocab 256, end-of-sequence 0), as the pretraining demo."""

    vocab_size = 256
    eos_id = 0

    def encode(self, text: str) -> list[int]:
        return [b for b in text.encode("utf-8") if b != 0]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i for i in ids if 0 < i < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A Hugging Face tokenizer folder; no special tokens added, ``eos_token`` required."""

    def __init__(self, path: str | Path):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        except OSError as err:  # transformers' message does not name a hub name it lacks
            raise OSError(f"tokenizer {path}: {err}") from None
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"tokenizer {path} has no eos_token; SFT needs one to end responses")
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.vocab_size = len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


def load_tokenizer(spec: str | Path) -> Tokenizer:
    """``"bytes"`` or the path of a Hugging Face tokenizer (or model) folder."""
    return ByteTokenizer() if str(spec) == "bytes" else HFTokenizer(spec)


def encode_example(
    segments: list[tuple[str, bool]], tokenizer: Tokenizer
) -> tuple[list[int], list[int]]:
    """``(ids, trained)``: the segments' tokens then end-of-sequence (trained)."""
    ids: list[int] = []
    trained: list[int] = []
    for text, is_trained in segments:
        piece = tokenizer.encode(text)
        ids += piece
        trained += [int(is_trained)] * len(piece)
    return [*ids, tokenizer.eos_id], [*trained, 1]


def mask_example(
    ids: list[int], trained: list[int], seq_length: int, overlong: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(inputs, labels, loss_mask, truncated)`` of one example (see the module doc).

    Raises :class:`BadRow` ``prompt_too_long`` when no trained label fits in ``seq_length``,
    and ``too_long`` when the example does not fit and ``overlong`` is ``drop``.
    """
    inputs, labels, mask = ids[:-1], ids[1:], trained[1:]
    first = next((i for i, m in enumerate(mask) if m), len(mask))
    if first >= seq_length:
        raise BadRow("prompt_too_long", f"prompt of {first + 1} tokens, seq_length {seq_length}")
    truncated = len(inputs) > seq_length
    if truncated:
        if overlong == "drop":
            raise BadRow("too_long", f"{len(inputs)} tokens > seq_length {seq_length}")
        inputs, labels, mask = inputs[:seq_length], labels[:seq_length], mask[:seq_length]
    as_array = np.asarray
    return as_array(inputs), as_array(labels), as_array(mask), truncated


def pack(
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    seq_length: int,
    *,
    packing: bool = True,
    window: int = 64,
) -> dict[str, np.ndarray]:
    """First-fit packing of masked examples into ``[rows, seq_length]`` arrays.

    Only the last ``window`` rows stay open (linear time). Without ``packing`` every example
    gets its own row. Padding: token 0, label 0, no loss, its own segment id.
    """
    rows: list[list[int]] = []  # indices of the examples in each row
    free: list[int] = []
    for index, (inputs, _, _) in enumerate(examples):
        n = len(inputs)
        start = max(0, len(rows) - window) if packing else len(rows)
        slot = next((r for r in range(start, len(rows)) if free[r] >= n), None)
        if slot is None:
            rows.append([])
            free.append(seq_length)
            slot = len(rows) - 1
        rows[slot].append(index)
        free[slot] -= n
    out = {
        "tokens": np.zeros((len(rows), seq_length), np.int32),
        "labels": np.zeros((len(rows), seq_length), np.int32),
        "loss_mask": np.zeros((len(rows), seq_length), np.uint8),
        "segment_ids": np.zeros((len(rows), seq_length), np.int32),
    }
    for r, members in enumerate(rows):
        at = 0
        for segment, index in enumerate(members):
            inputs, labels, mask = examples[index]
            end = at + len(inputs)
            out["tokens"][r, at:end] = inputs
            out["labels"][r, at:end] = labels
            out["loss_mask"][r, at:end] = mask
            out["segment_ids"][r, at:end] = segment
            at = end
        out["segment_ids"][r, at:] = len(members)
    return out


def _write_split(arrays: dict[str, np.ndarray], folder: Path) -> None:
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", arrays[name])


def read_examples(
    sources: Sequence[Any], templates: dict[str, PromptTemplate], counts: Counter, problems: list
) -> list[tuple[Example, PromptTemplate, str]]:
    """``(example, template, source name)`` of every good row of every source; bad rows are
    counted (``dropped_<reason>``) and listed in ``problems`` as ``file:row: reason: detail``."""
    out = []
    for source in sources:
        default = resolve_template(source.template, templates)
        fmt = source.format
        for number, record in read_rows(source.path):
            where = f"{source.path}:{number}"
            counts["rows"] += 1
            try:
                if isinstance(record, BadRow):
                    raise record
                if fmt == "auto" and isinstance(record, dict):
                    fmt = detect_format(record)  # the first row fixes the source's format
                examples = normalise(record, fmt, where)
                for example in examples:
                    template = (
                        resolve_template(example.template, templates)
                        if example.template
                        else default
                    )
                    out.append((example, template, source.name or source.path))
            except BadRow as err:
                counts[f"dropped_{err.reason}"] += 1
                problems.append(err.at(where))
    return out


def prepare_sft_data(
    config: Any, tokenizer: Tokenizer, out: Path, *, seq_length: int, vocab_size: int | None = None
) -> dict[str, Any]:
    """Read ``config.sources``, mask, split, pack and write (see the module doc); the report.

    ``config`` is an :class:`~.sft.SFTDataConfig`; ``vocab_size`` the model's vocabulary. With
    ``on_bad_row: refuse`` any bad row raises ``ValueError`` listing them all (nothing written);
    with ``skip`` they are logged, counted and skipped.
    """
    counts: Counter = Counter()
    problems: list[str] = []
    items = read_examples(config.sources, config.templates, counts, problems)
    masked, sources, languages = [], [], []
    for example, template, name in items:
        counts["examples"] += 1
        try:
            ids, trained = encode_example(template.segments(example), tokenizer)
            if vocab_size is not None and max(ids) >= vocab_size:
                raise BadRow("token_out_of_vocab", f"token id {max(ids)} >= model vocab")
            inputs, labels, mask, truncated = mask_example(
                ids, trained, seq_length, config.overlong
            )
        except BadRow as err:
            counts[f"dropped_{err.reason}"] += 1
            problems.append(err.at(example.where))
            continue
        counts["truncated"] += int(truncated)
        masked.append((inputs, labels, mask))
        sources.append(name)
        languages.append(template.language)
    dropped = {k: v for k, v in counts.items() if k.startswith("dropped_")}
    if problems and config.on_bad_row == "refuse":
        raise ValueError(
            f"{len(problems)} bad instruction row(s) (data.on_bad_row: refuse; set it to skip "
            "to drop them):\n  " + "\n  ".join(problems[:50])
        )
    for problem in problems:  # counted in the summary; each one named in the log and report
        log.info("skipped %s", problem)
    if len(masked) < 2:
        raise ValueError(f"only {len(masked)} usable example(s); SFT needs at least 2")
    order = list(range(len(masked)))
    random.Random(config.seed).shuffle(order)
    n_valid = max(1, round(len(order) * config.valid_fraction)) if config.valid_fraction else 0
    splits = {"valid": order[:n_valid], "train": order[n_valid:]}
    report: dict[str, Any] = {
        "rows": counts["rows"], "examples": counts["examples"], "kept": len(masked),
        "truncated": counts["truncated"], **dropped,
        "per_source": dict(Counter(sources)), "per_language": dict(Counter(languages)),
        "seq_length": seq_length, "packing": config.packing, "problems": problems,
    }  # fmt: skip
    for split, indices in splits.items():
        if not indices:
            continue
        arrays = pack([masked[i] for i in indices], seq_length, packing=config.packing)
        _write_split(arrays, out / split)
        real = sum(len(masked[i][0]) for i in indices)
        report[split] = {
            "examples": len(indices),
            "rows": int(arrays["tokens"].shape[0]),
            "loss_tokens": int(arrays["loss_mask"].sum()),
            "fill": real / arrays["tokens"].size,
        }
    atomic_write_json(out / "report.json", report)
    log.info(
        "SFT data: %d rows → %d examples kept, %d truncated, dropped %s; train %d rows "
        "(fill %.0f%%)",
        report["rows"], report["kept"], report["truncated"], dropped or "none",
        report["train"]["rows"], 100 * report["train"]["fill"],
    )  # fmt: skip
    return report


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A data report's counts as summary-table rows: examples kept, truncated and dropped
    (in all and per reason)."""
    dropped = {k: v for k, v in report.items() if k.startswith("dropped_")}
    rows = [
        {"metric": "examples kept", "value": report["kept"]},
        {"metric": "examples truncated", "value": report["truncated"]},
        {"metric": "examples dropped", "value": sum(dropped.values())},
    ]
    rows += [
        {"metric": f"examples dropped: {k.removeprefix('dropped_')}", "value": v}
        for k, v in dropped.items()
    ]
    return rows
