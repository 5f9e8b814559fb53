"""Checkpoints: bit-exact resume (1 process and TP2×PP2), reshard, stopping, corrupt fallback,
and an error when every checkpoint is damaged."""

from __future__ import annotations

import json

import pytest
import torch

from bloomkit.pretraining.checkpoint import (
    CheckpointConfig,
    Checkpointer,
    CheckpointError,
    read_meta,
    step_dirs,
)
from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import inspect_checkpoints, run, tiny_config

STEPS = 4


def config(prefix, checkpoint=None, **parallel) -> PretrainConfig:
    return tiny_config(prefix, steps=STEPS, checkpoint=checkpoint, parallel=parallel)


def corrupt(checkpoint) -> None:
    """Flip one byte in the middle of a shard."""
    shard = sorted(checkpoint.glob("*.distcp"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def straight(token_prefix, tmp_path_factory):
    """One process, 2N steps without a stop, a checkpoint every step."""
    out = tmp_path_factory.mktemp("straight")
    return out, run(config(token_prefix, checkpoint={"interval": 1, "keep_last": 2}), out)


def test_one_process_stop_and_resume_is_bit_exact(straight, token_prefix, tmp_path):
    _, reference = straight
    stop = config(token_prefix, checkpoint={"exit_interval": STEPS // 2})
    first = run(stop, tmp_path)
    assert first["steps"] == STEPS // 2 and first["stopped"] == "exit interval 2"
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-2"
    assert not (tmp_path / "finished.json").exists()
    second = run(stop, tmp_path)  # same run directory: resumes by itself
    assert second["resumed_from"] == 2 and second["stopped"] is None
    assert second["losses"] == reference["losses"]  # identical, not approximately
    assert second["valid_loss"] == reference["valid_loss"]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert json.loads((tmp_path / "finished.json").read_text())["steps"] == STEPS
    assert run(stop, tmp_path)["losses"] == reference["losses"]  # finished: returns at once


def test_keep_last_and_every(straight):
    out, _ = straight
    assert [s for s, _ in step_dirs(out / "checkpoints")] == [4, 3]
    meta = read_meta(out / "checkpoints" / "step-4")
    assert meta["consumed_samples"] == 16 and meta["parallel"]["tensor_parallel"] == 1
    root = out.parent / "prune"
    for step in range(1, 8):
        (root / f"step-{step}").mkdir(parents=True)
        (root / f"step-{step}" / "bloomkit.json").write_text("{}")
    (root / "step-8").mkdir()  # incomplete, newer than latest: left alone
    Checkpointer(CheckpointConfig(keep_last=2, keep_every=3), root).prune(7)
    assert [s for s, _ in step_dirs(root)] == [8, 7, 6, 3]


@pytest.mark.parametrize("damage", ["corrupt", "half-written"])
def test_damaged_last_checkpoint_falls_back_to_the_previous(
    straight, token_prefix, tmp_path, damage, caplog
):
    _, reference = straight
    cfg = config(token_prefix, checkpoint={"interval": 1, "exit_interval": 3})
    run(cfg, tmp_path)
    last = tmp_path / "checkpoints" / "step-3"
    if damage == "corrupt":
        corrupt(last)
    else:  # killed while saving: no bloomkit.json yet
        (last / "bloomkit.json").unlink()
    with caplog.at_level("WARNING", logger="bloomkit"):
        resumed = run(config(token_prefix, checkpoint={"interval": 1}), tmp_path)
    assert resumed["resumed_from"] == 2
    assert "skipping checkpoint step-3" in caplog.text
    assert resumed["losses"] == reference["losses"]


def test_training_checkpoints_reshard_between_one_process_and_tp2_pp2(
    straight, token_prefix, tmp_path
):
    """Saved at TP2×PP2 and loaded at TP1×PP1, saved at 1 process and loaded at TP2×PP2: every
    weight and AdamW moment (gathered over the ranks) is the same tensor, the logits on fixed
    tokens agree, and training goes on at the new layout."""
    _, reference = straight
    wide = {"tensor_parallel": 2, "pipeline_parallel": 2}
    stop = {"exit_interval": STEPS // 2}
    run(config(token_prefix, stop, **wide), tmp_path / "wide")
    run(config(token_prefix, stop), tmp_path / "one")
    saved = [tmp_path / name / "checkpoints" / "step-2" for name in ("wide", "one")]
    tokens = torch.randint(1, 51, (2, 32), generator=torch.Generator().manual_seed(0))
    at_one = inspect_checkpoints(config(token_prefix), saved, tokens, tmp_path)
    at_wide = inspect_checkpoints(config(token_prefix, **wide), saved, tokens, tmp_path)
    for path, one, four in zip(saved, at_one, at_wide, strict=True):
        assert one["state"].keys() == four["state"].keys(), path
        params = [k for k in one["state"] if not k.startswith("optimizer.")]
        moments = [k for k in one["state"] if k.startswith("optimizer.state.exp_avg")]
        # embedding + its LayerNorm (3), 12 per layer (stacked over layers), final LayerNorm (2)
        assert len(params) == 17 and len(moments) == 2 * 17, path
        for key, tensor in one["state"].items():
            assert torch.equal(tensor, four["state"][key]), f"{path}: {key}"
        torch.testing.assert_close(one["logits"], four["logits"], rtol=0, atol=1e-5)
    assert not torch.equal(at_one[0]["logits"], at_one[1]["logits"])  # two different models
    resumed_at_one = run(config(token_prefix), tmp_path / "wide")
    resumed_at_wide = run(config(token_prefix, **wide), tmp_path / "one")
    assert resumed_at_wide["layout"] == "tp2×pp2×dp1"
    for resumed in (resumed_at_one, resumed_at_wide):
        assert resumed["resumed_from"] == 2
        assert resumed["losses"] == pytest.approx(reference["losses"], rel=1e-4)


def test_every_checkpoint_damaged_is_an_error_unless_a_restart_is_asked(
    straight, token_prefix, tmp_path
):
    """``latest`` says the run saved, but no checkpoint is intact: stop rather than silently
    train from step 0 (Megatron-LM raises when its tracker names a checkpoint it cannot load)."""
    _, reference = straight
    run(config(token_prefix, checkpoint={"interval": 1, "exit_interval": 2}), tmp_path)
    for _, path in step_dirs(tmp_path / "checkpoints"):
        corrupt(path)
    metrics = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match=r"names 'step-2' but no checkpoint .* is intact"):
        run(config(token_prefix), tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == metrics  # nothing overwritten
    restarted = run(config(token_prefix, checkpoint={"restart_if_damaged": True}), tmp_path)
    assert restarted["resumed_from"] is None and restarted["losses"] == reference["losses"]


def test_a_first_save_that_never_finished_starts_from_step_0(straight, token_prefix, tmp_path):
    """No ``latest`` yet: the folder is a save killed half-way, and nothing was committed."""
    _, reference = straight
    run(config(token_prefix, checkpoint={"exit_interval": 1}), tmp_path)
    (tmp_path / "checkpoints" / "latest").unlink()
    (tmp_path / "checkpoints" / "step-1" / "bloomkit.json").unlink()
    assert run(config(token_prefix), tmp_path)["losses"] == reference["losses"]


def test_checkpoint_of_another_model_is_refused(token_prefix, tmp_path):
    run(config(token_prefix, checkpoint={"exit_interval": 1}), tmp_path)
    other = config(token_prefix).model_copy(deep=True)
    other.model.hidden_size *= 2
    with pytest.raises(CheckpointError, match=r"hidden_size 64 in the checkpoint, 128 here"):
        run(other, tmp_path)


def test_kill_switch_and_time_limit_stop_cleanly(token_prefix, tmp_path):
    (tmp_path / "STOP").touch()
    stopped = run(config(token_prefix), tmp_path)
    assert stopped["steps"] == 0 and stopped["stopped"].startswith("kill switch")
    (tmp_path / "STOP").unlink()
    limited = run(config(token_prefix, checkpoint={"exit_duration_minutes": 1e-6}), tmp_path)
    assert limited["steps"] == 1 and limited["stopped"].startswith("time limit")
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-1"
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        read_meta(tmp_path / "checkpoints" / "step-9")


def test_tp2_pp2_stop_and_resume_is_bit_exact(token_prefix, tmp_path):
    """4 processes (TP2 × PP2): N steps, stop, resume, N more == 2N straight, to the bit."""
    layout = {"tensor_parallel": 2, "pipeline_parallel": 2}
    reference = run(config(token_prefix, **layout), tmp_path / "straight")
    stop = config(token_prefix, checkpoint={"exit_interval": STEPS // 2}, **layout)
    first = run(stop, tmp_path / "resumed")
    assert first["steps"] == STEPS // 2 and first["stopped"] == "exit interval 2"
    second = run(stop, tmp_path / "resumed")
    assert second["resumed_from"] == 2 and second["layout"] == "tp2×pp2×dp1"
    assert second["losses"] == reference["losses"]
