"""One micro-batch through megatron-core's pipeline schedule: loss for training, logits for checks.

Both go through ``get_forward_backward_func`` (1F1B when PP > 1, no pipelining otherwise), so a
pipeline of any depth computes exactly what one process computes. Micro-batches are dicts of
``[b, s]`` tensors: ``tokens`` (int64), ``labels`` (int64), ``loss_mask`` (float, 1 = counted),
and for packed instruction data ``segment_ids`` (int64, the example each position belongs to):
then attention is also blocked across examples (:func:`document_mask`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from megatron.core import parallel_state as ps
from megatron.core.pipeline_parallel import get_forward_backward_func
from torch import Tensor


def _masked_mean(loss_mask: Tensor, per_token: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    mask = loss_mask.reshape(-1).float()
    loss = (per_token.reshape(-1).float() * mask).sum() / mask.sum().clamp(min=1)
    return loss, {"loss": loss.detach().clone()}


def document_mask(segment_ids: Tensor | None) -> Tensor | None:
    """``[b, 1, s, s]`` bool, ``True`` = blocked: query ``i`` may not see key ``j`` of another
    example (``segment_ids[i] != segment_ids[j]``); the causal part is added by the attention.
    ``None`` without segment ids (plain pretraining: one stream, no mask needed)."""
    if segment_ids is None:
        return None
    return (segment_ids[:, None, :, None] != segment_ids[:, None, None, :]).contiguous()


def _next_batch(batches: Iterator[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Every stage takes the micro-batch: the first needs tokens, the last labels and the loss
    mask, and every stage the document mask of packed rows."""
    return next(batches)


def loss_forward_step(batches: Iterator[dict[str, Tensor]], model: torch.nn.Module) -> tuple:
    """``forward_step_func`` for training: per-token cross entropy, mean over ``loss_mask``."""
    batch = _next_batch(batches)
    mask = document_mask(batch.get("segment_ids"))
    per_token = model(batch.get("tokens"), None, mask, labels=batch.get("labels"))
    return per_token, partial(_masked_mean, batch.get("loss_mask"))


def _logits_out(output: Tensor, non_loss_data: bool = False) -> Tensor:
    return output.detach()


def _logits_forward_step(batches: Iterator[dict[str, Tensor]], model: torch.nn.Module) -> tuple:
    batch = _next_batch(batches)
    mask = document_mask(batch.get("segment_ids"))
    return model(batch.get("tokens"), None, mask), _logits_out


def run_schedule(
    model: torch.nn.Module,
    batches: list[dict[str, Tensor]],
    *,
    seq_length: int,
    forward_only: bool,
    collect_non_loss_data: bool = False,
    forward_step: Any = loss_forward_step,
) -> list[Any]:
    """Run ``len(batches)`` micro-batches through the schedule; the last stage's outputs."""
    micro_batch_size = batches[0]["tokens"].size(0)
    return get_forward_backward_func()(
        forward_step_func=forward_step,
        data_iterator=iter(batches),
        model=[model],
        num_microbatches=len(batches),
        seq_length=seq_length,
        micro_batch_size=micro_batch_size,
        forward_only=forward_only,
        collect_non_loss_data=collect_non_loss_data,
    )


@torch.no_grad()
def forward_logits(
    model: torch.nn.Module, tokens: Tensor, segment_ids: Tensor | None = None
) -> Tensor | None:
    """Full-vocabulary logits ``[b, s, padded_vocab]`` on the last pipeline stage, else None.

    Works at any TP × PP: the pipeline schedule carries activations between stages and the
    vocab-parallel logits are gathered across the TP group. ``segment_ids`` (packed rows)
    blocks attention across examples.
    """
    from megatron.core.tensor_parallel import gather_from_tensor_model_parallel_region

    batch = (
        {"tokens": tokens}
        if segment_ids is None
        else {"tokens": tokens, "segment_ids": segment_ids}
    )
    was_training = model.training
    model.eval()
    try:
        outputs = run_schedule(
            model,
            [batch],
            seq_length=tokens.size(1),
            forward_only=True,
            collect_non_loss_data=True,
            forward_step=_logits_forward_step,
        )
    finally:
        model.train(was_training)
    if not ps.is_pipeline_last_stage():
        return None
    return gather_from_tensor_model_parallel_region(outputs[0])
