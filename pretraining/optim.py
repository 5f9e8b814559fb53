"""Optimizer pieces of the trainer: config, LR schedule, and clipping across parallel groups.

The LR schedule counts optimizer steps (``optim.warmup_steps``/``decay_steps``) or, as
Megatron-LM's ``--lr-warmup-samples``/``--lr-decay-samples`` and BLOOM's training scripts do,
consumed samples (``optim.warmup_samples``/``decay_samples``); the two differ under a
batch-size ramp-up (:mod:`.rampup`).

On GPU the trainer uses megatron-core's distributed optimizer (``get_megatron_optimizer``),
which shards Adam state over DP and clips internally. Its wrappers need CUDA tensors, so on CPU
the trainer uses ``torch.optim.AdamW`` and :func:`clip_grad_norm_` below, which computes the
same global norm megatron does: every gradient counted once across TP and PP.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import torch
import torch.distributed as dist
from pydantic import Field, model_validator

from bloomkit.config import Section

if TYPE_CHECKING:
    from bloomkit.pretraining.rampup import BatchSchedule


class OptimConfig(Section):
    """Adam with warmup + cosine decay (BLOOM: β 0.9/0.95, eps 1e-8, wd 0.1, clip 1.0)."""

    lr: Annotated[float, Field(gt=0)] = 3e-4
    """Peak learning rate, reached after the warmup."""
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Cosine decay ends at ``lr × min_lr_ratio`` (BLOOM: 10%)."""
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    """Steps of linear warmup; step 0 runs at ``lr / warmup_steps``."""
    decay_steps: Annotated[int, Field(ge=1)] | None = None
    """Steps of cosine decay after warmup; ``null`` = until the last training step."""
    warmup_samples: Annotated[int, Field(ge=0)] | None = None
    """Samples of linear warmup from LR 0 (Megatron-LM's ``--lr-warmup-samples``): a step runs
    at the LR of the samples consumed before it, so the first step runs at 0."""
    decay_samples: Annotated[int, Field(ge=1)] | None = None
    """Sample at which the cosine decay reaches ``lr × min_lr_ratio``, counted from the first
    sample, warmup included (Megatron-LM's ``--lr-decay-samples``); ``null`` = the run's last
    sample. Setting either ``*_samples`` field schedules the LR in samples."""
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.95
    eps: Annotated[float, Field(gt=0)] = 1e-8
    weight_decay: Annotated[float, Field(ge=0)] = 0.1
    """Applied to matrices only, not to biases or LayerNorm parameters."""
    clip_grad: Annotated[float, Field(gt=0)] | None = 1.0
    """Clip the global gradient norm to this; ``null`` = no clipping."""

    @property
    def in_samples(self) -> bool:
        """Whether the LR schedule counts consumed samples rather than steps."""
        return self.warmup_samples is not None or self.decay_samples is not None

    @model_validator(mode="after")
    def _one_schedule(self) -> OptimConfig:
        if self.in_samples and (self.warmup_steps or self.decay_steps is not None):
            raise ValueError(
                f"optim.warmup_samples {self.warmup_samples}, decay_samples "
                f"{self.decay_samples} and optim.warmup_steps {self.warmup_steps}, decay_steps "
                f"{self.decay_steps}: the LR schedule counts samples or steps, not both; set "
                "warmup_steps 0 and decay_steps null, or drop the *_samples fields"
            )
        warmup = self.warmup_samples or 0
        if self.decay_samples is not None and self.decay_samples <= warmup:
            raise ValueError(
                f"optim.decay_samples {self.decay_samples} must exceed optim.warmup_samples "
                f"{warmup}: decay_samples counts from the first sample, warmup included"
            )
        return self


def learning_rate(config: OptimConfig, step: int, total_steps: int) -> float:
    """LR at ``step`` (0-based): linear warmup to ``lr``, then cosine to ``lr × min_lr_ratio``."""
    if config.in_samples:
        raise ValueError("optim.*_samples: the LR depends on samples, use scheduled_lr")
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay = config.decay_steps or max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def samples_learning_rate(config: OptimConfig, consumed: int, total_samples: int) -> float:
    """LR after ``consumed`` samples, as megatron-core's ``OptimizerParamScheduler`` computes it
    when Megatron-LM counts samples: linear from 0 to ``lr`` at ``warmup_samples``, cosine down
    to ``lr × min_lr_ratio`` at ``decay_samples`` (default ``total_samples``), flat after."""
    warmup = config.warmup_samples or 0
    if warmup and consumed <= warmup:
        return config.lr * consumed / warmup
    floor = config.lr * config.min_lr_ratio
    end = config.decay_samples or total_samples
    if consumed > end:
        return floor
    progress = (consumed - warmup) / (end - warmup)
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduled_lr(config: OptimConfig, schedule: BatchSchedule, step: int) -> float:
    """LR of ``step`` (0-based) of a run: by steps, or by the samples consumed before it."""
    if config.in_samples:
        return samples_learning_rate(config, schedule.consumed(step), schedule.total)
    return learning_rate(config, step, len(schedule.sizes))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two Adam groups: matrices with weight decay, biases and LayerNorm parameters without."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def clip_grad_norm_(params: list[torch.nn.Parameter], max_norm: float | None) -> float:
    """Global L2 norm of ``.grad`` over all TP × PP ranks; scale grads down to ``max_norm``.

    Each gradient is counted once: parameters replicated across TP (LayerNorms, row-parallel
    biases) only on TP rank 0, and the LM-head copy of the tied embedding (last stage, PP > 1)
    not at all. DP replicas hold identical (all-reduced) gradients, so DP is not summed.
    """
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate
    from megatron.core.transformer.module import param_is_not_shared

    grads = [p.grad for p in params if p.grad is not None]
    counted = [
        p.grad
        for p in params
        if p.grad is not None
        and param_is_not_shared(p)
        and param_is_not_tensor_parallel_duplicate(p)
    ]
    square = torch.zeros((), dtype=torch.float32, device=grads[0].device if grads else "cpu")
    for grad in counted:
        square += grad.detach().float().pow(2).sum()
    if dist.is_initialized():
        dist.all_reduce(square, group=ps.get_model_parallel_group())
    norm = square.sqrt().item()
    if max_norm is not None and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for grad in grads:
            grad.mul_(scale)
    return norm
