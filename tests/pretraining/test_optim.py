"""LR schedule in samples: megatron-core's formula, its validation, and the LRs a run logs."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bloomkit.pretraining.optim import OptimConfig, learning_rate, scheduled_lr
from bloomkit.pretraining.rampup import BatchSchedule
from tests.pretraining.runs import run, tiny_config


def megatron_lrs(config: OptimConfig, schedule: BatchSchedule) -> list[float]:
    """The LR of every step as Megatron-LM sets it with ``--lr-warmup-samples`` and
    ``--lr-decay-samples``: megatron-core's scheduler counts samples and steps by the global
    batch after each optimizer step."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    optimizer = SimpleNamespace(param_groups=[{}])
    scheduler = OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=config.lr, min_lr=config.lr * config.min_lr_ratio,
        lr_warmup_steps=config.warmup_samples or 0,
        lr_decay_steps=config.decay_samples or schedule.total, lr_decay_style="cosine",
        start_wd=0.1, end_wd=0.1, wd_incr_steps=1, wd_incr_style="constant",
    )  # fmt: skip
    lrs = []
    for size in schedule.sizes:
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step(increment=size)
    return lrs


@pytest.mark.parametrize(
    ("rampup", "optim"),
    [
        (None, {"warmup_samples": 64, "decay_samples": 400}),
        (None, {"warmup_samples": 64}),  # decay until the last sample
        ((4, 4, 96), {"warmup_samples": 40, "decay_samples": 300}),
        ((4, 4, 96), {"decay_samples": 200}),  # no warmup
    ],
)
def test_samples_schedule_matches_megatron_core(rampup, optim):
    config = OptimConfig(lr=1e-3, min_lr_ratio=0.1, **optim)
    schedule = BatchSchedule(40, 16, 2, 2, rampup)
    ours = [scheduled_lr(config, schedule, step) for step in range(40)]
    assert ours == pytest.approx(megatron_lrs(config, schedule), rel=1e-12, abs=1e-15)
    assert max(ours) == pytest.approx(1e-3, rel=0.05)
    if "decay_samples" in optim:  # reaches the floor and stays there
        assert ours[-1] == pytest.approx(1e-4)


def test_rampup_makes_samples_and_steps_differ():
    """Under a ramp-up, 64 warmup samples take more steps than 64 / global_batch."""
    schedule = BatchSchedule(20, 16, 2, 1, (4, 4, 96))
    samples = OptimConfig(lr=1.0, warmup_samples=64)
    steps = OptimConfig(lr=1.0, warmup_steps=4)  # 4 full global batches = 64 samples
    peak_by_samples = [scheduled_lr(samples, schedule, s) for s in range(20)].index(1.0)
    peak_by_steps = [scheduled_lr(steps, schedule, s) for s in range(20)].index(1.0)
    assert schedule.consumed(peak_by_samples) == 64 and peak_by_samples > peak_by_steps == 3


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"warmup_samples": 10, "warmup_steps": 5}, "counts samples or steps, not both"),
        ({"decay_samples": 100, "decay_steps": 5}, "counts samples or steps, not both"),
        ({"warmup_samples": 100, "decay_samples": 100}, "decay_samples 100 must exceed"),
    ],
)
def test_mixed_or_inverted_schedule_is_refused(optim, message):
    with pytest.raises(ValidationError, match=message):
        OptimConfig(**optim)


def test_step_rule_refuses_a_samples_config():
    with pytest.raises(ValueError, match="use scheduled_lr"):
        learning_rate(OptimConfig(warmup_samples=8), 0, 10)


def test_run_logs_the_samples_schedule_under_a_rampup(token_prefix, tmp_path):
    # global batch 6 from 2 by 2 over 8 samples: sizes 2, 2, 4, 6, 6, 6, consumed before each
    # step 0, 2, 4, 8, 14, 20; warmup over 4 samples, cosine down to 10% at sample 20
    lr = 3e-3
    config = tiny_config(
        token_prefix, steps=6, global_batch_size=6, rampup_batch_size=[2, 2, 8],
        optim={"lr": lr, "warmup_steps": 0, "warmup_samples": 4, "decay_samples": 20},
    )  # fmt: skip
    run(config, tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_batch_size"] for r in rows] == [2, 2, 4, 6, 6, 6]

    def cosine(progress):
        return 0.1 * lr + 0.9 * lr * 0.5 * (1 + math.cos(math.pi * progress))

    expected = [0.0, lr / 2, lr, cosine(4 / 16), cosine(10 / 16), 0.1 * lr]
    assert [r["lr"] for r in rows] == pytest.approx(expected, rel=1e-9, abs=1e-12)
