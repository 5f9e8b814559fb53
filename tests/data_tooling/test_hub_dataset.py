"""`bloomkit data run` on an ``hf://ORG/NAME`` input, offline: the hub dataset resolves from the
``datasets`` cache the test builds (:mod:`tests.hub_cache`) and gives the corpus the same rows
give from a JSONL file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bloomkit.data_tooling.pipeline.run import run_corpus
from bloomkit.data_tooling.pipeline.writers import read_shard
from bloomkit.rundir import RunDir
from tests.data_tooling.pipeline.corpus_fixtures import LANGS, make_config, sample_docs, write_jsonl
from tests.hub_cache import cache_dataset, offline_env, run_bloomkit

DATA = "bloomkit-test/sib-docs"


def corpus(run: Path) -> list[tuple[str, str, str | None]]:
    docs = [d for shard in sorted((run / "corpus").iterdir()) for d in read_shard(shard)]
    return sorted((d.id, d.text, d.language) for d in docs)


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    """Four SIB-200 documents in each of six languages and one noise document (JSONL)."""
    records = [doc for lang in LANGS for doc in sample_docs(lang, 4)]
    records.append({"id": "noise", "text": "BUY NOW!!! $$$ " * 40})
    return write_jsonl(tmp_path_factory.mktemp("rows") / "docs.jsonl", records)


@pytest.fixture(scope="module")
def from_file(rows, tmp_path_factory) -> list[tuple[str, str, str | None]]:
    run = tmp_path_factory.mktemp("file-run")
    config = make_config(rows.parent)
    run_corpus(config, RunDir(run, "test", config))
    return corpus(run)


def run_on_hub(spec: str, rows: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``bloomkit data run`` (offline) of the one input ``spec``, ``rows`` cached as DATA."""
    cache_dataset(tmp_path / "datasets", DATA, {"train": rows})
    config = make_config(tmp_path).model_dump(mode="json")
    config["inputs"][0]["paths"] = [spec]
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config))
    args = ["data", "run", str(tmp_path / "data.yaml"), "--run-dir", str(tmp_path / "run")]
    env = offline_env(tmp_path / "hub-cache-empty", tmp_path / "datasets")
    return run_bloomkit(args, env, tmp_path)


@pytest.mark.parametrize("spec", [f"hf://{DATA}", f"hf://{DATA}:default/train"])
def test_hub_dataset_gives_the_corpus_of_the_same_file(spec, rows, from_file, tmp_path):
    result = run_on_hub(spec, rows, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(from_file)} of 25 documents kept" in result.stdout
    assert corpus(tmp_path / "run") == from_file and len(from_file) >= 20


def test_unknown_split_of_a_hub_dataset_is_named(rows, tmp_path):
    result = run_on_hub(f"hf://{DATA}/validation", rows, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"(hf://{DATA}/validation) failed" in result.stderr
    assert """Unknown split "validation". Should be one of ['train']""" in result.stderr
    log = (tmp_path / "run" / "logs" / "bloomkit.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "Unknown split" in log and "logs/bloomkit.log" in result.stderr
