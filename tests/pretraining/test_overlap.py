"""Overlapped gradient all-reduce over data parallel: the same training as without."""

from __future__ import annotations

import json

import pytest

from bloomkit.pretraining.checks import train_worker
from bloomkit.pretraining.launch import spawn
from tests.pretraining.runs import tiny_config


@pytest.mark.parametrize(
    "layout", [{"data_parallel": 2}, {"data_parallel": 2, "pipeline_parallel": 2}]
)
def test_overlapped_grad_reduce_trains_as_the_plain_one(token_prefix, tmp_path, layout):
    """Two micro-batches a rank (gradients accumulate, the reduce starts in the last one's
    backward): the losses match the plain all-reduce step by step."""
    configs = [
        tiny_config(token_prefix, steps=4, global_batch_size=8,
                    parallel={**layout, "overlap_grad_reduce": overlap}).model_dump(mode="json")
        for overlap in (False, True)
    ]  # fmt: skip
    outs = [tmp_path / "plain", tmp_path / "overlap"]
    for out in outs:
        out.mkdir()
    world = 2 * layout.get("pipeline_parallel", 1)
    spawn(train_worker, world, configs, [str(o) for o in outs])
    plain, overlap = (json.loads((o / "summary.json").read_text()) for o in outs)
    assert overlap["losses"] == pytest.approx(plain["losses"], rel=1e-6)
    assert overlap["valid_loss"] == pytest.approx(plain["valid_loss"], rel=1e-6)


def test_the_setting_reaches_megatron_ddp(token_prefix):
    """What the run above compares is megatron-core's overlapped path, not the plain one."""
    from bloomkit.pretraining.launch import single_process_env
    from bloomkit.pretraining.parallel import destroy_parallel, init_parallel
    from bloomkit.pretraining.train import _build

    config = tiny_config(token_prefix, steps=1, parallel={"overlap_grad_reduce": True})
    with single_process_env():
        init_parallel(config.parallel)
        try:
            ddp, _ = _build(config, cuda=False, bf16=False)
            assert ddp.ddp_config.overlap_grad_reduce and ddp.bucket_groups
        finally:
            destroy_parallel(process_group=True)
