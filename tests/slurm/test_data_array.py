"""The corpus pipeline as a job array on the real local cluster: same bytes as a local run."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.data_tooling.pipeline.run import run_corpus
from bloomkit.rundir import RunDir
from bloomkit.slurm.status import run_status
from tests.data_tooling.pipeline.corpus_fixtures import corpus_hashes, make_config, small_inputs


def bk(*argv: str) -> str:
    result = CliRunner().invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


def test_data_array_with_a_failed_task_equals_a_local_run(slurm_env, tmp_path: Path) -> None:
    config = make_config(small_inputs(tmp_path / "raw", shards=3, per_language=2))
    config_path = tmp_path / "data.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "array"
    blocker = run / "shards" / "00001"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")  # task 1 (shard 1) cannot make its folder: it fails

    out = bk("submit", "data", str(config_path), "--tasks", "2", "--run-dir", str(run))
    assert "(array 0-1)" in out
    reference = run_corpus(config, RunDir(tmp_path / "local", "test", config))
    slurm_env.wait_jobs()
    info = run_status(run)
    assert info["tasks_done"] == [0] and not (run / "slurm" / "done" / "run").exists()
    assert sorted(p.parent.name for p in run.glob("shards/*/stats.json")) == ["00000", "00002"]
    assert not (run / "corpus").exists()
    merge_log = next((run / "slurm" / "logs").glob(f"*-{info['jobs'][-1]['job']}.out"))
    assert "1 of 3 shard(s) have no stats.json yet: 00001" in merge_log.read_text()
    finished = (run / "shards/00000/stats.json").stat().st_mtime_ns

    blocker.unlink()
    assert "(tasks 1)" in bk("resubmit", str(run), "--failed")
    slurm_env.wait_jobs()
    assert (run / "slurm" / "done" / "run").exists(), run_status(run)
    assert corpus_hashes(run) == corpus_hashes(tmp_path / "local")
    assert (run / "shards/00000/stats.json").stat().st_mtime_ns == finished
    lines = (run / "slurm" / "events.log").read_text().splitlines()
    starts = sorted(line.split()[3] for line in lines if " start " in line)
    assert starts == ["task=", "task=", "task=0", "task=1", "task=1"]  # 2 merge jobs
    accounting = json.loads((run / "report" / "accounting.json").read_text())
    assert sum(r["read"] for r in accounting["by_source"].values()) == reference["documents"]
    assert "nothing to resubmit" in bk("resubmit", str(run), "--failed")
