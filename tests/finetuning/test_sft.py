"""End to end: `bloomkit finetune sft` tunes a tiny HF BLOOM at TP=2 on the real seed tasks
(English and multilingual templates) through import → pretraining loop → export.

One run (module fixture, ~40 s on 2 cores) and checks on what it left: the training loss falls,
the held-out loss of the exported model is below the start model's, the export loads with
``transformers`` and generates, and a second call resumes instead of training again. Then two
shorter runs: from that run's bloomkit checkpoint (at TP1), and packed rows at PP2 × DP2 against
one process.
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
from bloomkit.finetuning import cli as finetune_cli
from bloomkit.finetuning.sft import SFTConfig, finetune_sft, resolve_model, resolve_tokenizer
from bloomkit.pretraining.checkpoint import read_meta
from bloomkit.pretraining.launch import free_port
from bloomkit.rundir import RunDir
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
    start, tables = time.perf_counter(), []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finetune_cli, "summary_table", lambda title, rows: tables.append(rows))
        result = CliRunner().invoke(
            app, ["finetune", "sft", str(config), "--run-dir", str(run_dir)]
        )
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, (result.output, result.exception)
    assert "sample generation:" in result.output
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    print(f"\nSFT run: {seconds:.1f} s, losses {[round(x, 3) for x in summary['losses']]}")
    return {"config": config, "run": run_dir, "summary": summary, "seconds": seconds,
            "table": {row["metric"]: row["value"] for row in tables[0]}}  # fmt: skip


def test_the_summary_table_shows_the_data_counts(sft_run):
    data, table = sft_run["summary"]["data"], sft_run["table"]
    dropped = {k: v for k, v in data.items() if k.startswith("dropped_")}
    assert dropped and table["examples dropped"] == sum(dropped.values())
    assert (table["examples kept"], table["examples truncated"]) == (
        data["kept"],
        data["truncated"],
    )
    for reason, count in dropped.items():
        assert table[f"examples dropped: {reason.removeprefix('dropped_')}"] == count


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
    chat = [{"role": "user", "content": "Give three tips for staying healthy."}]
    assert tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == prompt
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
        {"init_from": str(checkpoint), "model": {"seq_length": 64, "recompute": "full"},
         "data": {"sources": [{"path": "x.jsonl"}]}}
    )  # fmt: skip
    model = resolve_model(config)
    assert (model.hidden_size, model.num_layers, model.vocab_size) == (64, 2, 512)
    assert model.seq_length == 64 and model.recompute == "full"  # the run's, not the start's
    assert resolve_tokenizer(config).vocab_size == 256  # no tokenizer in a checkpoint: bytes


def _finetune(settings: dict, run_dir) -> dict:
    """``finetune_sft`` of ``settings`` in ``run_dir`` (a free rendezvous port)."""
    config = SFTConfig.model_validate(settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MASTER_PORT", str(free_port()))
        return finetune_sft(config, RunDir(run_dir, "test", config))


def test_sft_from_a_pretrained_checkpoint_starts_at_its_loss_and_improves(
    sft_run, tiny_bloom, seeds, multilingual_seeds, tmp_path
):
    """Four more steps from the TP2 run's final checkpoint (a bloomkit checkpoint, resharded to
    TP1): the loss starts where that run ended, far below a random model's, and the held-out
    loss (the same split: same rows, seed and tokenizer) falls further."""
    before = sft_run["summary"]
    settings = _config(tiny_bloom, seeds, multilingual_seeds)
    settings.update(init_from=str(sft_run["run"] / "checkpoints" / f"step-{STEPS}"),
                    parallel={}, export_hf=False)  # fmt: skip
    settings["data"]["tokenizer"] = str(tiny_bloom)
    settings["optim"] = {"lr": 1.0e-3, "warmup_steps": 1}
    settings["train"] = {**settings["train"], "steps": 4}
    summary = _finetune(settings, tmp_path)
    losses, ended = summary["losses"], sum(before["losses"][-3:]) / 3
    print(f"\nfrom scratch {before['losses'][0]:.3f}, checkpoint ended at {ended:.3f}, "
          f"continued {[round(x, 3) for x in losses]}, valid {before['valid_loss']:.3f} → "
          f"{summary['valid_loss']:.3f}")  # fmt: skip
    assert summary["layout"] == "tp1×pp1×dp1" and summary["resumed_from"] is None
    assert losses[0] == pytest.approx(ended, abs=0.3)
    assert losses[0] < before["losses"][0] - 1.0
    assert summary["valid_loss"] < before["valid_loss"]


def test_packed_sft_at_pp2_dp2_follows_the_single_process_run(
    tiny_bloom, multilingual_seeds, tmp_path
):
    """The same packed rows (several examples per row: segment ids cross the pipeline stages
    and are split over the DP ranks) give the same losses at PP2 × DP2 (4 processes) as in one
    process."""
    settings = {
        "init_from": str(tiny_bloom), "model": {"seq_length": 1024}, "export_hf": False,
        "data": {"sources": [{"path": str(multilingual_seeds), "format": "alpaca"}]},
        "optim": {"lr": 1.0e-2, "warmup_steps": 1},
        "train": {"steps": 3, "micro_batch_size": 2, "global_batch_size": 8},
    }  # fmt: skip
    single = _finetune(settings, tmp_path / "single")
    split = _finetune(
        {**settings, "parallel": {"pipeline_parallel": 2, "data_parallel": 2}}, tmp_path / "pp2"
    )
    assert split["layout"] == "tp1×pp2×dp2" and single["layout"] == "tp1×pp1×dp1"
    train = split["data"]["train"]
    assert train["examples"] > 2 * train["rows"]  # packed: more than two examples per row
    assert split["losses"] == pytest.approx(single["losses"], rel=1e-4)
    assert split["valid_loss"] == pytest.approx(single["valid_loss"], rel=1e-4)
    assert single["losses"][-1] < single["losses"][0]


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
