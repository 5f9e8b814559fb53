"""The eval suite as a job array + merge job on the real local cluster: same record as one run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.eval.results import load
from bloomkit.eval.runner import EvalConfig, evaluate
from bloomkit.slurm.status import run_status
from tests.eval.conftest import build_tiny_bloom
from tests.eval.test_array import same_record


def bk(*argv: str) -> str:
    result = CliRunner().invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return build_tiny_bloom(tmp_path_factory.mktemp("tiny-bloom"), shared_data / "sib200")


def test_eval_array_with_a_failed_task_equals_one_run(
    slurm_env, tiny_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    config = EvalConfig(model=tiny_model, suite=None, limit=2, data_dir=shared_data / "sib200",
                        tasks=["sib200_en", "sib200_hi", "flores_bpb_en"])  # fmt: skip
    config_path = tmp_path / "eval.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "array"
    blocker = run / "shares" / "task-00001-of-00002.json"
    blocker.mkdir(parents=True)  # task 1 cannot write its share: it fails

    out = bk("submit", "eval", str(config_path), "--tasks", "2", "--run-dir", str(run))
    assert "(array 0-1)" in out
    single = evaluate(config)
    slurm_env.wait_jobs(timeout=300)
    info = run_status(run)
    assert info["tasks_done"] == [0] and not info["finished"]
    assert not (run / "results.json").exists()
    merge_log = next((run / "slurm" / "logs").glob(f"*-{info['jobs'][-1]['job']}.out"))
    text = " ".join(merge_log.read_text().split())
    assert "1 of 3 task(s) have no share yet (array task(s) 1 of 2): sib200_hi" in text

    blocker.rmdir()
    assert "(tasks 1)" in bk("resubmit", str(run), "--failed")
    slurm_env.wait_jobs(timeout=300)
    assert run_status(run)["finished"] and (run / "slurm" / "done" / "run").exists()
    merged = load(run / "results.json")
    assert sorted(merged.tasks) == ["flores_bpb_en", "sib200_en", "sib200_hi"]
    same_record(merged, single, "hardware")
    assert "nothing to resubmit" in bk("resubmit", str(run), "--failed")
