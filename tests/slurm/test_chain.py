"""USR1 and chains on the real cluster: signal to every rank, requeue, chained jobs, kill switch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.slurm.status import run_status

runner = CliRunner()


def bk(*argv: str) -> str:
    result = runner.invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


def job_id(output: str) -> str:
    return output.split("submitted job ")[1].split()[0]


def wait_ranks_waiting(run: Path, count: int, timeout: float = 90) -> None:
    """Until ``count`` probe ranks passed their all-reduce and wait for USR1."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [json.loads(p.read_text()) for p in (run / "probe").glob("rank-*.json")]
        if len([r for r in records if r.get("waiting")]) == count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{count} probe ranks not waiting after {timeout} s")


def events(run: Path) -> list[str]:
    return [line.split(" ", 4)[-1] for line in (run / "slurm/events.log").read_text().splitlines()]


def test_chain_goes_on_after_usr1_and_stops_when_done(slurm_env, tmp_path: Path) -> None:
    """Job 1 of 3 gets USR1 (as before its time limit): both ranks see it, the job ends
    'saved' without marking the run done; job 2 finishes the run; job 3 exits at once."""
    run = tmp_path / "chain"
    out = bk("submit", "probe", "--nodes", "2", "--chain", "3", "--run-dir", str(run),
             "--stage-arg=--wait-signal", "--stage-arg=6")  # fmt: skip
    array = job_id(out)
    wait_ranks_waiting(run, 2)
    slurm_env.run("scancel", "--signal=USR1", "--batch", f"{array}_1", check=False)
    slurm_env.wait_jobs()
    assert [e.replace("rc=1 ", "rc=143 ") for e in events(run)] == [
        "start nodes=n[1-2] restarts=0", "signal USR1", "end rc=143 state=saved",
        "start nodes=n[1-2] restarts=0", "end rc=0 state=done",
        "skip reason=done",
    ]  # fmt: skip
    first = (run / "slurm" / "logs" / f"bk-probe-chain-{array}_1.out").read_text()
    assert first.count(", signal USR1") == 2  # torchrun passed it on to both ranks
    info = run_status(run)
    assert info["finished"]
    assert [j["state"] for j in info["jobs"]] == ["COMPLETED", "COMPLETED", "COMPLETED (skipped)"]


def test_usr1_requeues_a_single_job(slurm_env, tmp_path: Path) -> None:
    run = tmp_path / "requeue"
    bk("submit", "probe", "--run-dir", str(run), "--stage-arg=--wait-signal", "--stage-arg=4")
    job = json.loads((run / "slurm" / "jobs.jsonl").read_text())["job_id"]
    wait_ranks_waiting(run, 1)
    slurm_env.run("scancel", "--signal=USR1", "--batch", job, check=False)
    # Slurm holds a requeued job back for the credential lifetime (AuthInfo cred_expire,
    # 20 s on the test cluster) and then starts it again by itself.
    slurm_env.wait_jobs()
    assert [e.replace("rc=1 ", "rc=143 ") for e in events(run)] == [
        "start nodes=n1 restarts=0", "signal USR1", "end rc=143 state=saved", "requeue",
        "start nodes=n1 restarts=1", "end rc=0 state=done",
    ]  # fmt: skip
    assert run_status(run)["finished"]


def test_kill_switch(slurm_env, tmp_path: Path) -> None:
    run = tmp_path / "stopped"
    array = job_id(bk("submit", "probe", "--chain", "2", "--run-dir", str(run),
                      "--stage-arg=--wait-signal", "--stage-arg=4"))  # fmt: skip
    wait_ranks_waiting(run, 1)
    bk("stop", str(run))
    slurm_env.run("scancel", "--signal=USR1", "--batch", f"{array}_1", check=False)
    slurm_env.wait_jobs()
    assert events(run)[-1] == "skip reason=stop" and events(run)[-2].endswith("state=saved")
    assert "STOPPED" in bk("status", str(run))


@pytest.mark.slow
def test_time_limit_sends_usr1(slurm_env, tmp_path: Path) -> None:
    """``--signal=B:USR1@80`` with a 2-minute limit: Slurm itself warns the job (after 40 s,
    time enough for the probe to start on a loaded machine)."""
    profile = tmp_path / "short.yaml"
    profile.write_text("partition: debug\ntime: '00:02:00'\nsignal_seconds: 80\nrequeue: false\n")
    run = tmp_path / "limit"
    bk("submit", "probe", "--profile", str(profile), "--run-dir", str(run),
       "--stage-arg=--wait-signal", "--stage-arg=110")  # fmt: skip
    slurm_env.wait_jobs(timeout=240)
    assert events(run)[1] == "signal USR1" and events(run)[2].endswith("state=saved")
    assert json.loads((run / "probe" / "rank-0.json").read_text())["signal"] == "USR1"
    assert not run_status(run)["finished"]
