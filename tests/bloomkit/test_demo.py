"""End to end: the demo's own code path, with fewer steps, so `make demo` cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


FEWER_STEPS = ["--set", "pretrain.set=[train.steps=30, train.log_interval=10]",
               "--set", "sft.set=[train.steps=5]", "--set", "eval.set=[limit=2]"]  # fmt: skip


def run_demo(repo_root: Path, run_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLOOMKIT, *options, "demo", "--config", str(repo_root / "configs" / "demo.yaml"),
         "--run-dir", str(run_dir), *FEWER_STEPS],
        capture_output=True, text=True, timeout=1800, check=False, cwd=repo_root,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the demo (under 15 minutes on 2 cores) and its no-op rerun
def test_demo_runs_every_stage_and_resumes(repo_root, tmp_path):
    run_dir = tmp_path / "demo"
    result = run_demo(repo_root, run_dir)
    assert result.returncode == 0, result.stderr
    assert "bloomkit demo" in result.stdout and "leaderboard" in result.stdout
    site = (run_dir / "leaderboard" / "index.html").resolve()
    assert result.stdout.splitlines()[-1] == site.as_uri(), "the last line: the leaderboard page"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    steps = manifest["steps"]
    assert list(steps) == ["sample", "data", "tokenizer", "tokenize", "pretrain", "export",
                           "sft", "eval", "eval-sft", "leaderboard"]  # fmt: skip
    assert all(step["status"] == "done" for step in steps.values())
    raw = (run_dir / "raw" / "sib200.jsonl").read_text(encoding="utf-8").splitlines()
    assert len({json.loads(line)["declared_language"] for line in raw}) == 46
    data = steps["data"]["summary"]
    assert data["documents"] == data["kept"] + data["removed"] + data["quarantined"] == 1388
    assert "CC-BY-SA-4.0" in (run_dir / "data" / "report" / "data_card.md").read_text()
    blend = json.loads((run_dir / "tokenize" / "blend.json").read_text())
    assert len(blend) == 47 and abs(sum(blend.values()) - 1) < 1e-9  # 46 languages + python
    pretrain = steps["pretrain"]["summary"]
    assert pretrain["layout"] == "tp2×pp1×dp1" and pretrain["steps"] == 30
    assert pretrain["final_loss"] < pretrain["first_loss"]
    assert (run_dir / "pretrain" / "loss.png").is_file()
    model = run_dir / "hf-model"
    assert {"model.safetensors", "tokenizer.json", "README.md", "LICENSE-RAIL"} <= {
        p.name for p in model.iterdir()
    }
    assert "Data card" in (model / "README.md").read_text()  # the corpus card travels along
    sft = steps["sft"]["summary"]
    assert sft["steps"] == 5 and sft["init_from"].endswith("step-30")
    assert sft["data"]["train"]["rows"] > 0 and sft["generation"]["prompt"].endswith("Response:\n")
    for name in ("eval", "eval-sft"):
        evaluation = steps[name]["summary"]
        assert evaluation["languages"] == 46 and not evaluation["missing"]
        assert 0.0 <= evaluation["bloom46/acc"] <= 1.0
    assert steps["leaderboard"]["summary"]["models"] == 2
    data = json.loads((run_dir / "leaderboard" / "data.json").read_text())
    assert {m["licence"]["name"] for m in data["models"]} == {"bloomkit-rail-1.0"}
    again = run_demo(repo_root, run_dir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == site.as_uri()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(step["skipped"] for step in manifest["steps"].values()), "rerun is a no-op"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quiet_demo_prints_nothing_but_logs_to_file(repo_root, tmp_path):
    run_dir = tmp_path / "demo"
    result = run_demo(repo_root, run_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert "demo stage: sample" in (run_dir / "logs" / "bloomkit.log").read_text()
