"""``bloomkit import hf ORG/NAME`` offline, from a Hugging Face cache the test builds
(:mod:`tests.hub_cache`): the hub model becomes a checkpoint with its logits; a hub model of
another architecture, or a name missing from the cache, is refused, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BloomForCausalLM

from bloomkit.pretraining.checkpoint import read_meta
from bloomkit.pretraining.checks import tiny_hf_bloom
from bloomkit.pretraining.convert import checkpoint_logits
from bloomkit.pretraining.parallel import ParallelConfig
from tests.hub_cache import cache_model, offline_env, run_bloomkit
from tests.pretraining.test_import_export_errors import assert_nothing_written

BLOOM, GPT2 = "bloomkit-test/tiny-bloom", "bloomkit-test/tiny-gpt2"
ABSENT = "bloomkit-test/absent"
ATOL = 1e-4
TOKENS = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict:
    """A hub cache with a tiny BLOOM and a tiny GPT-2; their snapshots and the offline env."""
    from transformers import GPT2Config, GPT2LMHeadModel

    root = tmp_path_factory.mktemp("hub")
    tiny_hf_bloom(4, hidden=64, layers=2, vocab=256).save_pretrained(root / "bloom")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100))
    gpt2.save_pretrained(root / "gpt2")
    return {
        "bloom": cache_model(root / "cache", BLOOM, root / "bloom"),
        "gpt2": cache_model(root / "cache", GPT2, root / "gpt2"),
        "env": offline_env(root / "cache"),
    }


@pytest.fixture
def out(tmp_path) -> Path:
    """An empty output folder, alone in its parent."""
    folder = tmp_path / "target" / "out"
    folder.mkdir(parents=True)
    return folder


def test_import_by_hub_name_gives_the_hub_models_logits(hub, tmp_path):
    ckpt = tmp_path / "ckpt"
    result = run_bloomkit(["import", "hf", BLOOM, str(ckpt), "--tp", "2"], hub["env"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"imported {BLOOM} → {ckpt} (tp2 × pp1)" in result.stdout
    meta = read_meta(ckpt)
    assert meta["source"] == BLOOM and meta["parallel"]["tensor_parallel"] == 2
    assert meta["model"]["num_layers"] == 2 and meta["model"]["vocab_size"] == 256
    hf = BloomForCausalLM.from_pretrained(hub["bloom"]).eval()
    with torch.no_grad():
        expected = hf(TOKENS).logits
    logits = checkpoint_logits(ckpt, TOKENS, ParallelConfig())
    assert logits.shape == expected.shape == (2, 16, 256)
    assert (logits - expected).abs().max().item() < ATOL


def test_hub_model_of_another_architecture_is_refused(hub, out, tmp_path):
    result = run_bloomkit(["import", "hf", GPT2, str(out)], hub["env"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"error: {GPT2}: config.json model_type 'gpt2', not 'bloom'" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_written(out)


def test_hub_name_missing_from_the_offline_cache_is_refused(hub, out, tmp_path):
    result = run_bloomkit(["import", "hf", ABSENT, str(out)], hub["env"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error: " in result.stderr and "couldn't find them in the cached files" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_written(out)


def test_hub_name_missing_from_the_offline_cache_is_named_in_the_error(hub, out, tmp_path):
    result = run_bloomkit(["import", "hf", ABSENT, str(out)], hub["env"], tmp_path)
    assert result.returncode == 2 and ABSENT in result.stderr
