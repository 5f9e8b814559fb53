"""`bloomkit eval run`: all 46 languages, gaps in the data, bad names and bad model folders."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bloomkit.data_tooling.languages import language_codes
from bloomkit.eval.plan import plan
from bloomkit.eval.results import load
from bloomkit.eval.runner import EvalConfig, ModelLoadError, evaluate, run_eval
from bloomkit.eval.tasks import UnknownTaskError
from bloomkit.rundir import RunDir

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


@pytest.mark.slow
def test_bloom46_scores_all_46_languages(tiny_bloom, sib200_dir, tmp_path):
    config = EvalConfig(model=tiny_bloom, suite="bloom46", limit=2, data_dir=sib200_dir)
    run = RunDir(tmp_path / "run", "eval run", config)
    summary = run_eval(config, run)
    results = load(run / "results.json")
    assert len(results.tasks) == 92 and not results.missing
    for lang in language_codes():
        sib, bpb = results.tasks[f"sib200_{lang}"], results.tasks[f"flores_bpb_{lang}"]
        assert sib.n_samples == 2 and 0 <= sib.metrics["acc"].value <= 1
        assert 0 < bpb.metrics["bits_per_byte"].value < 20
        assert sib.config_sha256 == results.provenance.task_configs[sib.task]
    group = results.groups["bloom46"]
    assert not group.partial and set(group.metrics) == {"acc", "acc_norm", "bits_per_byte"}
    mean_bpb = sum(results.tasks[f"flores_bpb_{c}"].metrics["bits_per_byte"].value
                   for c in language_codes()) / 46  # fmt: skip
    assert math.isclose(group.metrics["bits_per_byte"].value, mean_bpb, rel_tol=1e-9)
    assert summary["languages"] == 46
    assert len(results.provenance.data_files) == 92  # train + dev per language
    again = run_eval(config, RunDir(run.path, "eval run", config))
    assert again == summary
    assert json.loads((run / "manifest.json").read_text())["steps"]["eval"]["skipped"]


def test_missing_languages_are_listed_and_the_rest_scored(tiny_bloom, sib200_dir, tmp_path):
    data = tmp_path / "sib200"
    for lang in ("en", "sw", "yo"):
        shutil.copytree(sib200_dir / lang, data / lang)
    (data / "yo" / "train.tsv").unlink()
    results = evaluate(EvalConfig(model=tiny_bloom, suite="sib200", limit=2, data_dir=data))
    assert sorted(results.tasks) == ["sib200_en", "sib200_sw"]
    missing = {m.lang: m.reason for m in results.missing}
    assert len(missing) == 44 and "yo/train.tsv" in missing["yo"]
    group = results.groups["sib200"]
    assert group.partial and group.tasks == ["sib200_en", "sib200_sw"]
    expected = (results.tasks["sib200_en"].metrics["acc"].value
                + results.tasks["sib200_sw"].metrics["acc"].value) / 2  # fmt: skip
    assert group.metrics["acc"].value == pytest.approx(expected)
    assert "sib200_en,sib200_sw" in results.provenance.reproduce


def test_unknown_task_suggests_close_names(tiny_bloom):
    with pytest.raises(UnknownTaskError, match="did you mean sib200_en") as err:
        plan(EvalConfig(model=tiny_bloom, suite=None, tasks=["sib200_eng", "flores_bpb_fr"]))
    assert "flores_bpb_fr" not in str(err.value)


def test_model_folder_that_does_not_load(tmp_path, tiny_bloom):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bloom, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelLoadError, match="does not load"):
        evaluate(EvalConfig(model=broken, suite=None, tasks=["sib200_en"], limit=1))
    result = subprocess.run(
        [BLOOMKIT, "eval", "run", "--model", str(tmp_path / "nowhere"), "--run-dir",
         str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "model folder not found" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_demo_config_is_valid(repo_root):
    from bloomkit.config import load_config

    config = load_config(EvalConfig, repo_root / "configs/eval/demo.yaml", ["model=/m"])
    assert config.suite == "bloom46" and config.limit == 10 and config.data_dir is None
    assert (config.resolved_data_dir / "zht" / "dev.tsv").is_file()


def test_apply_chat_template_prompts_through_the_models_template(
    tiny_bloom, sib200_dir, tmp_path, monkeypatch
):
    """An instruction-tuned model (its tokenizer carries the alpaca layout, as bloomkit's SFT
    export writes it) is prompted through that template, and the record says so."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from bloomkit.finetuning.templates import resolve_template

    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_bloom, tuned)
    config = EvalConfig(model=tuned, suite=None, tasks=["sib200_en"], limit=3,
                        data_dir=sib200_dir, apply_chat_template=True)  # fmt: skip
    with pytest.raises(ModelLoadError, match="tuned: no chat template"):
        evaluate(config)
    result = subprocess.run(
        [BLOOMKIT, "eval", "run", "--model", str(tuned), "--apply-chat-template",
         "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "no chat template" in result.stderr
    yaml = tmp_path / "eval.yaml"
    yaml.write_text(f"model: {tuned}\nsuite: null\ntasks: [sib200_en]\nlimit: 1\n"
                    f"data_dir: {sib200_dir}\napply_chat_template: true\n")  # fmt: skip
    result = subprocess.run(
        [BLOOMKIT, "eval", "run", "--config", str(yaml), "--no-apply-chat-template",
         "--run-dir", str(tmp_path / "flag-wins")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the flag wins over the file
    tokenizer = AutoTokenizer.from_pretrained(tuned)
    tokenizer.chat_template = resolve_template("alpaca").chat_template()
    tokenizer.save_pretrained(tuned)
    prompts: list[str] = []
    original = HFLM.apply_chat_template

    def recorded(self, chat_history, add_generation_prompt=True):
        prompts.append(original(self, chat_history, add_generation_prompt))
        return prompts[-1]

    monkeypatch.setattr(HFLM, "apply_chat_template", recorded)
    results = evaluate(config)
    assert len(prompts) == 3 and all("### Instruction:\n" in p for p in prompts)
    assert results.provenance.apply_chat_template
    assert results.provenance.reproduce.endswith("--apply_chat_template")
    with pytest.raises(ValueError, match="apply_chat_template applies to backend hf"):
        EvalConfig(backend="megatron", model=tuned, tokenizer=tuned, apply_chat_template=True)
