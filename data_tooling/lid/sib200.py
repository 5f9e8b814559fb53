"""Read SIB-200 sentences (``SHARED_DATA_DIR/sib200/<lang>/{train,dev}.tsv``) as documents.

SIB-200 (Adelani et al., 2024) is built on FLORES-200; rows align across languages by
``index_id``. The files are tab-separated with quoting off, because texts contain quotes.
LID training and quality thresholds use ``train`` only; ``dev`` is held out for measurement.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

DOC_SENTENCES = 5
"""Sentences per evaluation document (the issue's "clean 5-sentence documents")."""


def sib200_dir(shared_data: Path | str) -> Path:
    """``SHARED_DATA_DIR/sib200`` or ``SHARED_DATA_DIR`` itself when it is the sib200 folder."""
    root = Path(shared_data)
    folder = root if (root / "en").is_dir() else root / "sib200"
    if not (folder / "en").is_dir():
        raise FileNotFoundError(
            f"{root}: no sib200/<lang>/train.tsv here; pass the shared data folder "
            "(the one holding sib200/)"
        )
    return folder


def read_sentences(shared_data: Path | str, lang: str, split: str) -> list[str]:
    """The ``text`` column of ``sib200/<lang>/<split>.tsv``, in file order."""
    path = sib200_dir(shared_data) / lang / f"{split}.tsv"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["text"].strip() for row in rows if row.get("text")]


def group(sentences: list[str], size: int = DOC_SENTENCES, sep: str = "\n") -> list[str]:
    """Consecutive groups of ``size`` sentences joined by ``sep`` (a shorter tail is kept)."""
    return [sep.join(sentences[i : i + size]) for i in range(0, len(sentences), size)]


def documents(
    shared_data: Path | str,
    lang: str,
    split: str,
    size: int = DOC_SENTENCES,
    sep: str = "\n",
    shuffles: int = 0,
    seed: int = 0,
) -> list[str]:
    """``size``-sentence documents of one split; ``shuffles`` adds re-grouped random orders."""
    sentences = read_sentences(shared_data, lang, split)
    docs = group(sentences, size, sep)
    rng = random.Random(seed)
    for _ in range(shuffles):
        order = sentences[:]
        rng.shuffle(order)
        docs.extend(group(order, size, sep))
    return docs
