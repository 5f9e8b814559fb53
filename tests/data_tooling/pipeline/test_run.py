"""run_corpus and `bloomkit data run`: the shipped sample end to end, opt-outs, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bloomkit.config import load_config
from bloomkit.data_tooling.catalogue import load_catalogue
from bloomkit.data_tooling.cli import app
from bloomkit.data_tooling.pipeline.config import DataRunConfig
from bloomkit.data_tooling.pipeline.run import run_corpus
from bloomkit.data_tooling.pipeline.writers import read_shard
from bloomkit.data_tooling.sample import sample_dir, write_raw_corpus
from bloomkit.rundir import RunDir
from tests.data_tooling.pipeline.corpus_fixtures import make_config, small_inputs, write_jsonl

DOC_STEPS = ("normalise", "lid", "quality", "pii")
DEDUP_STEPS = ("unique_id", "dedup_exact", "dedup_minhash")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return small_inputs(tmp_path / "raw")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, repo_root) -> tuple[dict, Path]:
    """configs/data/demo.yaml on the shipped sample, as the demo wires it."""
    root = tmp_path_factory.mktemp("sample")
    write_raw_corpus(sample_dir(), root / "raw")
    config = load_config(
        DataRunConfig,
        repo_root / "configs/data/demo.yaml",
        [f"input_root={root / 'raw'}", f"catalogue={sample_dir() / 'catalogue.yaml'}"],
    )
    summary = run_corpus(config, RunDir(root / "run", "test", config))
    return summary, root / "run"


def test_shipped_sample_end_to_end(sample_run):
    summary, run = sample_run
    assert summary["documents"] == 46 * 30 + 8  # SIB-200 documents + Python files
    assert summary["documents"] == summary["kept"] + summary["removed"] + summary["quarantined"]
    assert summary["languages"] >= 44
    rows = {row["what"]: row for row in summary["rows"]}
    for name in (*DOC_STEPS, *DEDUP_STEPS):
        assert rows[f"step {name}"]["read"] > 0, name  # every step saw and counted documents
    docs = [d for p in sorted((run / "corpus").iterdir()) for d in read_shard(p)]
    assert len(docs) == summary["kept"] == len({d.id for d in docs})
    assert summary["corpus_shards"] == 3  # 1,388 documents at 500 a shard
    licences = {"sib200-flores": "CC-BY-SA-4.0", "python-stdlib": "PSF-2.0"}
    for doc in docs:
        assert doc.licence == licences[doc.source]
        assert doc.language and doc.language_score is not None
    assert {d.language for d in docs if d.source == "python-stdlib"} == {"python"}


def test_data_card_names_every_source_and_licence(sample_run):
    summary, _ = sample_run
    card = Path(summary["report"]["data_card"]).read_text(encoding="utf-8")
    source = load_catalogue(sample_dir() / "catalogue.yaml").source("sib200-flores")
    for text in (source.id, source.licence, source.provenance, "## Languages", "## PII",
                 "## Deduplication", "## Known limitations", "`tum`", "`zhs`"):  # fmt: skip
        assert text in card, text
    for plot in ("languages", "removals"):
        assert Path(summary["report"][plot]).read_bytes().startswith(b"\x89PNG")


def test_optouts_are_removed_and_proved(tmp_path, inputs):
    optouts = tmp_path / "optout.yaml"
    optouts.write_text(yaml.safe_dump({"ids": ["en-000", "hi-001", "never-seen"]}))
    config = make_config(inputs, steps={"optout": str(optouts)})
    summary = run_corpus(config, RunDir(tmp_path / "run", "test", config))
    ids = {d.id for p in (tmp_path / "run/corpus").iterdir() for d in read_shard(p)}
    assert not ids & {"en-000", "hi-001"}
    assert {"what": "step optout", "read": 76, "kept": 74, "removed": 2, "quarantined": 0} in (
        summary["rows"]
    )
    card = (tmp_path / "run/report/data_card.md").read_text(encoding="utf-8")
    assert "| id:never-seen | 0 |" in card and "| id:en-000 | 1 |" in card


def test_cli_runs_and_reports(tmp_path, inputs):
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump(make_config(inputs).model_dump(mode="json")))
    result = CliRunner().invoke(app, ["run", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "73 of 76 documents kept" in result.output


def test_unknown_source_and_empty_input_are_named(tmp_path, inputs):
    config = make_config(inputs)
    config.inputs[0].source = "no-such-source"
    with pytest.raises(KeyError, match=r"no source 'no-such-source'.*known: sib200-flores"):
        run_corpus(config, RunDir(tmp_path / "a", "test", config))
    (inputs / "empty-dir").mkdir()
    config = make_config(inputs)
    config.inputs[0].paths = ["empty-dir"]
    with pytest.raises(ValueError, match=r"inputs.0 \(sib200-flores\).*matched no readable shard"):
        run_corpus(config, RunDir(tmp_path / "b", "test", config))


def test_a_run_dir_refuses_a_different_config(tmp_path, inputs):
    write_jsonl(inputs / "small.jsonl", [{"id": "x", "text": "Habari za asubuhi, rafiki yangu."}])
    config = make_config(inputs)
    config.inputs[0].paths = ["small.jsonl"]
    run_corpus(config, RunDir(tmp_path / "run", "test", config))
    config.steps.quality.enabled = False
    with pytest.raises(ValueError, match="different config"):
        run_corpus(config, RunDir(tmp_path / "run", "test", config))
