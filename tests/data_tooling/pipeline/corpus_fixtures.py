"""Small corpus-run inputs for the executor and run tests (a few seconds each on 2 cores).

Import them into a test module (``from tests.data_tooling.pipeline.corpus_fixtures import …``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bloomkit.config import validate
from bloomkit.data_tooling.pipeline.config import DataRunConfig
from bloomkit.data_tooling.sample import read_tsv, sample_dir

LANGS = ("en", "hi", "zhs", "ar", "yo", "sw")


def sample_docs(lang: str, count: int) -> list[dict[str, str]]:
    rows = read_tsv(sample_dir() / "sib200" / lang / "train.tsv")
    return [
        {"id": f"{lang}-{i:03d}", "text": " ".join(r["text"] for r in rows[4 * i : 4 * i + 4])}
        for i in range(count)
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def small_inputs(folder: Path, shards: int = 3, per_language: int = 4) -> Path:
    """``shards`` JSONL files, each with ``per_language`` documents in each of six languages,
    plus one exact duplicate, one near duplicate, one e-mail and one noise document."""
    for shard in range(shards):
        records = []
        for lang in LANGS:
            for doc in sample_docs(lang, per_language * shards)[shard::shards]:
                records.append(doc)
        if shard == shards - 1:
            first = sample_docs("en", 1)[0]
            records += [
                {"id": "dup-exact", "text": first["text"].upper()},
                {"id": "dup-near", "text": first["text"].replace(".", ";", 1) + " Yes."},
                {"id": "pii", "text": sample_docs("fr", 1)[0]["text"] + " Mail: a.b@example.org"},
                {"id": "noise", "text": "BUY NOW!!! $$$ " * 40},
            ]
        write_jsonl(folder / f"part-{shard}.jsonl", records)
    return folder


def make_config(inputs: Path, **sections: dict) -> DataRunConfig:
    data = {
        "catalogue": str(sample_dir() / "catalogue.yaml"),
        "input_root": str(inputs),
        "inputs": [{"source": "sib200-flores", "paths": ["*.jsonl*"]}],
        "output": {"docs_per_shard": 25},
        **sections,
    }
    return validate(DataRunConfig, data)


def corpus_hashes(run: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run / "corpus").iterdir())
    }
