"""Hugging Face ``BloomForCausalLM`` ↔ bloomkit's megatron-core BLOOM: names, shards, config.

Weight mapping (HF name → megatron-core name, ``i`` global layer, ``j`` = ``i`` minus the first
layer of this pipeline stage)::

    transformer.word_embeddings.weight           embedding.word_embeddings.weight       vocab
    transformer.word_embeddings_layernorm.*      embedding.word_embeddings_layernorm.*  —
    transformer.h.i.input_layernorm.*            decoder.layers.j.input_layernorm.*     —
    transformer.h.i.self_attention.query_key_value.*
                                                 decoder.layers.j.self_attention.linear_qkv.*  col
    transformer.h.i.self_attention.dense.*       decoder.layers.j.self_attention.linear_proj.* row
    transformer.h.i.post_attention_layernorm.*   decoder.layers.j.pre_mlp_layernorm.*   —
    transformer.h.i.mlp.dense_h_to_4h.*          decoder.layers.j.mlp.linear_fc1.*      col
    transformer.h.i.mlp.dense_4h_to_h.*          decoder.layers.j.mlp.linear_fc2.*      row
    transformer.ln_f.*                           decoder.final_layernorm.*              —
    lm_head.weight (tied)                        output_layer.weight (last stage, PP > 1) vocab

The fused QKV: BLOOM's ``query_key_value`` output rows are ``[num_heads, 3, head_dim]`` (per
head ``q, k, v``, interleaved across heads). megatron-core's ``linear_qkv`` rows are
``[num_query_groups, (heads_per_group + 2), head_dim]``; with one query head per group (MHA,
as BLOOM) that is the same ``[heads, (q, k, v), head_dim]`` order, so no permutation is needed.
TP splits: ``col`` = dim 0 in contiguous blocks (for QKV a block is whole heads, matching the
ALiBi slope slice of the rank), ``row`` = the weight's dim 1 (its bias is not split), ``vocab`` =
dim 0 after zero-padding the vocabulary to ``padded_vocab_size(tp)``; ``—`` = replicated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bloomkit.pretraining.model.config import BloomModelConfig

_LAYER = {
    "input_layernorm": ("input_layernorm", None),
    "self_attention.query_key_value": ("self_attention.linear_qkv", "col"),
    "self_attention.dense": ("self_attention.linear_proj", "row"),
    "post_attention_layernorm": ("pre_mlp_layernorm", None),
    "mlp.dense_h_to_4h": ("mlp.linear_fc1", "col"),
    "mlp.dense_4h_to_h": ("mlp.linear_fc2", "row"),
}
_LAYER_RE = re.compile(r"transformer\.h\.(\d+)\.(.+)\.(weight|bias)$")

BLOOM_SPECIAL_IDS = {"bos": 1, "eos": 2, "pad": 3}
"""BLOOM's tokenizer's ``<s>``, ``</s>`` and ``<pad>``: assumed when an export has no tokenizer."""


_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class HFFolderError(ValueError):
    """A local folder that is not a complete Hugging Face BLOOM model."""


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise HFFolderError(f"{file}:{err.lineno}: not JSON ({err.msg})") from None


def check_hf_folder(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a local ``BloomForCausalLM`` folder, once its ``model_type`` is
    ``bloom`` and every weight file it needs (each shard its index lists) exists; else an
    error naming the file and field, before ``transformers`` reads anything."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; not a Hugging Face model folder")
    config = _read_json(config_file)
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "bloom":
        raise HFFolderError(
            f"{config_file}: model_type {model_type!r}, expected 'bloom': bloomkit converts "
            "BloomForCausalLM models only"
        )
    for name in _INDEXES:
        if (folder / name).is_file():
            index = _read_json(folder / name)
            weight_map = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(weight_map, dict):
                raise HFFolderError(f"{folder / name}: no weight_map; not a shard index")
            missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
            if missing:
                raise HFFolderError(
                    f"{folder / name}: weight_map lists {', '.join(missing)}, missing from "
                    f"{folder}; copy every shard of the model"
                )
            return config
    if not any((folder / name).is_file() for name in _WEIGHTS):
        raise HFFolderError(f"{folder}: no weights ({' or '.join(_WEIGHTS + _INDEXES)})")
    return config


def model_config_from_hf(hf_config: object, **overrides: object) -> BloomModelConfig:
    """A :class:`BloomModelConfig` with the shapes of a HF ``BloomConfig``."""
    if getattr(hf_config, "model_type", None) != "bloom":
        raise ValueError(
            f"not a BLOOM config: model_type {getattr(hf_config, 'model_type', None)!r}"
        )
    fields = {
        "num_layers": hf_config.n_layer,
        "hidden_size": hf_config.hidden_size,
        "num_attention_heads": hf_config.n_head,
        "vocab_size": hf_config.vocab_size,
        "layernorm_epsilon": hf_config.layer_norm_epsilon,
        "init_method_std": hf_config.initializer_range,
    }
    return BloomModelConfig(**{**fields, **overrides})


def _shard(tensor: Tensor, split: str | None, is_weight: bool, rank: int, size: int) -> Tensor:
    if split == "col" or split == "vocab":
        return tensor.chunk(size, dim=0)[rank]
    if split == "row" and is_weight:
        return tensor.chunk(size, dim=1)[rank]
    return tensor


def _pad_vocab(weight: Tensor, padded: int) -> Tensor:
    if weight.size(0) > padded:
        raise ValueError(f"HF vocabulary {weight.size(0)} is larger than the padded {padded}")
    pad = weight.new_zeros(padded - weight.size(0), weight.size(1))
    return torch.cat([weight, pad], dim=0)


def hf_to_megatron(
    hf_state: Mapping[str, Tensor],
    model: BloomModelConfig,
    *,
    tp_rank: int = 0,
    tp_size: int = 1,
    pp_rank: int = 0,
    pp_size: int = 1,
) -> dict[str, Tensor]:
    """The megatron-core state dict of one (TP rank, PP stage) shard from a HF state dict."""
    if model.num_layers % pp_size:
        raise ValueError(f"num_layers {model.num_layers} not divisible by pp_size {pp_size}")
    per_stage = model.num_layers // pp_size
    first, last = pp_rank * per_stage, (pp_rank + 1) * per_stage
    first_stage, last_stage = pp_rank == 0, pp_rank == pp_size - 1
    padded = model.padded_vocab_size(tp_size)
    out: dict[str, Tensor] = {}
    for name, tensor in hf_state.items():
        if name in ("transformer.word_embeddings.weight", "lm_head.weight"):
            continue
        match = _LAYER_RE.match(name)
        if match:
            index, module, kind = int(match[1]), match[2], match[3]
            if module not in _LAYER:
                raise KeyError(f"unexpected BLOOM layer weight {name!r}")
            if first <= index < last:
                target, split = _LAYER[module]
                out[f"decoder.layers.{index - first}.{target}.{kind}"] = _shard(
                    tensor, split, kind == "weight", tp_rank, tp_size
                )
        elif name.startswith("transformer.word_embeddings_layernorm."):
            if first_stage:
                out[name.replace("transformer.", "embedding.", 1)] = tensor
        elif name.startswith("transformer.ln_f."):
            if last_stage:
                out[name.replace("transformer.ln_f.", "decoder.final_layernorm.", 1)] = tensor
        else:
            raise KeyError(f"unexpected BLOOM weight {name!r}")
    embedding = _pad_vocab(hf_state["transformer.word_embeddings.weight"], padded)
    shard = _shard(embedding, "vocab", True, tp_rank, tp_size)
    if first_stage:
        out["embedding.word_embeddings.weight"] = shard
    if last_stage and not first_stage:
        out["output_layer.weight"] = shard
    return out


def load_hf_state(
    net: torch.nn.Module, hf_state: Mapping[str, Tensor], model: BloomModelConfig
) -> None:
    """Copy a HF BLOOM state dict into this rank's megatron-core model (every tensor checked)."""
    from megatron.core import parallel_state as ps

    shard = hf_to_megatron(
        hf_state,
        model,
        tp_rank=ps.get_tensor_model_parallel_rank(),
        tp_size=ps.get_tensor_model_parallel_world_size(),
        pp_rank=ps.get_pipeline_model_parallel_rank(),
        pp_size=ps.get_pipeline_model_parallel_world_size(),
    )
    own = {k: v for k, v in net.state_dict().items() if not k.endswith("_extra_state")}
    missing, unexpected = sorted(set(own) - set(shard)), sorted(set(shard) - set(own))
    if missing or unexpected:
        raise KeyError(
            f"HF → megatron mapping mismatch: missing {missing}, unexpected {unexpected}"
        )
    for name, tensor in shard.items():
        if own[name].shape != tensor.shape:
            raise ValueError(
                f"{name}: shape {tuple(tensor.shape)} from HF, {tuple(own[name].shape)} in model"
            )
    with torch.no_grad():
        for name, tensor in shard.items():
            own[name].copy_(tensor)
