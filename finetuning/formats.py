"""Instruction data formats and readers: every source becomes a list of :class:`Example`.

Formats (field names as published):

==============  ==========================================================================
``alpaca``      ``instruction``, ``input`` (may be empty), ``output`` (Stanford Alpaca)
``dolly``       ``instruction``, ``context`` (may be empty), ``response``, ``category``
                (databricks-dolly-15k)
``xp3``         ``inputs``, ``targets`` (BigScience xP3, the BLOOMZ mixture)
``chat``        ``messages``: ``[{role: system|user|assistant, content}]``
``self_instruct``  ``instruction``, ``instances: [{input, output}]`` (self-instruct / Alpaca
                seed tasks): one example per instance
==============  ==========================================================================

``format: auto`` picks the format from a source's first row's keys, and holds every later row
to it (so a row missing ``output`` is reported as that, not as an unknown format). Readers:
``.jsonl``, ``.json`` (a list of rows, or ``{"data": [...]}``), and anything ``datasets`` loads
(``hf:NAME`` from the hub, or a local ``save_to_disk`` folder / data file as ``hf:PATH``); all
yield ``(row, record)`` with 1-based row numbers into the same normalisation, so a bad row is
reported as ``file:row:field`` (:meth:`BadRow.at`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FormatName = Literal["auto", "alpaca", "dolly", "xp3", "chat", "self_instruct"]

_KEYS = {  # format: fields that must be present (values may still be empty where allowed)
    "alpaca": ("instruction", "output"),
    "dolly": ("instruction", "response"),
    "xp3": ("inputs", "targets"),
    "chat": ("messages",),
    "self_instruct": ("instruction", "instances"),
}
_ROLES = ("system", "user", "assistant")


@dataclass(slots=True)
class Example:
    """One normalised instruction example.

    ``messages`` is the conversation as ``(role, text)`` turns; single-turn formats become
    ``[("user", instruction), ("assistant", output)]`` with ``context`` holding Alpaca's
    ``input`` / Dolly's ``context``. ``where`` is ``file:row`` for reports.
    """

    messages: list[tuple[str, str]]
    context: str = ""
    template: str | None = None
    where: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class BadRow(ValueError):
    """A row that cannot become an example: ``reason`` is a short counter key, ``field`` the
    offending field when there is one (``output``, ``messages[2].role``). Printed after the row's
    ``file:row`` as ``field: reason: detail``."""

    def __init__(self, reason: str, detail: str, field: str | None = None):
        self.reason, self.detail, self.field = reason, detail, field
        super().__init__(f"{field}: {reason}: {detail}" if field else f"{reason}: {detail}")

    def at(self, where: str) -> str:
        """``file:row:field: reason: detail`` (``file:row: reason: detail`` without a field)."""
        return f"{where}:{self}" if self.field else f"{where}: {self}"


def detect_format(record: dict[str, Any]) -> str:
    """The format whose required fields ``record`` has (the most specific match)."""
    for name in ("chat", "self_instruct", "xp3", "dolly", "alpaca"):
        if all(key in record for key in _KEYS[name]):
            return name
    needs = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in _KEYS.items())
    raise BadRow("unknown_format", f"fields {sorted(record)} match no format ({needs})")


_RESPONSE_KEYS = ("output", "response", "targets")


def _text(record: dict[str, Any], key: str, *, required: bool, prefix: str = "") -> str:
    """``record[key]`` as text; ``prefix`` names the record in errors (``instances[0].``)."""
    value = record.get(key)
    name = prefix + key
    if value is None:
        if required:
            raise BadRow("missing_field", "is missing or null", name)
        return ""
    if not isinstance(value, str):
        raise BadRow("bad_field", f"is {type(value).__name__}, not text", name)
    if required and not value.strip():
        reason = "empty_response" if key in _RESPONSE_KEYS else "empty_field"
        raise BadRow(reason, "is empty", name)
    return value


def _single(instruction: str, output: str, context: str, record: dict[str, Any], where: str):
    return Example(
        messages=[("user", instruction), ("assistant", output)],
        context=context,
        template=record.get("template"),
        where=where,
        meta={k: record[k] for k in ("id", "category", "language") if k in record},
    )


def normalise(record: Any, fmt: str, where: str) -> list[Example]:
    """``record`` in format ``fmt`` (or ``auto``) as examples; raises :class:`BadRow`."""
    if not isinstance(record, dict):
        raise BadRow("not_a_record", f"row is {type(record).__name__}, not an object")
    fmt = detect_format(record) if fmt == "auto" else fmt
    for key in _KEYS[fmt]:
        if key not in record:
            raise BadRow("missing_field", f"is missing ({fmt} format)", key)
    if fmt == "alpaca":
        return [
            _single(
                _text(record, "instruction", required=True),
                _text(record, "output", required=True),
                _text(record, "input", required=False),
                record,
                where,
            )
        ]
    if fmt == "dolly":
        return [
            _single(
                _text(record, "instruction", required=True),
                _text(record, "response", required=True),
                _text(record, "context", required=False),
                record,
                where,
            )
        ]
    if fmt == "xp3":
        inputs = _text(record, "inputs", required=True)
        return [_single(inputs, _text(record, "targets", required=True), "", record, where)]
    if fmt == "self_instruct":
        instruction = _text(record, "instruction", required=True)
        instances = record["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRow("missing_field", "is empty or not a list", "instances")
        examples = []
        for i, inst in enumerate(instances):
            prefix = f"instances[{i}]."
            if not isinstance(inst, dict):
                raise BadRow("bad_field", "is not an object", f"instances[{i}]")
            output = _text(inst, "output", required=True, prefix=prefix)
            context = _text(inst, "input", required=False, prefix=prefix)
            examples.append(_single(instruction, output, context, record, f"{where}[{i}]"))
        return examples
    return [_chat(record, where)]


def _chat(record: dict[str, Any], where: str) -> Example:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise BadRow("missing_field", "is empty or not a list", "messages")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise BadRow("missing_field", "needs 'role' and 'content'", f"messages[{i}]")
        role, content = message["role"], message["content"]
        if role not in _ROLES:
            raise BadRow("bad_role", f"{role!r} (expected one of {_ROLES})", f"messages[{i}].role")
        if not isinstance(content, str):
            raise BadRow("bad_field", "is not text", f"messages[{i}].content")
        if role == "assistant" and not content.strip():
            raise BadRow("empty_response", "is empty", f"messages[{i}].content")
        turns.append((role, content))
    if turns[-1][0] != "assistant":
        raise BadRow("empty_response", "the conversation does not end with an assistant turn",
                     f"messages[{len(turns) - 1}].role")  # fmt: skip
    return Example(messages=turns, template=record.get("template"), where=where)


# --------------------------------------------------------------------------- readers


def read_rows(path: str) -> Iterator[tuple[int, Any]]:
    """``(row number, record)`` of a ``.jsonl``/``.json`` file or a ``hf:`` datasets source.

    Lines that are not JSON are yielded as :class:`BadRow` instances (reported, not raised).
    """
    if path.startswith("hf:"):
        yield from _read_datasets(path[3:])
        return
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"instruction data not found: {file}")
    if file.suffix == ".jsonl":
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as err:
                    yield number, BadRow("bad_json", err.msg)
    elif file.suffix == ".json":
        data = json.loads(file.read_text(encoding="utf-8"))
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"{file}: expected a JSON list of rows or {{'data': [...]}}")
        yield from enumerate(rows, 1)
    else:
        raise ValueError(f"{file}: unknown suffix {file.suffix!r}; use .jsonl, .json or hf:PATH")


def _read_datasets(name: str) -> Iterator[tuple[int, Any]]:
    """Rows of a ``datasets`` source: a ``save_to_disk`` folder, a data file, or a hub name
    (``NAME`` or ``NAME:SPLIT``; split ``train`` unless given)."""
    import datasets

    name, _, split = name.partition(":")
    local = Path(name)
    if (local / "dataset_info.json").is_file() or (local / "state.json").is_file():
        data = datasets.load_from_disk(str(local))
        if isinstance(data, datasets.DatasetDict):
            data = data[split or "train"]
    elif local.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
        builder = kind.get(local.suffix)
        if builder is None:
            raise ValueError(f"{local}: datasets cannot read {local.suffix!r} files here")
        data = datasets.load_dataset(builder, data_files=str(local), split=split or "train")
    else:
        data = datasets.load_dataset(name, split=split or "train")
    yield from enumerate(data, 1)
