"""Hugging Face round trip: ``BloomForCausalLM`` ↔ bloomkit distributed checkpoints.

Import (``bloomkit import hf``): a HF folder or hub name goes through ``from_pretrained``; every
rank of the chosen TP × PP layout loads its shard (:func:`~bloomkit.pretraining.hf.load_hf_state`)
and saves it as a ``kind: weights`` checkpoint that ``checkpoint.load`` starts training from.

Export (``bloomkit export hf``): megatron-core's dist checkpoints store global shapes, so any
layout loads at TP1 × PP1 in this one process; the full state is renamed back to HF names
(:func:`megatron_to_hf`, the inverse of :func:`~bloomkit.pretraining.hf.hf_to_megatron`), and
the folder gets safetensors, ``config.json`` and a generation config (special token ids from the
tokenizer), the tokenizer, a model card and ``LICENSE-RAIL``. Both write into a temporary folder
that is renamed at the end, and refuse to overwrite an existing output.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bloomkit.console import log
from bloomkit.pretraining import launch
from bloomkit.pretraining.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from bloomkit.pretraining.hf import _LAYER, load_hf_state, model_config_from_hf
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.parallel import ParallelConfig

_TO_HF = {target: hf for hf, (target, _) in _LAYER.items()}


def megatron_to_hf(state: dict[str, Tensor], model: BloomModelConfig) -> dict[str, Tensor]:
    """The HF state dict of a full (TP1 × PP1) megatron-core BLOOM state dict."""
    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        if name.endswith("_extra_state") or name == "output_layer.weight":
            continue  # TransformerEngine bookkeeping; the head is tied to the embedding
        if name.startswith("decoder.layers."):
            index, rest = name.removeprefix("decoder.layers.").split(".", 1)
            module, kind = rest.rsplit(".", 1)
            if module not in _TO_HF:
                raise KeyError(f"unexpected megatron weight {name!r}")
            out[f"transformer.h.{index}.{_TO_HF[module]}.{kind}"] = tensor
        elif name == "embedding.word_embeddings.weight":
            embedding = tensor[: model.vocab_size]
            out["transformer.word_embeddings.weight"] = embedding
            out["lm_head.weight"] = embedding
        elif name.startswith("embedding.word_embeddings_layernorm."):
            out[name.replace("embedding.", "transformer.", 1)] = tensor
        elif name.startswith("decoder.final_layernorm."):
            out[name.replace("decoder.final_layernorm.", "transformer.ln_f.", 1)] = tensor
        else:
            raise KeyError(f"unexpected megatron weight {name!r}")
    return out


BLOOM_SPECIAL_IDS = {"bos": 1, "eos": 2, "pad": 3}
"""BLOOM's tokenizer's ``<s>``, ``</s>`` and ``<pad>``: assumed when an export has no tokenizer."""


def special_token_ids(tokenizer: Any | None = None) -> dict[str, int | None]:
    """``{bos, eos, pad}`` token ids of a Hugging Face tokenizer (None for a token it lacks);
    :data:`BLOOM_SPECIAL_IDS` without one."""
    if tokenizer is None:
        return dict(BLOOM_SPECIAL_IDS)
    return {name: getattr(tokenizer, f"{name}_token_id") for name in BLOOM_SPECIAL_IDS}


def hf_config(model: BloomModelConfig, tokenizer: Any | None = None) -> Any:
    """The ``BloomConfig`` of a bloomkit model config, with ``tokenizer``'s special token ids
    (:func:`special_token_ids`)."""
    from transformers import BloomConfig

    if model.ffn_size != 4 * model.hidden_size:
        raise ValueError(
            f"HF BLOOM has ffn = 4 × hidden; ffn_hidden_size {model.ffn_size} cannot be exported"
        )
    return BloomConfig(
        vocab_size=model.vocab_size,
        hidden_size=model.hidden_size,
        n_layer=model.num_layers,
        n_head=model.num_attention_heads,
        layer_norm_epsilon=model.layernorm_epsilon,
        initializer_range=model.init_method_std,
        hidden_dropout=model.hidden_dropout,
        attention_dropout=model.attention_dropout,
        tie_word_embeddings=True,
        **{f"{name}_token_id": i for name, i in special_token_ids(tokenizer).items()},
    )


def _fresh_output(out: Path) -> Path:
    """A temporary sibling of ``out`` to write into; refuses to touch an existing ``out``."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; nothing was overwritten")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _publish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()  # empty: checked by _fresh_output
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------- import


def load_hf_model(source: str) -> Any:
    """``BloomForCausalLM.from_pretrained`` of a local folder or a hub name, fp32."""
    from transformers import BloomForCausalLM

    folder = Path(source)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json; not a Hugging Face model folder")
    return BloomForCausalLM.from_pretrained(source, dtype=torch.float32)


def _import_rank(source: str, tmp: str, parallel_json: dict[str, Any]) -> None:
    """One rank: build its stage, copy in its shard of the HF weights, save (collective)."""
    import torch.distributed as dist

    from bloomkit.pretraining.model.spec import build_model
    from bloomkit.pretraining.parallel import destroy_parallel, init_parallel

    parallel = ParallelConfig(**parallel_json)
    hf = load_hf_model(source)
    model = model_config_from_hf(hf.config)
    init_parallel(parallel)
    net = build_model(model, parallel)
    load_hf_state(net, hf.state_dict(), model)
    meta = {
        "kind": "weights",
        "step": 0,
        "consumed_samples": 0,
        "model": {**model.model_dump(mode="json"), "ffn_size": model.ffn_size},
        "padded_vocab_size": model.padded_vocab_size(parallel.tensor_parallel),
        "parallel": {
            "tensor_parallel": parallel.tensor_parallel,
            "pipeline_parallel": parallel.pipeline_parallel,
            "data_parallel": parallel.data_parallel,
        },
        "source": source,
    }
    save_checkpoint(Path(tmp), net, None, meta)
    dist.barrier()
    destroy_parallel(process_group=launch.is_launched() and dist.get_world_size() > 1)


def import_hf(source: str, out: Path, parallel: ParallelConfig) -> Path:
    """A HF ``BloomForCausalLM`` (folder or hub name) → a bloomkit checkpoint at ``parallel``."""
    if parallel.data_parallel != 1:
        raise ValueError("import at data_parallel 1: weights are the same on every DP replica")
    load_hf_model(source)  # fail here, before any process starts, on a bad source
    tmp = _fresh_output(out)
    if parallel.world_size == 1:
        from bloomkit.pretraining.parallel import destroy_parallel

        with launch.single_process_env():
            _import_rank(source, str(tmp), parallel.model_dump(mode="json"))
            destroy_parallel(process_group=True)
    else:
        launch.spawn(_import_rank, parallel.world_size, source, str(tmp), parallel.model_dump())
    log.info("imported %s → %s (tp%d × pp%d)", source, out, parallel.tensor_parallel,
             parallel.pipeline_parallel)  # fmt: skip
    return _publish(tmp, out)


# --------------------------------------------------------------------------- export


def load_full_state(checkpoint: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The TP1 × PP1 state dict of any checkpoint (resharded on load), and its metadata."""
    from bloomkit.pretraining.model.spec import build_model
    from bloomkit.pretraining.parallel import destroy_parallel, init_parallel

    one = ParallelConfig()
    layout = {"tensor_parallel": 1, "pipeline_parallel": 1, "data_parallel": 1}
    with launch.single_process_env():
        init_parallel(one)
        try:
            meta = verify_checkpoint(checkpoint)
            fields = {k: v for k, v in meta["model"].items() if k != "ffn_size"}
            model = BloomModelConfig(**fields)
            net = build_model(model, one)
            load_checkpoint(checkpoint, net, None, meta, layout)
            state = {
                k: v.detach().clone()
                for k, v in net.state_dict().items()
                if isinstance(v, Tensor) and not k.endswith("_extra_state")
            }
        finally:
            destroy_parallel(process_group=True)
    return state, meta


def _eval_rows(path: Path | None) -> list[dict[str, Any]]:
    """Group means of an eval results file (per task when it has no groups)."""
    if path is None:
        return []
    from bloomkit.eval.results import load

    results = load(path)
    scored = [(name, g.metrics) for name, g in sorted(results.groups.items())] or [
        (name, t.metrics) for name, t in sorted(results.tasks.items())
    ]
    return [
        {"task": name, "metric": metric, "value": score.value}
        for name, metrics in scored
        for metric, score in sorted(metrics.items())
        if score.value is not None
    ]


def _data_card(path: Path | None) -> dict[str, str] | None:
    """The corpus data card, quoted whole (its headings one level down)."""
    if path is None:
        return None
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    text = "\n".join("#" + line if line.startswith("#") else line for line in lines)
    return {"path": str(path), "summary": text}


def model_card(
    checkpoint: Path,
    meta: dict[str, Any],
    model: BloomModelConfig,
    *,
    data_card: Path | None = None,
    eval_results: Path | None = None,
    languages: list[str] | None = None,
    tokenizer: Path | None = None,
    special_tokens: list[dict[str, Any]] | None = None,
) -> str:
    """The exported folder's README.md; ``special_tokens``: ``{name, token, id}`` rows of the
    shipped ``tokenizer``, whose absence the card states with the ids assumed instead."""
    import jinja2

    template = resources.files("bloomkit.pretraining") / "templates" / "model_card.md.j2"
    env = jinja2.Environment(keep_trailing_newline=True, autoescape=False)
    return env.from_string(template.read_text(encoding="utf-8")).render(
        name=f"bloomkit BLOOM {checkpoint.parent.parent.name or checkpoint.name}",
        model=model,
        parameters=model.num_parameters(),
        meta=meta,
        checkpoint=checkpoint,
        data_card=_data_card(data_card),
        eval_rows=_eval_rows(eval_results),
        languages=languages or [],
        tokenizer=tokenizer,
        special_tokens=special_tokens or [],
        bloom_special_ids=BLOOM_SPECIAL_IDS,
    )


def export_hf(
    checkpoint: Path,
    out: Path,
    *,
    tokenizer: Path | None = None,
    data_card: Path | None = None,
    eval_results: Path | None = None,
    languages: list[str] | None = None,
) -> Path:
    """Write ``checkpoint`` (any layout) as a ``BloomForCausalLM`` folder ``out``; the special
    token ids of ``config.json`` and ``generation_config.json`` are ``tokenizer``'s, or BLOOM's
    1/2/3 (logged and stated in the model card) without one."""
    from transformers import AutoTokenizer, BloomForCausalLM, GenerationConfig

    if tokenizer is not None and not (tokenizer / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer}: no tokenizer.json; not a tokenizer folder")
    if not checkpoint.is_dir():
        raise CheckpointError(f"{checkpoint}: not a checkpoint folder (no such directory)")
    state, meta = load_full_state(checkpoint)
    fields = {k: v for k, v in meta["model"].items() if k != "ffn_size"}
    model = BloomModelConfig(**fields)
    tok = None
    if tokenizer is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer)
        if len(tok) > model.vocab_size:
            raise ValueError(
                f"{tokenizer}: {len(tok)} tokens, but the model's vocabulary is "
                f"{model.vocab_size}; export with the tokenizer the model was trained with"
            )
    else:
        log.warning("no tokenizer given (--tokenizer): none ships with %s, and its config "
                    "assumes BLOOM's special token ids %s", out, BLOOM_SPECIAL_IDS)  # fmt: skip
    ids = special_token_ids(tok)
    config = hf_config(model, tok)
    tmp = _fresh_output(out)
    net = BloomForCausalLM(config)
    missing, unexpected = net.load_state_dict(megatron_to_hf(state, model), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise KeyError(f"export mismatch: missing {missing}, unexpected {unexpected}")
    net.save_pretrained(tmp, safe_serialization=True)
    GenerationConfig(**{f"{name}_token_id": i for name, i in ids.items()}).save_pretrained(tmp)
    special = []
    if tok is not None:
        tok.save_pretrained(tmp)
        special = [{"name": name, "token": getattr(tok, f"{name}_token"), "id": i}
                   for name, i in ids.items()]  # fmt: skip
    card = model_card(checkpoint, meta, model, data_card=data_card, eval_results=eval_results,
                      languages=languages, tokenizer=tokenizer, special_tokens=special)  # fmt: skip
    (tmp / "README.md").write_text(card, encoding="utf-8")
    licence = resources.files("bloomkit") / "LICENSE-RAIL"
    (tmp / "LICENSE-RAIL").write_text(licence.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp / "bloomkit.json").write_text(
        json.dumps({"checkpoint": str(checkpoint), "step": meta["step"]}, indent=2) + "\n",
        encoding="utf-8",
    )
    log.info("exported %s → %s", checkpoint, out)
    return _publish(tmp, out)
