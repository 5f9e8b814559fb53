"""BLOOM configs, presets, ALiBi slopes, and the refusals of bad layouts."""

from __future__ import annotations

import math

import pytest
import torch

from bloomkit.config import ConfigError, validate
from bloomkit.pretraining.model.alibi import alibi_slopes, alibi_slopes_for_rank
from bloomkit.pretraining.model.config import BloomModelConfig, bloom_config
from bloomkit.pretraining.parallel import ParallelConfig, check_world_size
from bloomkit.pretraining.train import PretrainConfig

# Hugging Face model cards / safetensors metadata of bigscience/bloom-*
PUBLISHED = {
    "bloom-560m": 559_214_592,
    "bloom-1b1": 1_065_314_304,
    "bloom-1b7": 1_722_408_960,
    "bloom-3b": 3_002_557_440,
    "bloom-7b1": 7_069_016_064,
    "bloom-176b": 176_247_271_424,
}
SHAPES = {
    "bloom-560m": (24, 1024, 16), "bloom-1b1": (24, 1536, 16), "bloom-1b7": (24, 2048, 16),
    "bloom-3b": (30, 2560, 32), "bloom-7b1": (30, 4096, 32), "bloom-176b": (70, 14336, 112),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_have_published_shapes_and_sizes(name):
    config = bloom_config(name)
    assert (config.num_layers, config.hidden_size, config.num_attention_heads) == SHAPES[name]
    assert config.padded_vocab_size(tensor_parallel=8) == 250_880
    assert config.num_parameters() == PUBLISHED[name]


def test_parameter_count_matches_hf_model():
    from transformers import BloomConfig, BloomForCausalLM

    hf = BloomForCausalLM(BloomConfig(vocab_size=256, hidden_size=64, n_layer=3, n_head=4))
    config = BloomModelConfig(num_layers=3, hidden_size=64, num_attention_heads=4, vocab_size=256)
    assert config.num_parameters() == sum(p.numel() for p in hf.parameters())


@pytest.mark.parametrize("heads", [1, 4, 6, 12, 16, 20, 112])
def test_alibi_slopes_match_hf_bloom(heads):
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    hf = build_alibi_tensor(torch.ones(1, 2), heads, torch.float64)[:, 0, 1]  # slope × position 1
    assert torch.allclose(torch.tensor(alibi_slopes(heads), dtype=torch.float64), hf, rtol=1e-6)


def test_alibi_power_of_two_formula_and_tp_slices():
    assert alibi_slopes(8) == [2 ** (-8 * k / 8) for k in range(1, 9)]
    six = alibi_slopes(6)  # 4 slopes for 4 heads, then odd terms of the 8-head sequence
    assert six[:4] == alibi_slopes(4) and six[4:] == [2**-1, 2**-3]
    for tp in (1, 2, 3, 6):
        joined = [s for r in range(tp) for s in alibi_slopes_for_rank(6, r, tp)]
        assert joined == six
    assert math.isclose(alibi_slopes_for_rank(112, 3, 4)[0], alibi_slopes(112)[84])


def test_unknown_preset_suggests_the_near_name():
    with pytest.raises(ValueError, match="did you mean 'bloom-560m'"):
        BloomModelConfig(preset="bloom-560")


def test_preset_fields_can_be_overridden():
    config = BloomModelConfig(preset="bloom-1b7", seq_length=512)
    assert (config.hidden_size, config.seq_length) == (2048, 512)


def test_layout_that_does_not_divide_is_refused_with_every_reason():
    data = {
        "model": {"preset": "tiny", "num_attention_heads": 4, "num_layers": 3},
        "parallel": {"tensor_parallel": 3, "pipeline_parallel": 2, "data_parallel": 2},
        "data": {"blend": {"/x/tokens": 1.0}},
        "train": {"global_batch_size": 6, "micro_batch_size": 2},
    }
    with pytest.raises(ConfigError) as err:
        validate(PretrainConfig, data)
    text = str(err.value)
    assert "num_attention_heads 4 % parallel.tensor_parallel 3" in text
    assert "num_layers 3 % parallel.pipeline_parallel 2" in text
    assert "global_batch_size 6 % (micro_batch_size 2 × data_parallel 2)" in text


def test_world_size_mismatch_names_every_factor():
    with pytest.raises(ValueError) as err:
        check_world_size(ParallelConfig(tensor_parallel=2, pipeline_parallel=2, data_parallel=2), 4)
    assert "tensor_parallel 2 × pipeline_parallel 2 × data_parallel 2 = 8" in str(err.value)
    assert "world size is 4" in str(err.value)


def test_missing_dataset_is_refused_before_launch(tmp_path):
    config = validate(PretrainConfig, {"data": {"blend": {str(tmp_path / "nope"): 1.0}}})
    with pytest.raises(FileNotFoundError, match=r"nope\.bin, .*nope\.idx"):
        config.data.check_files()


def test_byte_corpus_needs_a_byte_vocabulary(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size 100 < 256"):
        validate(
            PretrainConfig,
            {
                "model": {"preset": "tiny", "vocab_size": 100},
                "data": {"byte_corpus": str(tmp_path)},
            },
        )


def test_flops_per_token_formula():
    config = BloomModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=32)
    matmul = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 256 * 64
    assert config.flops_per_token() == 6 * matmul + 12 * 2 * 64 * 32
