"""Numerical checks against Hugging Face ``BloomForCausalLM``, at any parallel layout.

:func:`hf_logits_parity` builds a small random HF BLOOM (the same on every rank: seeded),
loads it into bloomkit's megatron-core BLOOM through :mod:`.hf` at the current TP × PP, and
returns the largest absolute logit difference. Run it in one process, or in every rank of a
:func:`bloomkit.pretraining.launch.spawn` / ``torchrun`` job via :func:`parity_worker`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bloomkit.pretraining.hf import load_hf_state, model_config_from_hf
from bloomkit.pretraining.model.spec import build_model
from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel
from bloomkit.pretraining.step import forward_logits


def tiny_hf_bloom(
    heads: int, *, hidden: int = 48, layers: int = 2, vocab: int = 200, seed: int = 0
):
    """A random fp32 ``BloomForCausalLM`` whose every weight (LayerNorms and biases included)
    is perturbed, so a wrong mapping cannot hide behind HF's ones/zeros init."""
    from transformers import BloomConfig, BloomForCausalLM

    torch.manual_seed(seed)
    config = BloomConfig(vocab_size=vocab, hidden_size=hidden, n_layer=layers, n_head=heads)
    model = BloomForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def hf_logits_parity(
    parallel: ParallelConfig, heads: int, attention_backend: str = "local"
) -> float | None:
    """Max |logits_HF − logits_megatron| (on the last stage's TP rank 0; None elsewhere)."""
    from megatron.core import parallel_state as ps

    hf = tiny_hf_bloom(heads)
    config = model_config_from_hf(hf.config, attention_backend=attention_backend)
    tokens = torch.randint(
        0, hf.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected = hf(tokens).logits
    model = build_model(config, parallel)
    load_hf_state(model, hf.state_dict(), config)
    logits = forward_logits(model, tokens)
    if logits is None or ps.get_tensor_model_parallel_rank() != 0:
        return None
    return (logits[..., : hf.config.vocab_size].float() - expected).abs().max().item()


def parity_worker(layouts: list[dict], heads: list[int], out: str) -> None:
    """Every rank: for each layout and head count, the parity check; rank reporting writes JSON."""
    results: dict[str, float] = {}
    for layout in layouts:
        parallel = ParallelConfig(**layout)
        init_parallel(parallel)
        for n in heads:
            diff = hf_logits_parity(parallel, n)
            if diff is not None:
                results[f"tp{parallel.tensor_parallel}-pp{parallel.pipeline_parallel}-heads{n}"] = (
                    diff
                )
        destroy_parallel()
    gathered: list[dict] = [{}] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, results)
    if torch.distributed.get_rank() == 0:
        merged = {k: v for part in gathered for k, v in part.items()}
        Path(out).write_text(json.dumps(merged, indent=2))
    destroy_parallel(process_group=True)


def train_worker(configs: list[dict], outs: list[str]) -> None:
    """Every rank: train each config (same world size) in turn into its out folder."""
    from bloomkit.pretraining.train import PretrainConfig, train_rank

    for config, out in zip(configs, outs, strict=True):
        train_rank(PretrainConfig.model_validate(config), Path(out))
    destroy_parallel(process_group=True)
