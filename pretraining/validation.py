"""Validation loss: the blend's validation split, and each language of the blend on its own.

``train.eval_batches`` global batches of ``train.global_batch_size`` samples (the final size,
whatever the ramp-up) go through the forward-only pipeline schedule, for the blended
validation split and, when the blend has several datasets, for each dataset's own validation
split (:func:`~bloomkit.pretraining.data.language_valid_datasets`). Scored after the last step
and every ``train.eval_interval`` steps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from bloomkit.pretraining.data import micro_batches
from bloomkit.pretraining.step import run_schedule


def rank_loss(losses: list[dict[str, torch.Tensor]], dp_size: int) -> float:
    """Mean loss of a schedule run, known on every rank (only last-stage TP-rank-0 ranks have
    it)."""
    from megatron.core import parallel_state as ps

    value = torch.zeros((), dtype=torch.float64)
    if ps.is_pipeline_last_stage() and ps.get_tensor_model_parallel_rank() == 0 and losses:
        value += sum(float(item["loss"]) for item in losses) / len(losses)
    dist.all_reduce(value)
    return value.item() / dp_size


def _loss(ddp: Any, dataset: Any, train: Any, seq_length: int, dp_rank: int, dp_size: int) -> float:
    gbs, batches = train.global_batch_size, []
    for i in range(train.eval_batches):
        batches += micro_batches(
            dataset, i * gbs, global_batch=gbs, micro_batch=train.micro_batch_size,
            dp_rank=dp_rank, dp_size=dp_size,
        )  # fmt: skip
    with torch.no_grad():
        losses = run_schedule(ddp, batches, seq_length=seq_length, forward_only=True)
    return rank_loss(losses, dp_size)


def evaluate(
    ddp: Any, valid: Any, languages: dict[str, Any], train: Any, seq_length: int,
    dp_rank: int, dp_size: int,
) -> dict[str, Any]:  # fmt: skip
    """``{"valid_loss": …}`` plus ``"valid_loss_per_language": {language: …}`` when
    ``languages`` is not empty (the keys of a metrics row and of the summary)."""
    ddp.eval()
    try:
        scores: dict[str, Any] = {
            "valid_loss": _loss(ddp, valid, train, seq_length, dp_rank, dp_size)
        }
        if languages:
            scores["valid_loss_per_language"] = {
                name: _loss(ddp, dataset, train, seq_length, dp_rank, dp_size)
                for name, dataset in languages.items()
            }
    finally:
        ddp.train()
    return scores
