"""HF ``BloomForCausalLM`` and bloomkit's megatron-core BLOOM give the same logits (fp32,
atol 1e-4) at TP=1 (in this process) and at TP=2 and PP=2 (2 gloo processes, one spawn)."""

from __future__ import annotations

import json

import pytest
import torch

from bloomkit.pretraining.checks import hf_logits_parity, parity_worker, tiny_hf_bloom
from bloomkit.pretraining.hf import hf_to_megatron, model_config_from_hf
from bloomkit.pretraining.launch import single_process_env, spawn
from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel

ATOL = 1e-4


@pytest.fixture(scope="module")
def single_process():
    with single_process_env():
        init_parallel(ParallelConfig())
        yield
        destroy_parallel(process_group=True)


@pytest.mark.parametrize(("heads", "backend"), [(4, "local"), (6, "local"), (6, "sdpa")])
def test_tp1_logits_match_hf(single_process, heads, backend):
    assert hf_logits_parity(ParallelConfig(), heads, backend) < ATOL


def test_qkv_layout_needs_no_permutation_and_splits_by_whole_heads():
    hf = tiny_hf_bloom(6)
    config = model_config_from_hf(hf.config)
    qkv = hf.state_dict()["transformer.h.0.self_attention.query_key_value.weight"]
    shards = [hf_to_megatron(hf.state_dict(), config, tp_rank=r, tp_size=2) for r in range(2)]
    name = "decoder.layers.0.self_attention.linear_qkv.weight"
    # rank 1 holds heads 3..5, each [q, k, v] of head_dim 8 rows
    assert torch.equal(shards[1][name], qkv[3 * 3 * 8 :])
    assert shards[0]["embedding.word_embeddings.weight"].shape == (128, 48)  # 200 → 256 / 2


def test_pp_split_puts_layers_and_tied_head_on_their_stages():
    hf = tiny_hf_bloom(4, layers=4)
    config = model_config_from_hf(hf.config)
    first, last = (hf_to_megatron(hf.state_dict(), config, pp_rank=r, pp_size=2) for r in (0, 1))
    assert "embedding.word_embeddings_layernorm.weight" in first and "output_layer.weight" in last
    assert (
        "decoder.final_layernorm.weight" in last and "decoder.final_layernorm.weight" not in first
    )
    assert torch.equal(
        last["decoder.layers.0.mlp.linear_fc1.weight"],
        hf.state_dict()["transformer.h.2.mlp.dense_h_to_4h.weight"],
    )


def test_tp2_and_pp2_logits_match_hf(tmp_path):
    out = tmp_path / "parity.json"
    layouts = [{"tensor_parallel": 2}, {"pipeline_parallel": 2}]
    spawn(parity_worker, 2, layouts, [4, 6], str(out))
    results = json.loads(out.read_text())
    assert sorted(results) == [
        "tp1-pp2-heads4", "tp1-pp2-heads6", "tp2-pp1-heads4", "tp2-pp1-heads6",
    ]  # fmt: skip
    assert all(diff < ATOL for diff in results.values()), results
