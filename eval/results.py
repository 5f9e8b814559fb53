"""The results store: one ``results.json`` per run, validated by :class:`EvalResults`.

A record holds per-task (per-language) scores with stderr, per-document values for paired
tests, the groups' aggregates, the languages that could not be scored, and provenance: model
and tokenizer file hashes, task config hashes, data hashes, versions, seeds, limit, hardware
and the plain ``lm_eval`` command that reproduces the numbers. ``content_sha256`` is the
sha256 of the canonical JSON of everything else, so a hand-edited file fails :func:`verify`.
The leaderboard validates submissions against this schema (``SCHEMA_VERSION``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bloomkit.rundir import atomic_write_json

SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Score(_Record):
    """One metric's value and standard error."""

    value: float | None
    stderr: float | None = None
    stderr_source: Literal["lm-eval", "bootstrap", "none"] = "none"
    """``lm-eval``: as lm-eval reports it; ``bootstrap``: ours, from the per-document values
    (lm-eval gives none for bits_per_byte)."""


class TaskResult(_Record):
    """One task in one language, as lm-eval scored it."""

    task: str
    benchmark: str
    """The task family: ``sib200``, ``sib200_5shot``, ``flores_bpb`` (or the task name)."""
    lang: str | None
    version: str | None
    num_fewshot: int
    n_samples: int
    config_sha256: str | None
    metrics: dict[str, Score]
    doc_ids: list[int] = Field(default_factory=list)
    per_doc: dict[str, list[float]] = Field(default_factory=dict)
    """Per-document values aligned with ``doc_ids``: ``acc``/``acc_norm`` (0 or 1), or
    ``loglikelihood`` (nats) and ``bytes`` for bits per byte."""


class GroupResult(_Record):
    """A group's aggregate over its languages (macro mean)."""

    group: str
    metrics: dict[str, Score]
    tasks: list[str]
    partial: bool = False
    """True when languages were missing: the mean is over the scored ones only (ours, not
    lm-eval's)."""


class Missing(_Record):
    task: str
    lang: str | None
    reason: str


class ModelInfo(_Record):
    path: str
    model_files: dict[str, str]
    """File name -> sha256 of the weights and configs."""
    tokenizer_files: dict[str, str]


class Provenance(_Record):
    bloomkit_version: str
    lm_eval_version: str | None
    packages: dict[str, str | None]
    backend: Literal["hf", "endpoint", "megatron"] = "hf"
    """What scored the model: a HF folder, an OpenAI-compatible endpoint (``model.path`` is
    its URL) or a bloomkit checkpoint on megatron-core (``model.model_files`` hash it)."""
    model: ModelInfo
    task_configs: dict[str, str]
    """Task name -> sha256 of its YAML files (the task, its templates, the data loader)."""
    data_dir: str | None
    data_files: dict[str, str]
    """``<lang>/<split>.tsv`` -> sha256 of each data file read."""
    split: str
    limit: int | None
    num_fewshot: int | None
    apply_chat_template: bool = False
    """Prompts went through the model's chat template (lm-eval's ``--apply_chat_template``)."""
    seeds: dict[str, int]
    """random, numpy, torch and fewshot seeds passed to lm-eval."""
    batch_size: int
    device: str
    hardware: dict[str, Any]
    started: str
    seconds: float
    reproduce: str
    """The plain ``lm_eval`` command that gives the same numbers."""


class EvalResults(_Record):
    schema_version: int = SCHEMA_VERSION
    suite: str | None
    tasks: dict[str, TaskResult]
    groups: dict[str, GroupResult] = Field(default_factory=dict)
    missing: list[Missing] = Field(default_factory=list)
    provenance: Provenance
    content_sha256: str = ""


def content_hash(record: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a record without its ``content_sha256`` field."""
    body = {k: v for k, v in record.items() if k != "content_sha256"}
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def seal(results: EvalResults) -> EvalResults:
    """The record with its ``content_sha256`` filled in."""
    data = results.model_dump(mode="json")
    return results.model_copy(update={"content_sha256": content_hash(data)})


def save(results: EvalResults, path: Path | str) -> Path:
    return atomic_write_json(path, seal(results).model_dump(mode="json"))


class ResultsError(ValueError):
    """A results file that is unreadable, off-schema or whose content hash does not match."""


def load(path: Path | str, *, check: bool = True) -> EvalResults:
    """Read and validate a results file; with ``check``, refuse one whose hash mismatches."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file not found") from None
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None
    try:
        results = EvalResults.model_validate(data)
    except ValueError as err:
        raise ResultsError(f"{path}: not a bloomkit results record:\n{err}") from None
    if check and (problem := verify_data(data)):
        raise ResultsError(f"{path}: {problem}")
    return results


def verify_data(data: dict[str, Any]) -> str | None:
    """None when the stored hash matches the content, else what is wrong."""
    stored = data.get("content_sha256")
    if not stored:
        return "no content_sha256: the record was never sealed"
    actual = content_hash(data)
    if stored != actual:
        return (
            f"content hash mismatch (stored {stored[:12]}…, content {actual[:12]}…): "
            "the file was edited after the run; re-run the reproduce command"
        )
    return None
