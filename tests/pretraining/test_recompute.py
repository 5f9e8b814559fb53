"""Activation recomputation: the same training with dropout, far fewer activations kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bloomkit.config import validate
from bloomkit.pretraining.checks import train_worker
from bloomkit.pretraining.launch import spawn
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import run, tiny_config

DROPOUT = {"hidden_dropout": 0.1, "attention_dropout": 0.1}


def with_recompute(prefix: Path, mode: str, **parallel: int) -> PretrainConfig:
    raw = tiny_config(prefix, steps=3, parallel=parallel).model_dump(mode="json")
    raw["model"] |= {"recompute": mode, **DROPOUT}
    return validate(PretrainConfig, raw)


def test_recomputed_training_follows_the_plain_one_with_dropout(token_prefix, tmp_path):
    """Rerun layers must draw the dropout masks of the first run (RNG states restored), so the
    losses and the validation loss match step by step."""
    runs = {mode: run(with_recompute(token_prefix, mode), tmp_path / mode)
            for mode in ("none", "full", "selective")}  # fmt: skip
    for mode in ("full", "selective"):
        assert runs[mode]["losses"] == pytest.approx(runs["none"]["losses"], rel=1e-6), mode
        assert runs[mode]["valid_loss"] == pytest.approx(runs["none"]["valid_loss"], rel=1e-6)
    dropped = run(with_recompute(token_prefix, "none"), tmp_path / "again")["losses"]
    assert dropped == runs["none"]["losses"]  # deterministic: a difference above is real


def test_recompute_at_tensor_parallel_2_with_dropout(token_prefix, tmp_path):
    """TP regions draw dropout from megatron's tracked RNG: rerun at TP2, the same losses."""
    configs = [with_recompute(token_prefix, mode, tensor_parallel=2).model_dump(mode="json")
               for mode in ("none", "full")]  # fmt: skip
    outs = [tmp_path / "none", tmp_path / "full"]
    for out in outs:
        out.mkdir()
    spawn(train_worker, 2, configs, [str(o) for o in outs])
    none, full = (json.loads((o / "summary.json").read_text()) for o in outs)
    assert full["losses"] == pytest.approx(none["losses"], rel=1e-6)


def saved_activation_bytes(mode: str, seq_length: int = 256) -> int:
    """Bytes of the distinct tensors autograd keeps for backward in one training forward (loss
    per token) of 4 layers, weights not counted."""
    from bloomkit.pretraining.launch import single_process_env
    from bloomkit.pretraining.model.spec import build_model
    from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel

    config = BloomModelConfig(preset="tiny", num_layers=4, seq_length=seq_length,
                              recompute=mode, **DROPOUT)  # fmt: skip
    tokens = torch.randint(0, 256, (2, seq_length), generator=torch.Generator().manual_seed(0))
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with single_process_env():
        init_parallel(ParallelConfig())
        try:
            model = build_model(config, ParallelConfig()).train()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model(tokens, None, None, labels=tokens).sum()
            loss.backward()  # outside the hooks: what a rerun keeps is not counted
            weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        finally:
            destroy_parallel(process_group=True)
    return sum(n for ptr, n in storages.items() if ptr not in weights)


def test_recompute_keeps_fewer_activations():
    kept = {mode: saved_activation_bytes(mode) for mode in ("none", "selective", "full")}
    assert kept["selective"] < 0.6 * kept["none"], kept  # the s × s scores are not kept
    assert kept["full"] < 0.2 * kept["none"], kept  # only each layer's input


def test_recompute_layers_without_full_recompute_is_refused():
    with pytest.raises(ValueError, match="recompute_num_layers 2 applies to recompute: full"):
        BloomModelConfig(preset="tiny", recompute="selective", recompute_num_layers=2)
