"""Early stopping on the validation loss: the counting rule, the agreement of the ranks, and a
two-process run whose validation loss stays flat, which stops, saves and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.distributed as dist

from bloomkit.config import ConfigError
from bloomkit.pretraining.early_stopping import EarlyStopping, EarlyStoppingConfig
from bloomkit.pretraining.launch import spawn
from tests.pretraining.runs import run, tiny_config


def test_stops_after_patience_evaluations_without_improvement():
    early = EarlyStopping(EarlyStoppingConfig(patience=3, min_delta=0.05))
    losses = [3.0, 2.5, 2.47, 2.6, 2.4, 2.46, 2.5, 2.41]
    # step:   1    2    3     4    5    6     7    8   (2.47 and 2.41 are not better by > 0.05)
    decisions = [early.update(step, loss) for step, loss in enumerate(losses, 1)]
    assert decisions[:7] == [None] * 7
    assert decisions[7] == (
        "early stopping: valid_loss did not improve by more than 0.05 for 3 evaluations "
        "(best 2.4000 after step 5)"
    )


def test_replay_of_earlier_evaluations_continues_the_count():
    rows = [{"step": 1, "loss": 9.0}, {"step": 2, "loss": 8.0, "valid_loss": 2.0},
            {"step": 4, "loss": 7.0, "valid_loss": 2.1}]  # fmt: skip
    early = EarlyStopping(EarlyStoppingConfig(patience=2))
    assert early.replay(rows) is None and (early.best, early.best_step, early.stale) == (2.0, 2, 1)
    assert early.update(6, 2.0) is not None  # equal is no improvement
    assert EarlyStopping(EarlyStoppingConfig(patience=1)).replay(rows) is not None


def test_needs_an_eval_interval(token_prefix):
    with pytest.raises(ConfigError, match=r"train\.eval_interval"):
        tiny_config(token_prefix, steps=5, early_stopping={"patience": 2})


def decide_worker(out: str) -> None:
    """Rank 1 sees losses that would stop it two evaluations earlier than rank 0."""
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    losses = [3.0, 2.0, 2.5, 2.5, 1.0] if rank == 0 else [3.0, 4.0, 4.0, 4.0, 4.0]
    early = EarlyStopping(EarlyStoppingConfig(patience=2))
    decisions = [early.check(step, loss) for step, loss in enumerate(losses, 1)]
    Path(out, f"rank{rank}.json").write_text(json.dumps(decisions), encoding="utf-8")
    dist.destroy_process_group()


def test_every_rank_takes_rank_0s_decision(tmp_path, repo_root, monkeypatch):
    monkeypatch.syspath_prepend(str(repo_root))  # the ranks import this module by name
    spawn(decide_worker, 2, str(tmp_path))
    decisions = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert decisions[0] == decisions[1]
    assert [d is not None for d in decisions[0]] == [False, False, False, True, False]


def test_flat_validation_loss_stops_a_two_rank_run(token_prefix, tmp_path):
    """A model that hardly learns (lr 1e-9): its validation loss stays within 0.001, so with
    patience 2 the run stops after the third evaluation (step 3 of 20) on both DP ranks, saves
    step-3, records why, and a second call trains no further."""
    config = tiny_config(
        token_prefix, steps=20, optim={"lr": 1e-9}, parallel={"data_parallel": 2},
        eval_interval=1, early_stopping={"patience": 2, "min_delta": 1e-3},
    )  # fmt: skip
    summary = run(config, tmp_path)
    assert len(summary["losses"]) == 3 and summary["finished"]
    assert summary["stopped"].startswith("early stopping: valid_loss did not improve")
    assert "for 2 evaluations (best" in summary["stopped"] and "after step 1)" in summary["stopped"]
    assert summary["checkpoint"] == str(tmp_path / "checkpoints" / "step-3")
    assert (tmp_path / "checkpoints" / "step-3").is_dir()
    assert summary["valid_loss"] is not None
    marker = json.loads((tmp_path / "finished.json").read_text(encoding="utf-8"))
    assert marker["steps"] == 3 and marker["early_stopped"] == summary["stopped"]
    again = run(config, tmp_path)
    assert again["losses"] == summary["losses"] and again["stopped"] == summary["stopped"]
