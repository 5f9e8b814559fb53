"""`bloomkit finetune lora` on the real seed tasks and the tests' tiny BLOOM (2 layers, hidden 64).

One run (module fixture, ~12 s on 2 idle cores) and checks on what it left: only adapters trained,
the held-out loss fell, the merged export loads and generates with plain ``transformers`` and
computes what base + adapter compute under ``peft``, and it carries a card and LICENSE-RAIL.

The random base caps how far any adapter can go: its frozen tied embeddings (init std 0.02)
keep every logit within about ±1.3, so the response loss can fall only a little below ln 512.
"""

from __future__ import annotations

import json
import math
import time
from importlib import resources

import pytest
import torch
import typer
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer, BloomForCausalLM
from typer.testing import CliRunner

from bloomkit.config import load_config
from bloomkit.finetuning import lora_cli
from bloomkit.finetuning.lora import BLOOM_LINEAR, LoRAConfig, lora_model
from bloomkit.finetuning.lora_cli import lora_command
from tests.finetuning.scoring import response_loss

R, STEPS = 8, 12
app = typer.Typer()  # one command: invoked as the app itself (mounted as `finetune lora`)
app.command()(lora_command)


def _config(tiny_bloom, seeds) -> dict:
    return {
        "init_from": str(tiny_bloom),
        "seq_length": 256,
        "r": R,
        "alpha": 32,
        "dropout": 0.05,
        "data": {"sources": [{"path": str(seeds), "template": "alpaca", "name": "seeds"}]},
        "optim": {"lr": 5.0e-2, "warmup_steps": 2, "weight_decay": 0.0},
        "steps": STEPS,
        "batch_size": 4,
    }


@pytest.fixture(scope="module")
def lora_run(tiny_bloom, seeds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora")
    config = folder / "lora.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_bloom, seeds)))
    run_dir = folder / "run"
    start = time.perf_counter()
    result = CliRunner().invoke(app, [str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "sample generation:" in result.output
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    print(f"\nLoRA run: {time.perf_counter() - start:.1f} s, losses "
          f"{[round(x, 3) for x in summary['losses']]}")  # fmt: skip
    return {"run": run_dir, "summary": summary}


def test_only_the_adapters_train(lora_run, tiny_bloom, seeds):
    model = lora_model(LoRAConfig.model_validate(_config(tiny_bloom, seeds)))
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trained and all(".lora_A." in n or ".lora_B." in n for n in trained)
    # r × (in + out) per adapted layer: qkv 64→192, dense 64→64, MLP 64→256→64; 2 layers
    assert lora_run["summary"]["trainable_parameters"] == 2 * R * (256 + 128 + 320 + 320)
    adapter = load_file(lora_run["run"] / "adapter" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    base = BloomForCausalLM.from_pretrained(tiny_bloom).state_dict()
    merged = BloomForCausalLM.from_pretrained(lora_run["run"] / "hf").state_dict()
    assert base.keys() == merged.keys()
    for name, weight in base.items():
        adapted = name.endswith(".weight") and name.split(".")[-2] in BLOOM_LINEAR
        assert torch.equal(weight, merged[name]) != adapted, name  # the rest stayed frozen


def test_held_out_loss_falls_and_packing_isolates(lora_run):
    summary = lora_run["summary"]
    losses = summary["losses"]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses)
    before, after = summary["valid_loss_before"], summary["valid_loss_after"]
    print(f"held-out response loss {before:.4f} → {after:.4f}")
    assert after < before - 0.05
    assert before == pytest.approx(math.log(512), abs=0.1)  # the random base: near uniform
    # the packed rows (4-D mask, ALiBi by key position) score as the examples run one by one
    merged = BloomForCausalLM.from_pretrained(lora_run["run"] / "hf").eval()
    assert response_loss(merged, lora_run["run"] / "sft" / "valid") == pytest.approx(
        after, abs=1e-4
    )


def test_merged_export_loads_without_peft_and_matches_it(lora_run, tiny_bloom):
    from peft import PeftModel

    hf = lora_run["run"] / "hf"
    names = {p.name for p in hf.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "adapter_config.json" not in names
    assert json.loads((hf / "config.json").read_text())["architectures"] == ["BloomForCausalLM"]
    merged = BloomForCausalLM.from_pretrained(hf).eval()
    unmerged = PeftModel.from_pretrained(
        BloomForCausalLM.from_pretrained(tiny_bloom), lora_run["run"] / "adapter"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf)
    prompt = lora_run["summary"]["generation"]["prompt"]
    chat = [{"role": "user", "content": "Give three tips for staying healthy."}]
    assert tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == prompt
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        diff = (merged(**ids).logits - unmerged(**ids).logits).abs().max()
    assert diff < 1e-4 and lora_run["summary"]["merge_max_abs_diff"] < 1e-4
    out = merged.generate(**ids, max_new_tokens=8, do_sample=False,
                          pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_card_and_licence(lora_run, tiny_bloom):
    hf = lora_run["run"] / "hf"
    licence = resources.files("bloomkit") / "LICENSE-RAIL"
    assert (hf / "LICENSE-RAIL").read_text(encoding="utf-8") == licence.read_text(encoding="utf-8")
    card = (hf / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: other\n") and "license_link: LICENSE-RAIL" in card
    assert f"base_model: {tiny_bloom}" in card and f"r {R}, alpha 32" in card
    assert "- en" in card and "query_key_value" in card


def test_unknown_target_module_is_refused(tmp_path, tiny_bloom, seeds):
    config = tmp_path / "lora.yaml"
    config.write_text(yaml.safe_dump({**_config(tiny_bloom, seeds), "target_modules": ["qkv"]}))
    result = CliRunner().invoke(app, [str(config), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "target_modules: unknown BLOOM module 'qkv'" in result.output
    assert "query_key_value, dense, dense_h_to_4h, dense_4h_to_h" in result.output
    assert not (tmp_path / "r").exists()  # refused before any work


def test_a_schedule_in_samples_is_refused(tmp_path, tiny_bloom, seeds):
    config = tmp_path / "lora.yaml"
    optim = {"warmup_steps": 0, "warmup_samples": 64}
    config.write_text(yaml.safe_dump({**_config(tiny_bloom, seeds), "optim": optim}))
    result = CliRunner().invoke(app, [str(config), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "LoRA schedules the LR in steps" in result.output
    assert not (tmp_path / "r").exists()


def test_bloomkit_checkpoint_is_refused(tmp_path, seeds):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "bloomkit.json").write_text("{}")
    config = LoRAConfig.model_validate(
        {"init_from": str(tmp_path / "ckpt"), "data": {"sources": [{"path": str(seeds)}]}}
    )
    with pytest.raises(ValueError, match="bloomkit export hf"):
        lora_model(config)


def test_demo_config_validates(repo_root):
    config = load_config(LoRAConfig, repo_root / "configs" / "finetune" / "lora-demo.yaml")
    assert list(config.target_modules) == list(BLOOM_LINEAR) and config.data.sources


def test_flat_held_out_loss_stops_early_and_still_exports(tmp_path, tiny_bloom, seeds, monkeypatch):
    """At lr 1e-9 the adapters hardly move and the held-out loss stays within 0.001: with
    patience 2 training stops after the third evaluation, and what it trained is exported."""
    settings = {
        **_config(tiny_bloom, seeds), "optim": {"lr": 1.0e-9, "warmup_steps": 0},
        "early_stopping": {"patience": 2, "min_delta": 1.0e-3},
    }  # fmt: skip
    config = tmp_path / "lora.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(app, [str(config), "--run-dir", str(tmp_path / "refused")])
    assert result.exit_code == 2 and "set eval_interval (now None)" in result.output
    config.write_text(yaml.safe_dump({**settings, "eval_interval": 1}))
    tables: list[list[dict]] = []
    monkeypatch.setattr(lora_cli, "summary_table", lambda title, rows: tables.append(rows))
    result = CliRunner().invoke(app, [str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, (result.output, result.exception)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 3 < STEPS and len(summary["losses"]) == 3
    assert [row["step"] for row in summary["valid_losses"]] == [1, 2, 3]
    assert summary["stopped"].startswith("early stopping: valid_loss did not improve")
    assert "for 2 evaluations (best" in summary["stopped"] and "after step 1)" in summary["stopped"]
    assert (tmp_path / "run" / "hf" / "config.json").is_file()
    assert summary["valid_loss_after"] == pytest.approx(summary["valid_losses"][-1]["valid_loss"])
    shown = {row["metric"]: row["value"] for row in tables[0]}  # the CLI's table
    data = summary["data"]
    dropped = sum(v for k, v in data.items() if k.startswith("dropped_"))
    assert (shown["examples kept"], shown["examples truncated"], shown["examples dropped"]) == (
        data["kept"],
        data["truncated"],
        dropped,
    )
    assert data["kept"] + dropped == data["examples"]
