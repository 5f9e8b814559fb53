"""Batch-size ramp-up: the schedule, its validation, and a resume in the middle of the ramp."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bloomkit.pretraining.checkpoint import CheckpointError, read_meta
from bloomkit.pretraining.rampup import BatchSchedule
from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import run, tiny_config

STEPS = 6
# global batch 6, micro 2, DP 1, ramp from 2 by 2 over 8 samples: one increment per 4 samples
RAMP = [2, 2, 8]
SIZES = [2, 2, 4, 6, 6, 6]  # consumed before each step: 0, 2, 4, 8, 14, 20


def ramp_config(prefix, rampup=RAMP, checkpoint=None, **parallel) -> PretrainConfig:
    return tiny_config(prefix, steps=STEPS, checkpoint=checkpoint, parallel=parallel,
                       global_batch_size=6, rampup_batch_size=rampup)  # fmt: skip


def logged_sizes(out) -> list[int]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["global_batch_size"] for r in rows]


def test_schedule_follows_megatron_rampup():
    schedule = BatchSchedule(STEPS, 6, 2, 1, tuple(RAMP))
    assert schedule.sizes == SIZES
    assert [schedule.consumed(s) for s in range(STEPS + 1)] == [0, 2, 4, 8, 14, 20, 26]
    assert BatchSchedule(3, 8, 2, 2).sizes == [8, 8, 8]  # no ramp: constant


@pytest.mark.parametrize(
    ("rampup", "parallel", "message"),
    [
        ([2, 2, 8], {"data_parallel": 2}, r"batch size 2 of the ramp % \(micro_batch_size 2 × "
                                          r"data_parallel 2\) != 0"),
        ([2, 3, 8], {}, "reach it in steps of INCREMENT 3"),
        ([6, 2, 8], {}, "START 6 must be below global_batch_size 6"),
        ([2, 2, 0], {}, "every value must be >= 1"),
    ],
)  # fmt: skip
def test_bad_rampup_is_refused(token_prefix, rampup, parallel, message):
    with pytest.raises((ValueError, ValidationError), match=message):
        ramp_config(token_prefix, rampup=rampup, **parallel)


@pytest.fixture(scope="module")
def straight(token_prefix, tmp_path_factory):
    out = tmp_path_factory.mktemp("ramp-straight")
    return out, run(ramp_config(token_prefix), out)


def test_logged_batch_sizes_follow_the_ramp(straight):
    out, summary = straight
    assert logged_sizes(out) == SIZES and summary["global_batch_sizes"] == SIZES
    assert summary["tokens"] == sum(SIZES) * 32
    assert read_meta(out / "checkpoints" / f"step-{STEPS}")["consumed_samples"] == sum(SIZES)


def test_resume_mid_ramp_continues_it(straight, token_prefix, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, reference = straight
    first = run(ramp_config(token_prefix, checkpoint={"exit_interval": 2}), tmp_path)
    assert first["steps"] == 2 and first["global_batch_sizes"] == SIZES[:2]
    meta = read_meta(tmp_path / "checkpoints" / "step-2")
    assert meta["consumed_samples"] == 4 and meta["rampup_batch_size"] == RAMP
    other = ramp_config(token_prefix, rampup=[4, 2, 8])  # would have consumed 4 + 4 by step 2
    with pytest.raises(CheckpointError, match=r"consumed 4 samples .* would have consumed 8"):
        run(other, tmp_path)
    second = run(ramp_config(token_prefix), tmp_path)
    assert second["resumed_from"] == 2
    assert logged_sizes(tmp_path) == SIZES
    events = EventAccumulator(str(tmp_path / "tensorboard"))  # two jobs, two event files
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("train/global_batch_size")]
    assert logged == list(enumerate(SIZES, start=1))
    assert second["losses"] == reference["losses"]  # the same samples, in the same steps
