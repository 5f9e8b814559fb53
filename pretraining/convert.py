"""Hugging Face round trip: ``BloomForCausalLM`` ↔ bloomkit distributed checkpoints.

Import (``bloomkit import hf``): a HF folder or hub name goes through ``from_pretrained``; every
rank of the chosen TP × PP layout loads its shard (:func:`~bloomkit.pretraining.hf.load_hf_state`)
and saves it as a ``kind: weights`` checkpoint that ``checkpoint.load`` starts training from.

Export (``bloomkit export hf``): megatron-core's dist checkpoints store global shapes, so any
layout loads at TP1 × PP1 in this one process; the full state is renamed back to HF names
(:func:`megatron_to_hf`, the inverse of :func:`~bloomkit.pretraining.hf.hf_to_megatron`), and
the folder gets safetensors, ``config.json`` and a generation config (special token ids from the
tokenizer), the tokenizer, a model card (:mod:`~bloomkit.pretraining.model_card`) and
``LICENSE-RAIL``. Both check their inputs first (another architecture, a missing shard, a
tokenizer larger than the vocabulary: an error naming the file), write into a temporary folder
renamed at the end (removed on error), and refuse to overwrite an existing output.
:func:`checkpoint_logits` runs a checkpoint at any layout, for parity checks of both directions.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bloomkit.console import log
from bloomkit.pretraining import launch
from bloomkit.pretraining.checkpoint import (
    load_checkpoint,
    read_meta,
    save_checkpoint,
    verify_checkpoint,
)
from bloomkit.pretraining.hf import (
    _LAYER,
    BLOOM_SPECIAL_IDS,
    HFFolderError,
    check_hf_folder,
    load_hf_state,
    model_config_from_hf,
)
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.model_card import model_card
from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel
from bloomkit.rundir import atomic_path

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


def _refuse_existing(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not empty; nothing was overwritten")


@contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that becomes ``out`` in one rename when the block ends
    without error, and is removed otherwise; refuses to touch an existing, non-empty ``out``."""
    _refuse_existing(out)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        yield tmp


def _run_ranks(fn: Callable[..., None], parallel: ParallelConfig, *args: Any) -> None:
    """``fn(*args, parallel_json)`` in this process (one rank) or in ``world_size`` spawned
    ranks; ``fn`` initialises the layout and tears down the process group."""
    layout = parallel.model_dump(mode="json")
    if parallel.world_size == 1:
        with launch.single_process_env():
            try:
                fn(*args, layout)
            finally:
                destroy_parallel(process_group=True)  # also when fn failed half-way
    else:
        launch.spawn(fn, parallel.world_size, *args, layout)


# --------------------------------------------------------------------------- import


def load_hf_model(source: str) -> Any:
    """``BloomForCausalLM.from_pretrained`` of a local folder or a hub name, fp32; a local
    folder is checked first (:func:`~bloomkit.pretraining.hf.check_hf_folder`), a hub model's
    ``model_type`` before its weights are read."""
    from transformers import AutoConfig, BloomForCausalLM

    folder = Path(source)
    if folder.is_dir():
        check_hf_folder(folder)
    else:
        try:
            model_type = AutoConfig.from_pretrained(source).model_type
        except OSError as err:
            raise OSError(f"{source}: not a local folder nor a cached hub model: {err}") from None
        if model_type != "bloom":
            raise HFFolderError(f"{source}: config.json model_type {model_type!r}, not 'bloom'")
    return BloomForCausalLM.from_pretrained(source, dtype=torch.float32)


def _import_rank(source: str, tmp: str, parallel_json: dict[str, Any]) -> None:
    """One rank: build its stage, copy in its shard of the HF weights, save (collective)."""
    import torch.distributed as dist

    from bloomkit.pretraining.model.spec import build_model

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
        "parallel": _layout(parallel),
        "source": source,
    }
    save_checkpoint(Path(tmp), net, None, meta)
    dist.barrier()
    destroy_parallel(process_group=True)


def import_hf(source: str, out: Path, parallel: ParallelConfig) -> Path:
    """A HF ``BloomForCausalLM`` (folder or hub name) → a bloomkit checkpoint at ``parallel``."""
    if parallel.data_parallel != 1:
        raise ValueError("import at data_parallel 1: weights are the same on every DP replica")
    load_hf_model(source)  # fail here, before any process starts, on a bad source
    with _staged(out) as tmp:
        _run_ranks(_import_rank, parallel, source, str(tmp))
    log.info("imported %s → %s (tp%d × pp%d)", source, out, parallel.tensor_parallel,
             parallel.pipeline_parallel)  # fmt: skip
    return out


# --------------------------------------------------------------------------- checkpoints


def _layout(parallel: ParallelConfig) -> dict[str, int]:
    """The ``parallel`` entry of a checkpoint's metadata."""
    return {
        k: getattr(parallel, k) for k in ("tensor_parallel", "pipeline_parallel", "data_parallel")
    }


def _model_config(meta: dict[str, Any]) -> BloomModelConfig:
    return BloomModelConfig(**{k: v for k, v in meta["model"].items() if k != "ffn_size"})


def _load_model(checkpoint: Path, parallel: ParallelConfig) -> tuple[Any, dict[str, Any]]:
    """This rank's stage of ``checkpoint`` at ``parallel`` (resharded on load), and its
    metadata; needs :func:`init_parallel` (collective)."""
    from bloomkit.pretraining.model.spec import build_model

    meta = verify_checkpoint(checkpoint)
    net = build_model(_model_config(meta), parallel)
    load_checkpoint(checkpoint, net, None, meta, _layout(parallel))
    return net, meta


def load_full_state(checkpoint: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The TP1 × PP1 state dict of any checkpoint (resharded on load), and its metadata."""
    one = ParallelConfig()
    with launch.single_process_env():
        init_parallel(one)
        try:
            net, meta = _load_model(checkpoint, one)
            state = {
                k: v.detach().clone()
                for k, v in net.state_dict().items()
                if isinstance(v, Tensor) and not k.endswith("_extra_state")
            }
        finally:
            destroy_parallel(process_group=True)
    return state, meta


def _logits_rank(checkpoint: str, tokens: Tensor, out: str, parallel_json: dict) -> None:
    """One rank: load its stage, run the tokens through the pipeline; the last stage's TP
    rank 0 saves the logits (collective)."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from bloomkit.pretraining.step import forward_logits

    parallel = ParallelConfig(**parallel_json)
    init_parallel(parallel)
    net, meta = _load_model(Path(checkpoint), parallel)
    logits = forward_logits(net, tokens)
    first_replica = ps.get_data_parallel_rank() == 0 and ps.get_tensor_model_parallel_rank() == 0
    if logits is not None and first_replica:
        torch.save(logits[..., : meta["model"]["vocab_size"]].float().contiguous(), out)
    dist.barrier()
    destroy_parallel(process_group=True)


def checkpoint_logits(checkpoint: Path, tokens: Tensor, parallel: ParallelConfig) -> Tensor:
    """Logits ``[b, s, vocab]`` (padding cut) of ``checkpoint`` loaded at ``parallel``, for
    int64 ``tokens [b, s]``: in this process at TP1 × PP1, else in spawned ranks."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "logits.pt"
        _run_ranks(_logits_rank, parallel, str(checkpoint), tokens, str(out))
        return torch.load(out)


# --------------------------------------------------------------------------- export


def _load_tokenizer(folder: Path, model: BloomModelConfig) -> Any:
    """The tokenizer to ship, refused when it has more tokens than the model's vocabulary."""
    from transformers import AutoTokenizer

    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer.json; not a tokenizer folder")
    tok = AutoTokenizer.from_pretrained(folder)
    if len(tok) > model.vocab_size:
        raise ValueError(
            f"{folder / 'tokenizer.json'}: {len(tok)} tokens, but the checkpoint's model."
            f"vocab_size is {model.vocab_size}; export with the tokenizer the model was "
            "trained with"
        )
    return tok


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
    1/2/3 (logged and stated in the model card) without one. Every input is checked before
    the weights load, and ``out`` appears only once complete."""
    from transformers import BloomForCausalLM, GenerationConfig

    _refuse_existing(out)
    meta = read_meta(checkpoint)
    model = _model_config(meta)
    tok = _load_tokenizer(tokenizer, model) if tokenizer is not None else None
    ids = special_token_ids(tok)
    special = []
    if tok is not None:
        special = [{"name": name, "token": getattr(tok, f"{name}_token"), "id": i}
                   for name, i in ids.items()]  # fmt: skip
    else:
        log.warning("no tokenizer given (--tokenizer): none ships with %s, and its config "
                    "assumes BLOOM's special token ids %s", out, BLOOM_SPECIAL_IDS)  # fmt: skip
    card = model_card(checkpoint, meta, model, data_card=data_card, eval_results=eval_results,
                      languages=languages, tokenizer=tokenizer, special_tokens=special)  # fmt: skip
    config = hf_config(model, tok)
    state, meta = load_full_state(checkpoint)
    net = BloomForCausalLM(config)
    missing, unexpected = net.load_state_dict(megatron_to_hf(state, model), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise KeyError(f"export mismatch: missing {missing}, unexpected {unexpected}")
    with _staged(out) as tmp:
        net.save_pretrained(tmp, safe_serialization=True)
        GenerationConfig(**{f"{name}_token_id": i for name, i in ids.items()}).save_pretrained(tmp)
        if tok is not None:
            tok.save_pretrained(tmp)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        licence = resources.files("bloomkit") / "LICENSE-RAIL"
        (tmp / "LICENSE-RAIL").write_text(licence.read_text(encoding="utf-8"), encoding="utf-8")
        provenance = {"checkpoint": str(checkpoint), "step": meta["step"]}
        (tmp / "bloomkit.json").write_text(json.dumps(provenance, indent=2) + "\n")
    log.info("exported %s → %s", checkpoint, out)
    return out
