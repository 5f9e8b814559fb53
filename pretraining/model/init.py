"""Layout-independent initialization: the same model at every TP × PP layout.

megatron-core initializes a weight from the RNG state of the rank that holds it, so a pipeline
stage that starts at layer 12 draws different numbers than one process that built layers 0–11
first. :func:`portable_init_` instead draws every weight from its own generator, seeded by the
run seed and the weight's *global* name (layer index counted over the whole model), generates
the full unsharded tensor and keeps this rank's TP slice. Any layout thus starts from the same
model, which makes layout changes testable (same loss curve) and runs comparable.

Values (BLOOM / Megatron-DeepSpeed): weights ~ N(0, std), except the output projections of
attention and MLP (``linear_proj``, ``linear_fc2``) ~ N(0, std / √(2·layers)); biases 0;
LayerNorm weight 1, bias 0. The tied LM head copy on the last stage gets the embedding's values.
Cost: one full-size CPU tensor per weight at start-up (as megatron's CPU initialization).
"""

from __future__ import annotations

import math
import re
import zlib

import torch

from bloomkit.pretraining.model.config import BloomModelConfig

_LAYER = re.compile(r"^decoder\.layers\.(\d+)\.")
_SCALED = ("self_attention.linear_proj.weight", "mlp.linear_fc2.weight")


def global_name(name: str, layer_offset: int) -> str:
    """``decoder.layers.j.…`` of a stage → ``decoder.layers.(j + offset).…``; the tied head →
    the word embedding."""
    if name == "output_layer.weight":
        return "embedding.word_embeddings.weight"
    return _LAYER.sub(lambda m: f"decoder.layers.{int(m[1]) + layer_offset}.", name)


@torch.no_grad()
def portable_init_(model: torch.nn.Module, config: BloomModelConfig, seed: int) -> None:
    """Re-initialize ``model`` (this rank's shard) as described in the module doc."""
    from megatron.core import parallel_state as ps

    tp_rank = ps.get_tensor_model_parallel_rank()
    tp_size = ps.get_tensor_model_parallel_world_size()
    offset = ps.get_pipeline_model_parallel_rank() * (
        config.num_layers // ps.get_pipeline_model_parallel_world_size()
    )
    scaled_std = config.init_method_std / math.sqrt(2.0 * config.num_layers)
    for name, param in model.named_parameters():
        full_name = global_name(name, offset)
        if name.endswith(".bias"):
            param.zero_()
        elif param.dim() == 1:  # LayerNorm weights
            param.fill_(1.0)
        else:
            std = scaled_std if name.endswith(_SCALED) else config.init_method_std
            split = getattr(param, "tensor_model_parallel", False)
            dim = getattr(param, "partition_dim", 0)
            shape = list(param.shape)
            if split:
                shape[dim] *= tp_size
            generator = torch.Generator().manual_seed(
                seed * 1_000_003 + zlib.crc32(full_name.encode())
            )
            full = torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
            shard = full.chunk(tp_size, dim=dim)[tp_rank] if split else full
            param.copy_(shard.to(param.dtype))
