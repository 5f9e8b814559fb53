"""Data and prompt functions of the bloom-classic tasks (xnli, xcopa, … in BLOOM's languages).

lm-eval calls :func:`load_mirror` (the tasks' ``custom_dataset``) with the task's
``dataset_kwargs`` (``hf_path``, ``hf_name``, …) and the run's ``--metadata``. It reads a local
mirror written by ``bloomkit eval mirror``::

    <mirror_dir>/<hf_path>/<hf_name>/<split>.jsonl   one row per line, the hub's columns
    e.g. mirror/facebook/xnli/en/validation.jsonl, mirror/facebook/belebele/eng_Latn/test.jsonl

Where the mirror is, in order: ``--metadata '{"mirror_dir": "DIR"}'``, else the
``BLOOMKIT_MIRROR_DIR`` environment variable. With neither, the task loads the hub dataset with
``datasets.load_dataset(hf_path, hf_name)``: exactly what lm-eval's own task of the same name
does. The prompt functions below are lm-eval's own objects, re-exported under the names the
generated YAML uses, so prompts cannot drift from lm-eval's.

This file imports nothing from bloomkit, so plain ``lm_eval --include_path`` works anywhere.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import datasets
from lm_eval.tasks.xcopa import utils as _xcopa
from lm_eval.tasks.xwinograd import utils as _xwinograd

_pawsx = importlib.import_module("lm_eval.tasks.paws-x.utils")

MIRROR_DIR_ENV = "BLOOMKIT_MIRROR_DIR"

xcopa_doc_to_choice = _xcopa.doc_to_choice
xcopa_doc_to_text_id = _xcopa.doc_to_text_id
xcopa_doc_to_text_sw = _xcopa.doc_to_text_sw
xcopa_doc_to_text_ta = _xcopa.doc_to_text_ta
xcopa_doc_to_text_vi = _xcopa.doc_to_text_vi
xcopa_doc_to_text_zh = _xcopa.doc_to_text_zh
xwinograd_doc_to_text = _xwinograd.doc_to_text
xwinograd_doc_to_target = _xwinograd.doc_to_target
xwinograd_doc_to_choice = _xwinograd.doc_to_choice
pawsx_process_docs_paraphrases = _pawsx.process_docs_paraphrases


def mirror_folder(mirror_dir: str | os.PathLike[str], hf_path: str, hf_name: str) -> Path:
    """Where one hub dataset config lives in a mirror."""
    return Path(mirror_dir).expanduser() / hf_path / hf_name


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of one mirrored split; an error names the file and line of a bad row."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not a JSON row: {err}") from err
    return rows


def read_mirror(
    mirror_dir: str | os.PathLike[str], hf_path: str, hf_name: str
) -> datasets.DatasetDict:
    """Every ``<split>.jsonl`` of a mirrored config, as a DatasetDict keyed by split."""
    folder = mirror_folder(mirror_dir, hf_path, hf_name)
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(
            f"{folder}: no mirrored splits (*.jsonl) of {hf_path} config {hf_name}; "
            f"write them with `bloomkit eval mirror --out {mirror_dir}` (online)"
        )
    return datasets.DatasetDict(
        {path.stem: datasets.Dataset.from_list(read_jsonl(path)) for path in files}
    )


def load_mirror(
    hf_path: str, hf_name: str, mirror_dir: str | None = None, **_metadata: Any
) -> datasets.DatasetDict:
    """The task's dataset from the mirror when one is configured, else from the hub."""
    chosen = mirror_dir or os.environ.get(MIRROR_DIR_ENV)
    if not chosen:
        return datasets.load_dataset(hf_path, hf_name)
    return read_mirror(chosen, hf_path, hf_name)
