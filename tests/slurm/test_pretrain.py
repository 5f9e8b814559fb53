"""Pretraining on the real cluster: DP across 2 nodes, and a chain of 3 jobs that resumes.

The tiny BLOOM on the shipped sample for 4 steps, one gloo rank per node (DP=2). The chain
stops after step 2 (``checkpoint.exit_interval``, standing in for the time limit), the next
job resumes from ``step-2`` and ends where the uninterrupted run ends, the third exits at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "pretrain" / "demo.yaml"
TINY = ["parallel.tensor_parallel=1", "parallel.data_parallel=2", "train.steps=4",
        "train.log_interval=1", "train.eval_batches=0"]  # fmt: skip


def bk(*argv: str) -> str:
    result = runner.invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


def submit(run: Path, *extra: str, overrides: list[str] = TINY) -> None:
    sets = [arg for value in overrides for arg in ("--set", value)]
    bk("submit", "pretrain", str(DEMO), "--nodes", "2", "--run-dir", str(run), *sets, *extra)


def events(run: Path) -> list[str]:
    lines = (run / "slurm" / "events.log").read_text().splitlines()
    return [line.split(" ", 4)[-1] for line in lines]


def losses(run: Path) -> dict[int, float]:
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return {row["step"]: row["loss"] for row in rows}


@pytest.mark.slow
def test_two_node_pretraining_and_chain_resume(slurm_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the jobs run here (--chdir): the demo's sample path is relative
    whole, chain = tmp_path / "whole", tmp_path / "chain"
    submit(whole)
    submit(chain, "--chain", "3", overrides=[*TINY, "checkpoint.exit_interval=2"])
    slurm_env.wait_jobs(timeout=400)

    assert events(whole) == ["start nodes=n[1-2] restarts=0", "end rc=0 state=done"]
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["layout"] == "tp1×pp1×dp2" and summary["steps"] == 4

    assert events(chain) == [
        "start nodes=n[1-2] restarts=0", "end rc=0 state=saved",  # stopped after step 2
        "start nodes=n[1-2] restarts=0", "end rc=0 state=done",  # resumed from step-2
        "skip reason=done",  # the run is finished: the third job exits at once
    ]  # fmt: skip
    resumed = json.loads((chain / "summary.json").read_text())
    assert resumed["resumed_from"] == 2 and resumed["stopped"] is None
    assert sorted(losses(chain)) == [1, 2, 3, 4]
    assert losses(chain) == losses(whole)  # the same 4 losses, to the last bit

    info = json.loads(bk("status", str(chain), "--json"))
    assert info["finished"] and info["last_step"] == 4
    assert info["checkpoint"] == "checkpoints/step-4"
    assert [j["state"] for j in info["jobs"]] == ["COMPLETED", "COMPLETED", "COMPLETED (skipped)"]
