"""The results store: schema, provenance, tamper check, comparison and the per-language report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bloomkit.eval.compare import compare, holm
from bloomkit.eval.report import heatmap, language_rows
from bloomkit.eval.results import EvalResults, ResultsError, load
from bloomkit.rundir import sha256_file

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


def bloomkit_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLOOMKIT, "eval", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_record_carries_provenance(few_results, tiny_bloom, sib200_dir):
    record = load(few_results)
    prov = record.provenance
    assert prov.model.model_files["model.safetensors"] == sha256_file(
        tiny_bloom / "model.safetensors"
    )
    assert prov.model.tokenizer_files["tokenizer.json"] == sha256_file(
        tiny_bloom / "tokenizer.json"
    )
    assert prov.data_files["sw/train.tsv"] == sha256_file(sib200_dir / "sw" / "train.tsv")
    assert prov.lm_eval_version == "0.4.13" and prov.limit == 20
    assert prov.seeds["fewshot"] == 1234 and set(prov.task_configs) == set(record.tasks)
    assert record.tasks["sib200_5shot_sw"].num_fewshot == 5
    bpb = record.tasks["flores_bpb_zhs"]
    assert bpb.metrics["bits_per_byte"].stderr_source == "bootstrap"
    assert len(bpb.per_doc["bytes"]) == len(bpb.doc_ids) == 20
    assert EvalResults.model_json_schema()["title"] == "EvalResults"


def test_hand_edit_is_flagged(few_results, tmp_path):
    assert bloomkit_eval("verify", str(few_results)).returncode == 0
    data = json.loads(few_results.read_text())
    data["tasks"]["sib200_en"]["metrics"]["acc"]["value"] = 0.99
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    result = bloomkit_eval("verify", str(edited))
    assert result.returncode == 1 and "content hash mismatch" in result.stderr
    with pytest.raises(ResultsError, match="hash mismatch"):
        load(edited)
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"tasks": 3}')
    with pytest.raises(ResultsError, match="not a bloomkit results record"):
        load(garbage)


def test_same_model_differs_nowhere(few_results):
    record = load(few_results)
    rows = compare(record, record)
    assert len(rows) == len(record.tasks)
    assert all(r.delta == 0 and r.p_value == 1.0 and not r.significant for r in rows)
    assert {r.method for r in rows} == {"paired-bootstrap"}


def test_two_models_compared_per_language(few_results, few_results_other):
    rows = {r.task: r for r in compare(load(few_results), load(few_results_other))}
    bpb = rows["flores_bpb_en"]
    assert bpb.metric == "bits_per_byte" and bpb.delta != 0 and bpb.lang == "en"
    assert 0 <= bpb.p_value <= bpb.p_adjusted <= 1
    result = bloomkit_eval("compare", str(few_results), str(few_results_other))
    assert result.returncode == 0, result.stderr
    assert "differences significant" in result.stderr


def test_z_test_when_documents_are_not_logged(few_results, few_results_other):
    a, b = load(few_results), load(few_results_other)
    for task in b.tasks.values():
        task.per_doc = {}
    rows = {r.task: r for r in compare(a, b)}
    assert rows["sib200_en"].method == "z-test" and rows["sib200_en"].p_value is not None


def test_holm_adjustment():
    assert holm([0.01, 0.04, None, 0.03]) == [0.03, 0.06, None, 0.06]


def test_report_groups_languages_by_family(few_results, tmp_path):
    record = load(few_results)
    rows = language_rows(record)
    # families in order (Indo-European, Niger-Congo, Sino-Tibetan), high resource first
    assert [(r["lang"], r["resource"]) for r in rows] == [
        ("en", "high"),
        ("hi", "mid"),
        ("sw", "low"),
        ("zhs", "high"),
    ]
    assert rows[1]["sib200"] is not None and rows[1]["flores_bpb"] is None
    png = heatmap(record, tmp_path / "heatmap.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = bloomkit_eval("report", str(few_results), "--out", str(tmp_path / "h2.png"))
    assert result.returncode == 0 and (tmp_path / "h2.png").stat().st_size > 1000
