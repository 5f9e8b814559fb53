"""Submission on the real local cluster: multi-node probe, arrays, resubmission, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.config import ConfigError
from bloomkit.rundir import RunDir
from bloomkit.slurm.status import run_status
from bloomkit.slurm.submit import Request, SubmitError, submit

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def bk(*argv: str) -> str:
    result = runner.invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


def events(run: Path) -> list[str]:
    return (run / "slurm" / "events.log").read_text().splitlines()


def test_probe_on_two_nodes(slurm_env, tmp_path: Path) -> None:
    run = tmp_path / "probe"
    assert "submitted job" in bk("submit", "probe", "--nodes", "2", "--run-dir", str(run))
    slurm_env.wait_jobs()
    ranks = [json.loads(p.read_text()) for p in sorted((run / "probe").glob("rank-*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert {r["world_size"] for r in ranks} == {2} and all(r["ok"] for r in ranks)
    assert {r["slurm_node"] for r in ranks} == {"n1", "n2"}
    assert (run / "slurm" / "done" / "run").exists()
    info = run_status(run)
    assert info["finished"] and info["source"] == "scontrol"  # no slurmdbd here
    assert [j["state"] for j in info["jobs"]] == ["COMPLETED"]
    assert "end rc=0 state=done" in info["jobs"][0]["last_event"]
    assert "STOPPED" not in bk("status", str(run))

    # The rendered script works by hand; the run is finished, so the job exits at once.
    script = run / "slurm" / "probe.sbatch"
    subprocess.run(["sbatch", str(script)], check=True, capture_output=True)
    slurm_env.wait_jobs()
    assert events(run)[-1].endswith("skip reason=done")


def test_array_failed_task_rerun_alone(slurm_env, tmp_path: Path) -> None:
    run = tmp_path / "array"
    blocker = run / "probe" / "task-1.json"
    (blocker / "in-the-way").mkdir(parents=True)  # task 1 cannot write its record: it fails
    bk("submit", "probe-array", "--tasks", "3", "--run-dir", str(run))
    slurm_env.wait_jobs()
    info = run_status(run)
    assert info["tasks_done"] == [0, 2] and not info["finished"]
    states = {j["job"].split("_")[1]: j["state"] for j in info["jobs"]}
    assert states == {"0": "COMPLETED", "1": "FAILED", "2": "COMPLETED"}

    shutil.rmtree(blocker)
    assert "(tasks 1)" in bk("resubmit", str(run), "--failed")
    slurm_env.wait_jobs()
    info = run_status(run)
    assert info["finished"] and info["tasks_done"] == [0, 1, 2]
    starts = [line.split()[3] for line in events(run) if " start " in line]
    assert sorted(starts) == ["task=0", "task=1", "task=1", "task=2"]  # only task 1 ran again
    records = [json.loads(p.read_text()) for p in sorted((run / "probe").glob("task-*.json"))]
    assert [r["task"] for r in records] == [0, 1, 2]
    assert "nothing to resubmit" in bk("resubmit", str(run), "--failed")


def test_hostile_profile_values_stay_inert(slurm_env, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    profile = tmp_path / "hostile.yaml"
    profile.write_text(
        f"partition: debug\ntime: '00:05:00'\nsignal_seconds: 10\n"
        f"env: {{NOTE: '$(touch {pwned}); `touch {pwned}`'}}\n"
    )
    run = tmp_path / "inert"
    bk("submit", "probe-array", "--profile", str(profile), "--run-dir", str(run))
    slurm_env.wait_jobs()
    assert (run / "slurm" / "done" / "task-0").exists()
    assert not pwned.exists()


def test_refused_before_submission(slurm_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)

    def refused(**kwargs) -> str:
        request = Request(stage=kwargs.pop("stage", "probe"), config=kwargs.pop("config", None),
                          profile=kwargs.pop("profile", "local-cpu"), **kwargs)  # fmt: skip
        with pytest.raises((SubmitError, ConfigError)) as err:
            submit(request)
        return str(err.value)

    assert "partition debug has 3 node(s), the job asks for 5" in refused(
        run_dir=tmp_path / "big", nodes=5
    )
    gpu = refused(run_dir=tmp_path / "gpu", profile="gpu")
    assert "has 0 GPU(s) per node, gpus_per_node asks for 8" in gpu
    assert "CPU(s) per node, cpus_per_task asks for 32" in gpu
    assert "requires an account" in refused(run_dir=tmp_path / "jz", profile="jean-zay-a100")

    # A run directory made by another config (a direct `bloomkit pretrain run`).
    config = REPO / "configs" / "pretrain" / "demo.yaml"
    from bloomkit.config import load_config
    from bloomkit.pretraining.train import PretrainConfig

    other = load_config(PretrainConfig, config, ["train.steps=7"])
    RunDir(tmp_path / "made", "pretrain run", other)
    message = refused(stage="pretrain", config=config, run_dir=tmp_path / "made", nodes=2)
    assert "made by another config" in message and "train.steps" in message

    # A run directory submitted for another stage.
    bk("submit", "probe-array", "--run-dir", str(tmp_path / "taken"))
    slurm_env.wait_jobs()
    assert "submitted for stage probe-array" in refused(run_dir=tmp_path / "taken")
    assert not list((tmp_path).glob("[bgj]*/slurm/jobs.jsonl"))  # nothing was submitted
    assert len((tmp_path / "taken" / "slurm" / "jobs.jsonl").read_text().splitlines()) == 1
