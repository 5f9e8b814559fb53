"""End to end: `bloomkit finetune sft` tunes a tiny HF BLOOM at TP=2 on the real seed tasks
(English and multilingual templates) through import → pretraining loop → export.

One run (module fixture, ~40 s on 2 cores) and checks on what it left: the training loss falls,
the held-out loss of the exported model is below the start model's, the export loads with
``transformers`` and generates, and a second call resumes instead of training again.
"""

from __future__ import annotations

import json
import math
import time

import pytest
import yaml
from transformers import AutoTokenizer, BloomForCausalLM
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.config import load_config
from bloomkit.finetuning.sft import SFTConfig, resolve_model, resolve_tokenizer
from bloomkit.pretraining.checkpoint import read_meta
from tests.finetuning.scoring import response_loss

STEPS = 10


def _config(tiny_bloom, seeds, multilingual_seeds) -> dict:
    return {
        "init_from": str(tiny_bloom),
        "model": {"seq_length": 256},
        "parallel": {"tensor_parallel": 2},
        "data": {
            "sources": [
                {"path": str(seeds), "template": "alpaca", "name": "seeds"},
                {"path": str(multilingual_seeds), "format": "alpaca", "name": "seeds-ml"},
            ],
            "valid_fraction": 0.1,
        },
        "optim": {"lr": 1.0e-2, "warmup_steps": 1},
        "train": {"steps": STEPS, "micro_batch_size": 4, "global_batch_size": 8},
    }


@pytest.fixture(scope="module")
def sft_run(tiny_bloom, seeds, multilingual_seeds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sft")
    config = folder / "sft.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_bloom, seeds, multilingual_seeds)))
    run_dir = folder / "run"
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["finetune", "sft", str(config), "--run-dir", str(run_dir)])
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, (result.output, result.exception)
    assert "sample generation:" in result.output
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    print(f"\nSFT run: {seconds:.1f} s, losses {[round(x, 3) for x in summary['losses']]}")
    return {"config": config, "run": run_dir, "summary": summary, "seconds": seconds}


def test_training_loss_falls(sft_run):
    losses = sft_run["summary"]["losses"]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5, losses
    assert math.isfinite(sft_run["summary"]["valid_loss"])


def test_runs_on_the_trainer_from_the_imported_model(sft_run):
    run, summary = sft_run["run"], sft_run["summary"]
    init = read_meta(run / "init")
    # imported once at TP1 (same padded vocabulary), resharded to TP2 by the trainer's load
    assert init["kind"] == "weights" and init["parallel"]["tensor_parallel"] == 1
    assert summary["layout"] == "tp2×pp1×dp1" and summary["init_from"]
    final = read_meta(run / "checkpoints" / f"step-{STEPS}")
    assert final["kind"] == "train" and final["config"]["data"]["sft"] == str(run / "sft")
    assert final["config"]["checkpoint"]["load"] == str(run / "init")
    data = summary["data"]
    assert (
        data["rows"] == 2 * 175
        and data["kept"] + data.get("dropped_prompt_too_long", 0) == (data["examples"])
    )
    assert set(data["per_language"]) == {"en", "fr", "es", "zhs", "ar", "hi", "sw"}


def test_export_loads_generates_and_beats_the_start_model(sft_run, tiny_bloom):
    run = sft_run["run"]
    hf = run / "hf"
    assert {"README.md", "LICENSE-RAIL", "tokenizer.json", "config.json"} <= {
        p.name for p in hf.iterdir()
    }
    tokenizer = AutoTokenizer.from_pretrained(hf)
    tuned = BloomForCausalLM.from_pretrained(hf).eval()
    start = BloomForCausalLM.from_pretrained(tiny_bloom).eval()
    before, after = (
        response_loss(start, run / "sft" / "valid"),
        response_loss(tuned, run / "sft" / "valid"),
    )
    print(f"held-out response loss: start model {before:.3f} → tuned {after:.3f}")
    assert after < before - 0.5
    prompt = sft_run["summary"]["generation"]["prompt"]
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = tuned.generate(
        **ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id
    )
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert isinstance(sft_run["summary"]["generation"]["response"], str)


def test_second_call_resumes_without_training(sft_run):
    start = time.perf_counter()
    result = CliRunner().invoke(
        app, ["finetune", "sft", str(sft_run["config"]), "--run-dir", str(sft_run["run"])]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    summary = json.loads((sft_run["run"] / "summary.json").read_text(encoding="utf-8"))
    assert summary["losses"] == sft_run["summary"]["losses"]
    assert time.perf_counter() - start < sft_run["seconds"] / 2


def test_start_from_a_bloomkit_checkpoint_takes_its_shapes(sft_run):
    checkpoint = sft_run["run"] / "checkpoints" / f"step-{STEPS}"
    config = SFTConfig.model_validate(
        {"init_from": str(checkpoint), "model": {"seq_length": 64},
         "data": {"sources": [{"path": "x.jsonl"}]}}
    )  # fmt: skip
    model = resolve_model(config)
    assert (model.hidden_size, model.num_layers, model.vocab_size) == (64, 2, 512)
    assert model.seq_length == 64
    assert resolve_tokenizer(config).vocab_size == 256  # no tokenizer in a checkpoint: bytes


def test_demo_config_validates(repo_root):
    config = load_config(SFTConfig, repo_root / "configs" / "finetune" / "sft-demo.yaml")
    assert config.parallel.tensor_parallel == 2 and config.data.sources


def test_bad_init_and_cli_errors(tmp_path, seeds):
    config = tmp_path / "sft.yaml"
    config.write_text(
        yaml.safe_dump({"init_from": str(tmp_path), "data": {"sources": [{"path": str(seeds)}]}})
    )
    result = CliRunner().invoke(
        app, ["finetune", "sft", str(config), "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "has no config.json" in result.output
    config.write_text(
        yaml.safe_dump({"data": {"sources": [{"path": str(seeds), "template": "alpacca"}]}})
    )
    result = CliRunner().invoke(app, ["finetune", "sft", str(config)])
    assert result.exit_code == 2 and "alpaca" in result.output
