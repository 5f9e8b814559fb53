"""LoRA on one GPU or CPU: ``finetune_lora(config, run) -> dict``.

Low-rank adapters (Hu et al. 2021, arXiv:2106.09685) on a Hugging Face ``BloomForCausalLM``
with ``peft``: every targeted linear layer ``W`` gains ``(alpha / r) · B A`` with ``A`` of shape
``[r, in]`` and ``B`` ``[out, r]`` (``B`` starts at zero, so step 0 is the base model); only
``A`` and ``B`` train. BLOOM's attention has one fused ``query_key_value`` projection, so one
adapter covers Q, K and V; its MLP is ``dense_h_to_4h`` / ``dense_4h_to_h``.

The rows are the SFT rows (:func:`~.sft_data.prepare_sft_data`: templates, response-only loss,
packing). A packed row goes through the HF model with a 4-D block-diagonal causal mask, and
ALiBi by key position (:func:`packed_alibi`), so each example sees only itself. Outputs::

    RUN/sft/            packed rows and report.json (read, kept, dropped_<reason>, truncated)
    RUN/adapter/        the trained adapter (``PeftModel.from_pretrained(base, RUN/adapter)``)
    RUN/hf/             adapters merged into the weights: a plain BloomForCausalLM folder with
                        the tokenizer, a model card and LICENSE-RAIL (no ``peft`` needed)
    RUN/summary.json    losses, held-out loss before/after (and every ``eval_interval``
                        steps), tokens/s, parameter counts, ``stopped``: why it stopped early
                        (``early_stopping``, :mod:`bloomkit.pretraining.early_stopping`)
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.finetuning.sft import (
    SFTDataConfig,
    _sample_generation,
    is_checkpoint,
    resolve_tokenizer,
    save_tuned_tokenizer,
    training_template,
)
from bloomkit.finetuning.sft_data import HFTokenizer, Tokenizer, prepare_sft_data
from bloomkit.finetuning.templates import PromptTemplate
from bloomkit.pretraining.data import PackedDataset
from bloomkit.pretraining.early_stopping import EarlyStopping, EarlyStoppingConfig
from bloomkit.pretraining.optim import OptimConfig, learning_rate, param_groups
from bloomkit.rundir import RunDir, atomic_path, atomic_write_json

BLOOM_LINEAR = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
"""The linear layers of a BLOOM block: fused QKV, attention output, MLP up and down."""


class LoRAConfig(Section):
    """``bloomkit finetune lora`` config: base model, adapters, data, optimizer, loop."""

    init_from: str
    """A Hugging Face ``BloomForCausalLM`` folder or hub name (loaded in fp32)."""
    data: SFTDataConfig
    seq_length: Annotated[int, Field(ge=8)] = 512
    """Positions per packed row (ALiBi: any length the memory allows)."""
    r: Annotated[int, Field(ge=1)] = 8
    """Rank of each adapter: ``r × (in + out)`` trained parameters per targeted layer."""
    alpha: Annotated[float, Field(gt=0)] = 16.0
    """The update is scaled by ``alpha / r``."""
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Dropout on the adapter's input (training only)."""
    target_modules: Annotated[list[str], Field(min_length=1)] = list(BLOOM_LINEAR)
    """Which of :data:`BLOOM_LINEAR` get adapters (in every layer)."""
    optim: OptimConfig = OptimConfig(lr=2e-4, warmup_steps=2, weight_decay=0.0)
    steps: Annotated[int, Field(ge=1)] = 50
    batch_size: Annotated[int, Field(ge=1)] = 8
    """Packed rows per step (tokens/step = this × seq_length)."""
    log_interval: Annotated[int, Field(ge=1)] = 10
    eval_interval: Annotated[int, Field(ge=1)] | None = None
    """Also score the held-out split every this many steps (``null``: before and after
    training only)."""
    early_stopping: EarlyStoppingConfig | None = None
    """Stop when the held-out loss stops falling (needs ``eval_interval``); the adapters
    trained so far are saved, merged and exported as after the last step."""
    seed: int = 1234
    """Seeds the adapters' init, dropout and the order of the rows."""

    @model_validator(mode="after")
    def _steps_schedule(self) -> LoRAConfig:
        if self.optim.in_samples:
            raise ValueError(
                "optim.warmup_samples/decay_samples: LoRA schedules the LR in steps; "
                "use optim.warmup_steps and optim.decay_steps"
            )
        if self.early_stopping is not None and not (
            self.eval_interval and self.data.valid_fraction
        ):
            raise ValueError(
                "early_stopping acts on the held-out loss: set eval_interval (now "
                f"{self.eval_interval}) and data.valid_fraction > 0 (now "
                f"{self.data.valid_fraction})"
            )
        return self

    @field_validator("target_modules")
    @classmethod
    def _bloom_modules(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in BLOOM_LINEAR:
                close = difflib.get_close_matches(name, BLOOM_LINEAR, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"unknown BLOOM module {name!r}; {hint}known: {', '.join(BLOOM_LINEAR)}"
                )
        return names


def packed_attention_mask(segment_ids: Tensor, dtype: torch.dtype) -> Tensor:
    """``[b, 1, s, s]`` additive mask: 0 where query ``i`` may see key ``j`` (same example,
    ``j <= i``), the dtype's minimum elsewhere. HF BLOOM takes a 4-D mask as given."""
    s = segment_ids.size(1)
    causal = torch.ones(s, s, dtype=torch.bool, device=segment_ids.device).tril()
    allowed = (segment_ids[:, None, :, None] == segment_ids[:, None, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def packed_alibi(attention_mask: Tensor, num_heads: int, dtype: torch.dtype) -> Tensor:
    """BLOOM's ALiBi, also for a 4-D packed mask: biases by key position, as HF does without
    padding. An example starting at ``o`` gets ``slope × o`` more on every key it may see, one
    constant per query row, which softmax removes, so positions need no reset."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    if attention_mask.dim() == 4:
        b, s = attention_mask.shape[0], attention_mask.shape[-1]
        attention_mask = torch.ones(b, s, device=attention_mask.device)
    return build_alibi_tensor(attention_mask, num_heads, dtype)


def masked_loss(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(sum of the per-token loss over loss_mask, number of loss tokens)`` of packed rows."""
    dtype = next(model.parameters()).dtype
    mask = packed_attention_mask(batch["segment_ids"], dtype)
    logits = model(input_ids=batch["tokens"], attention_mask=mask, use_cache=False).logits
    per_token = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), batch["labels"].flatten(), reduction="none"
    )
    weights = batch["loss_mask"].flatten()
    return (per_token * weights).sum(), weights.sum()


def _batches(data: PackedDataset, size: int) -> Iterator[dict[str, Tensor]]:
    """Endless ``[size, seq_length]`` batches of ``data``'s sample sequence."""
    index = 0
    while True:
        samples = [data[index + i] for i in range(size)]
        index += size
        yield {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def real_tokens(batch: dict[str, Tensor]) -> int:
    """Non-padding positions: each row's examples end in a trained label, padding follows."""
    trained = batch["loss_mask"] > 0
    last = trained.size(1) - trained.flip(1).int().argmax(1)
    return int(torch.where(trained.any(1), last, 0).sum())


def held_out_loss(model: torch.nn.Module, folder: Path, seq_length: int) -> float:
    """Mean response-token loss over every row of a packed split (``model`` left in eval)."""
    data = PackedDataset(folder, seq_length, seed=0, shuffle=False)
    total, count = 0.0, 0.0
    model.eval()
    with torch.no_grad():
        for row in range(data.rows):
            loss, n = masked_loss(model, {k: v[None] for k, v in data[row].items()})
            total, count = total + float(loss), count + float(n)
    return total / count


def lora_model(config: LoRAConfig) -> Any:
    """The base model (fp32, packed-row ALiBi) wrapped with fresh adapters; base frozen."""
    from peft import LoraConfig, get_peft_model

    from bloomkit.pretraining.convert import load_hf_model

    if is_checkpoint(config.init_from):
        raise ValueError(
            f"init_from {config.init_from} is a bloomkit checkpoint; LoRA tunes a Hugging Face "
            f"model: bloomkit export hf {config.init_from} HF_DIR, then init_from: HF_DIR"
        )
    net = load_hf_model(config.init_from)
    net.transformer.build_alibi_tensor = packed_alibi
    torch.manual_seed(config.seed)
    adapters = LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=list(config.target_modules), bias="none", task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(net, adapters)


def train(model: Any, config: LoRAConfig, folder: Path, valid: Path | None) -> dict[str, Any]:
    """Adapters trained on the packed rows in ``folder``; losses and throughput, and the
    held-out loss on ``valid`` every ``eval_interval`` steps (time not counted)."""
    data = PackedDataset(folder, config.seq_length, seed=config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        param_groups(model, config.optim.weight_decay), lr=config.optim.lr,
        betas=(config.optim.beta1, config.optim.beta2), eps=config.optim.eps,
    )  # fmt: skip
    batches = _batches(data, config.batch_size)
    early = EarlyStopping(config.early_stopping) if config.early_stopping else None
    losses, tokens, eval_s = [], 0, 0.0
    evals: list[dict[str, float]] = []
    stopped: str | None = None
    start = time.perf_counter()
    model.train()
    for step in range(config.steps):
        batch = next(batches)
        loss_sum, count = masked_loss(model, batch)
        loss = loss_sum / count.clamp(min=1)
        optimizer.zero_grad()
        loss.backward()
        if config.optim.clip_grad:
            torch.nn.utils.clip_grad_norm_(params, config.optim.clip_grad)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config.optim, step, config.steps)
        optimizer.step()
        losses.append(loss.item())
        tokens += real_tokens(batch)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"step {step + 1}: loss is {losses[-1]}; lower optim.lr")
        if (step + 1) % config.log_interval == 0 or step + 1 == config.steps:
            log.info("LoRA step %d/%d loss %.4f", step + 1, config.steps, losses[-1])
        done = step + 1
        if valid and config.eval_interval and done % config.eval_interval == 0:
            eval_start = time.perf_counter()
            score = held_out_loss(model, valid, config.seq_length)
            model.train()
            eval_s += time.perf_counter() - eval_start
            evals.append({"step": done, "valid_loss": score})
            log.info("LoRA step %d held-out loss %.4f", done, score)
            if early and done < config.steps and (stopped := early.check(done, score)):
                log.warning("LoRA stops after step %d (%s)", done, stopped)
                break
    seconds = time.perf_counter() - start - eval_s
    return {
        "steps": len(losses), "losses": losses, "first_loss": losses[0],
        "final_loss": losses[-1], "train_seconds": seconds, "tokens": tokens,
        "tokens_per_s": tokens / seconds, "valid_losses": evals, "stopped": stopped,
    }  # fmt: skip


def model_card(config: LoRAConfig, summary: dict[str, Any], languages: list[str]) -> str:
    """The merged folder's README.md."""
    front = ["---", "license: other", "license_name: bloomkit-rail-1.0",
             "license_link: LICENSE-RAIL", "library_name: transformers",
             "pipeline_tag: text-generation", f"base_model: {config.init_from}",
             "tags: [lora, instruction-tuning, bloomkit]"]  # fmt: skip
    if languages:
        front += ["language:", *(f"- {code}" for code in languages)]
    sources = ", ".join(f"`{s.name or s.path}` ({s.template})" for s in config.data.sources)
    before, after = summary["valid_loss_before"], summary["valid_loss_after"]
    held_out = f"{before:.4f} → {after:.4f}" if before is not None else "no held-out split"
    rows = [
        ("base model", f"`{config.init_from}`"),
        ("adapters", f"r {config.r}, alpha {config.alpha:g}, dropout {config.dropout:g} on "
                     f"{', '.join(config.target_modules)} (merged)"),
        ("parameters", f"{summary['trainable_parameters']:,} trained (adapters), "
                       f"{summary['parameters']:,} frozen (base)"),
        ("steps × rows × positions", f"{summary['steps']} × {config.batch_size} × "
                                     f"{config.seq_length}"),
        ("data", sources), ("held-out response loss", held_out),
    ]  # fmt: skip
    return "\n".join([
        *front, "---", "",
        f"# {Path(config.init_from).name} + LoRA (bloomkit)", "",
        f"`{config.init_from}` instruction-tuned with LoRA adapters (loss on the responses "
        "only), then merged into the weights: a plain `BloomForCausalLM`, no `peft` needed.",
        "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "",
        "## Restricted uses", "",
        "Released under the bloomkit Responsible AI Licence (`LICENSE-RAIL`, in this folder), "
        "whose use-based restrictions travel with every copy and derivative, and under the "
        "base model's licence. Small, briefly tuned models write fluent but unreliable text and "
        "reproduce the biases of their data, unevenly across languages.", "",
    ])  # fmt: skip


def export_merged(
    merged: Any, out: Path, tokenizer: Tokenizer, template: PromptTemplate, card: str
) -> Path:
    """``out``: the merged ``BloomForCausalLM``, its tokenizer (``template`` as its chat
    template), README.md and LICENSE-RAIL."""
    with atomic_path(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        if isinstance(tokenizer, HFTokenizer):
            save_tuned_tokenizer(tokenizer, template, tmp)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        licence = resources.files("bloomkit") / "LICENSE-RAIL"
        (tmp / "LICENSE-RAIL").write_text(licence.read_text(encoding="utf-8"), encoding="utf-8")
    log.info("exported the merged model → %s", out)
    return out


def _first_row_logits(model: torch.nn.Module, folder: Path, seq_length: int) -> Tensor:
    """Logits of a split's first packed row (eval mode), to check the merge."""
    model.eval()
    row = PackedDataset(folder, seq_length, seed=0, shuffle=False)[0]
    mask = packed_attention_mask(row["segment_ids"][None], torch.float32)
    with torch.no_grad():
        return model(input_ids=row["tokens"][None], attention_mask=mask).logits


def finetune_lora(config: LoRAConfig, run: RunDir) -> dict[str, Any]:
    """Prepare the rows, train the adapters, merge and export; the summary (also
    ``RUN/summary.json``)."""
    out = run.path
    tokenizer = resolve_tokenizer(config)
    model = lora_model(config)
    vocab = model.get_input_embeddings().num_embeddings
    report = prepare_sft_data(
        config.data, tokenizer, out / "sft", seq_length=config.seq_length, vocab_size=vocab
    )
    valid = out / "sft" / "valid" if "valid" in report else None
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA: %s trainable of %s parameters (%.3f%%)", f"{trainable:,}", f"{total:,}",
             100 * trainable / total)  # fmt: skip
    before = held_out_loss(model, valid, config.seq_length) if valid else None
    summary: dict[str, Any] = {
        "init_from": config.init_from,
        **train(model, config, out / "sft" / "train", valid),
    }
    after = held_out_loss(model, valid, config.seq_length) if valid else None
    model.save_pretrained(out / "adapter")
    probe = out / "sft" / "train"
    reference = _first_row_logits(model, probe, config.seq_length)
    merged = model.merge_and_unload()
    merge_error = (_first_row_logits(merged, probe, config.seq_length) - reference).abs().max()
    summary.update(
        trainable_parameters=trainable, parameters=total - trainable, valid_loss_before=before,
        valid_loss_after=after, merge_max_abs_diff=float(merge_error),
        data={k: v for k, v in report.items() if k != "problems"},
    )  # fmt: skip
    languages = sorted(k for k in report["per_language"] if k != "mul")
    card = model_card(config, summary, languages)
    export_merged(merged, out / "hf", tokenizer, training_template(config.data), card)
    summary.update(hf=str(out / "hf"), adapter=str(out / "adapter"),
                   generation=_sample_generation(config, out / "hf", tokenizer))  # fmt: skip
    atomic_write_json(out / "summary.json", summary)
    return summary
