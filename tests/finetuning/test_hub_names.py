"""`bloomkit finetune sft`, `finetune lora` and `generate --tokenizer` by hub name, offline:
``init_from: ORG/NAME``, a source ``hf:ORG/NAME`` and ``--tokenizer ORG/NAME`` resolve from
Hugging Face caches the test builds (:mod:`tests.hub_cache`).

What a user checks: the run starts from the hub model's weights (its imported checkpoint gives
the hub model's logits; LoRA's frozen weights are the hub model's), tokenizes with the hub
model's own tokenizer, and reads the hub dataset's rows exactly as the same rows from a file;
``generate`` counts the thinking with the hub tokenizer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer, BloomForCausalLM

from bloomkit.finetuning.sft import SFTDataConfig
from bloomkit.finetuning.sft_data import load_tokenizer, prepare_sft_data
from bloomkit.pretraining.checkpoint import read_meta
from bloomkit.pretraining.convert import checkpoint_logits
from bloomkit.pretraining.parallel import ParallelConfig
from tests.finetuning.test_budget import PROMPT
from tests.hub_cache import cache_dataset, cache_model, offline_env, run_bloomkit

MODEL, DATA = "bloomkit-test/tiny-bloom-sft", "bloomkit-test/alpaca-seeds"
SEQ = 256


def _source(path: str) -> dict:
    return {"path": path, "format": "alpaca", "name": "seeds"}


@pytest.fixture(scope="module")
def hub(tiny_bloom, multilingual_seeds, tmp_path_factory) -> dict:
    """The tests' tiny BLOOM (with its tokenizer) and the multilingual Alpaca seeds, cached
    under hub names; the offline environment that reads them."""
    root = tmp_path_factory.mktemp("hub")
    cache_dataset(root / "datasets", DATA, {"train": multilingual_seeds})
    return {
        "snapshot": cache_model(root / "hub", MODEL, tiny_bloom),
        "env": offline_env(root / "hub", root / "datasets"),
    }


@pytest.fixture(scope="module")
def sft_run(hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sft-hub")
    config = {
        "init_from": MODEL,
        "model": {"seq_length": SEQ},
        "data": {"sources": [_source(f"hf:{DATA}")], "valid_fraction": 0.1},
        "optim": {"lr": 1.0e-2, "warmup_steps": 1},
        "train": {"steps": 2, "micro_batch_size": 4, "global_batch_size": 4},
    }
    (folder / "sft.yaml").write_text(yaml.safe_dump(config))
    run = folder / "run"
    result = run_bloomkit(
        ["finetune", "sft", str(folder / "sft.yaml"), "--run-dir", str(run)], hub["env"], folder
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return run


def test_sft_imports_the_hub_model(sft_run, hub):
    summary = json.loads((sft_run / "summary.json").read_text(encoding="utf-8"))
    assert summary["init_from"] == MODEL and len(summary["losses"]) == 2
    assert read_meta(sft_run / "init")["source"] == MODEL
    tokens = torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(0))
    hf = BloomForCausalLM.from_pretrained(hub["snapshot"]).eval()
    with torch.no_grad():
        expected = hf(tokens).logits
    logits = checkpoint_logits(sft_run / "init", tokens, ParallelConfig())
    assert (logits - expected).abs().max().item() < 1e-4


def test_sft_reads_the_hub_dataset_with_the_hub_tokenizer(sft_run, hub, multilingual_seeds):
    """The packed rows equal those of the same rows read from the file, tokenized by the
    tokenizer folder the hub model was cached from; the export ships that tokenizer."""
    data = SFTDataConfig(sources=[_source(str(multilingual_seeds))], valid_fraction=0.1)
    reference = sft_run.parent / "reference"
    report = prepare_sft_data(
        data, load_tokenizer(hub["snapshot"]), reference, seq_length=SEQ, vocab_size=512
    )
    summary = json.loads((sft_run / "summary.json").read_text(encoding="utf-8"))
    assert summary["data"]["examples"] == report["examples"] == 175
    for split in ("train", "valid"):
        for array in ("tokens", "labels", "loss_mask", "segment_ids"):
            ours = np.load(sft_run / "sft" / split / f"{array}.npy")
            assert np.array_equal(ours, np.load(reference / split / f"{array}.npy")), array
    exported = AutoTokenizer.from_pretrained(sft_run / "hf")
    assert exported.get_vocab() == AutoTokenizer.from_pretrained(hub["snapshot"]).get_vocab()


def test_lora_tunes_the_hub_model(hub, tmp_path):
    config = {
        "init_from": MODEL,
        "seq_length": SEQ,
        "data": {"sources": [_source(f"hf:{DATA}")]},
        "steps": 2,
        "batch_size": 4,
    }
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    result = run_bloomkit(
        ["finetune", "lora", str(tmp_path / "lora.yaml"), "--run-dir", str(run)],
        hub["env"],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"base_model: {MODEL}" in (run / "hf" / "README.md").read_text(encoding="utf-8")
    merged = load_file(run / "hf" / "model.safetensors")
    base = load_file(hub["snapshot"] / "model.safetensors")
    for name in ("transformer.word_embeddings.weight", "transformer.ln_f.weight"):
        assert torch.equal(merged[name], base[name]), name  # frozen: the hub model's own
    assert (run / "hf" / "tokenizer.json").read_text() == (
        hub["snapshot"] / "tokenizer.json"
    ).read_text()


def test_generate_counts_tokens_with_the_hub_tokenizer(hub, tiny_bloom, tmp_path):
    from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread

    out = tmp_path / "out.jsonl"
    args = ["generate", PROMPT, "--tokenizer", MODEL, "--output", str(out), "--budget-forcing",
            "--max-thinking-tokens", "12", "--max-tokens", "5", "--temperature", "0"]  # fmt: skip
    with serve_in_thread(create_app(tiny_bloom, ServeConfig(model_name="tiny"))) as url:
        result = run_bloomkit([*args, "--url", f"{url}/v1"], hub["env"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(hub["snapshot"])
    # the random model never ends its thinking: forced at the maximum, counted locally
    assert row["forced_end"] and 0 < row["thinking_tokens"] <= 12
    assert row["thinking_tokens"] == len(tokenizer.encode(row["thinking"]))


@pytest.mark.parametrize(
    ("command", "absent"), [("sft", "init_from"), ("sft", "source"), ("lora", "init_from")]
)
def test_tuning_names_a_hub_name_missing_from_the_offline_cache(
    command, absent, hub, seeds, tmp_path
):
    name = "bloomkit-test/absent"
    source = _source(f"hf:{name}" if absent == "source" else str(seeds))
    config = {"init_from": name if absent == "init_from" else MODEL, "data": {"sources": [source]}}
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(config))
    args = ["finetune", command, str(tmp_path / "tune.yaml"), "--run-dir", str(tmp_path / "run")]
    result = run_bloomkit(args, hub["env"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: " in result.stderr and name in result.stderr
