"""Local data for the bloom46 tasks: SIB-200 / FLORES-200 sentences read from a folder.

lm-eval calls :func:`load_sib200` (the tasks' ``custom_dataset``) with the task's
``dataset_kwargs`` (``lang``) and the run's ``--metadata``. The folder has the layout of
SIB-200::

    <data_dir>/<lang>/train.tsv   index_id <TAB> category <TAB> text   (no quoting)
    <data_dir>/<lang>/dev.tsv     (and test.tsv where you have it)

Where the data is, in order: ``--metadata '{"data_dir": "DIR"}'`` (what ``bloomkit eval run``
passes), else the ``BLOOMKIT_SIB200_DIR`` environment variable. Which split is scored:
``--metadata '{"split": "dev"}'`` (default ``dev``); it is exposed to lm-eval as the ``eval``
split, and few-shot examples always come from ``train``.

This file imports nothing from bloomkit, so plain ``lm_eval --include_path`` works anywhere.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import datasets

DATA_DIR_ENV = "BLOOMKIT_SIB200_DIR"
COLUMNS = ("index_id", "category", "text")
CATEGORIES = (
    "science/technology", "travel", "politics", "sports", "health", "entertainment", "geography",
)  # fmt: skip


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder from the argument, else ``$BLOOMKIT_SIB200_DIR``; error naming both."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    if not chosen:
        raise ValueError(
            "bloom46 tasks need a local SIB-200 folder: pass --metadata "
            f'\'{{"data_dir": "DIR"}}\' to lm_eval or set {DATA_DIR_ENV}=DIR'
        )
    return Path(chosen).expanduser()


def read_tsv(path: Path) -> dict[str, list[str]]:
    """Columns of one SIB-200 TSV file (tab-separated, quoting off: texts contain quotes)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (expected the SIB-200 layout <lang>/<split>.tsv)")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or tuple(header[:3]) != COLUMNS:
            raise ValueError(f"{path}:1: expected header {'/'.join(COLUMNS)}, got {header}")
        columns: dict[str, list[str]] = {name: [] for name in COLUMNS}
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
            for name, value in zip(COLUMNS, row, strict=False):
                columns[name].append(value)
    unknown = sorted(set(columns["category"]) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"{path}: unknown categories {unknown}; known: {list(CATEGORIES)}")
    return columns


def load_sib200(
    lang: str, data_dir: str | None = None, split: str = "dev", **_metadata: Any
) -> datasets.DatasetDict:
    """``{"train": …, "eval": <split>}`` for one language; extra metadata keys are ignored."""
    folder = resolve_data_dir(data_dir) / lang
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(read_tsv(folder / "train.tsv")),
            "eval": datasets.Dataset.from_dict(read_tsv(folder / f"{split}.tsv")),
        }
    )
