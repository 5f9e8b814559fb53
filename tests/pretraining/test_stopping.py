"""Stopping early and going on: Slurm's signals (to the launcher and to a lone rank), ranks whose
clocks disagree, a kill switch that appears mid-run, and the CLI resuming its run directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bloomkit.pretraining.stopping import JOB_START_ENV
from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import (
    run,
    skewed_clock_worker,
    spawn_workers,
    tiny_config,
    write_config,
)

STEPS = 48  # enough steps that a signal sent after step 1 lands mid-run, even under load
BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


def config(prefix: Path, **parallel: int) -> PretrainConfig:
    return tiny_config(prefix, steps=STEPS, parallel=parallel)


@pytest.fixture(scope="module")
def straight(token_prefix, tmp_path_factory) -> dict:
    """One process, every step without a stop."""
    return run(config(token_prefix), tmp_path_factory.mktemp("straight"))


def first_row_written(run_dir: Path, alive=lambda: True, timeout: float = 300) -> None:
    """Wait until step 1 is in ``metrics.jsonl`` (its first line)."""
    metrics, deadline = run_dir / "metrics.jsonl", time.monotonic() + timeout
    while not (metrics.is_file() and metrics.read_text(encoding="utf-8").strip()):
        assert alive(), "the run ended before its first step"
        assert time.monotonic() < deadline, f"no step within {timeout} s"
        time.sleep(0.02)


def pretrain_cli(config_file: Path, run_dir: Path) -> subprocess.Popen[str]:
    """``bloomkit pretrain run`` as its own job (its own start time)."""
    env = {k: v for k, v in os.environ.items() if k != JOB_START_ENV}
    return subprocess.Popen(
        [BLOOMKIT, "pretrain", "run", str(config_file), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def stop_with(signum: signal.Signals, config_file: Path, run_dir: Path) -> dict:
    """Start the CLI, send ``signum`` once step 1 is logged; it must exit 0. Its summary."""
    proc = pretrain_cli(config_file, run_dir)
    first_row_written(run_dir, alive=lambda: proc.poll() is None)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def assert_stopped_and_saved(summary: dict, run_dir: Path, reason: str) -> int:
    """Stopped mid-run for ``reason``, ``latest`` naming the step it stopped after; that step."""
    done = summary["steps"]
    assert summary["stopped"] == reason and 1 <= done < STEPS
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == f"step-{done}"
    assert len(summary["losses"]) == done and not (run_dir / "finished.json").exists()
    return done


def test_sigusr1_to_the_launcher_stops_tp2_and_the_cli_resumes_bit_exactly(token_prefix, tmp_path):
    """Slurm's ``--signal=USR1`` reaches the launching process, which forwards it to its two
    ranks; both save after the same step, exit 0, and the same command resumes the run."""
    tp2 = config(token_prefix, tensor_parallel=2)
    reference = run(tp2, tmp_path / "straight")
    config_file = write_config(tp2, tmp_path / "tp2.yaml")
    run_dir = tmp_path / "run"
    done = assert_stopped_and_saved(
        stop_with(signal.SIGUSR1, config_file, run_dir), run_dir, "signal SIGUSR1"
    )
    resumed = pretrain_cli(config_file, run_dir)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"] == done and summary["stopped"] is None
    assert summary["losses"] == reference["losses"]  # to the bit
    assert summary["valid_loss"] == reference["valid_loss"]
    assert json.loads((run_dir / "finished.json").read_text())["steps"] == STEPS


def test_sigterm_to_a_single_process_saves_and_resumes_bit_exactly(
    straight, token_prefix, tmp_path
):
    cfg = config(token_prefix)
    run_dir = tmp_path / "run"
    summary = stop_with(signal.SIGTERM, write_config(cfg, tmp_path / "one.yaml"), run_dir)
    done = assert_stopped_and_saved(summary, run_dir, "signal SIGTERM")
    resumed = run(cfg, run_dir)
    assert resumed["resumed_from"] == done and resumed["losses"] == straight["losses"]


def test_kill_switch_appearing_mid_run_stops_after_that_step(straight, token_prefix, tmp_path):
    cfg = config(token_prefix)

    def operator() -> None:
        first_row_written(tmp_path)
        (tmp_path / "STOP").touch()

    watcher = threading.Thread(target=operator, daemon=True)
    watcher.start()
    stopped = run(cfg, tmp_path)
    watcher.join(timeout=10)
    done = assert_stopped_and_saved(stopped, tmp_path, f"kill switch {tmp_path / 'STOP'}")
    assert run(cfg, tmp_path)["steps"] == done  # still there: stops before any step
    (tmp_path / "STOP").unlink()
    resumed = run(cfg, tmp_path)
    assert resumed["resumed_from"] == done and resumed["losses"] == straight["losses"]


def test_ranks_whose_clocks_disagree_stop_at_the_same_step(token_prefix, tmp_path):
    """Rank 1's job started an hour ago, rank 0's just now, the limit is 30 minutes: the
    maximum elapsed time is all-reduced, so both stop after step 1 (else rank 0 would wait
    forever in step 2's collectives)."""
    cfg = tiny_config(
        token_prefix, steps=4, parallel={"tensor_parallel": 2},
        checkpoint={"exit_duration_minutes": 30},
    )  # fmt: skip
    spawn_workers(skewed_clock_worker, 2, cfg.model_dump(mode="json"), str(tmp_path), [0.0, 60.0])
    for rank in (0, 1):
        summary = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert summary["steps"] == 1, rank
        assert (
            summary["stopped"].startswith("time limit (60.")
            and "of 30 minutes" in summary["stopped"]
        )
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-1"
