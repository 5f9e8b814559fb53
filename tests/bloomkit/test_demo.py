"""End to end: the demo's own code path, with fewer steps, so `make demo` cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


def run_demo(repo_root: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLOOMKIT, "demo", "--config", str(repo_root / "configs" / "demo.yaml"),
         "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=1800, check=False, cwd=repo_root,
    )  # fmt: skip


def test_demo_runs_every_stage_and_resumes(repo_root, tmp_path):
    run_dir = tmp_path / "demo"
    result = run_demo(repo_root, run_dir)
    assert result.returncode == 0, result.stderr
    assert "bloomkit demo" in result.stdout and "sample" in result.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(step["status"] == "done" for step in manifest["steps"].values())
    raw = (run_dir / "raw" / "sib200.jsonl").read_text(encoding="utf-8").splitlines()
    languages = {json.loads(line)["declared_language"] for line in raw}
    assert len(languages) == 46
    again = run_demo(repo_root, run_dir)
    assert again.returncode == 0, again.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(step["skipped"] for step in manifest["steps"].values()), "rerun is a no-op"


def test_quiet_demo_prints_nothing_but_logs_to_file(repo_root, tmp_path):
    run_dir = tmp_path / "demo"
    result = subprocess.run(
        [BLOOMKIT, "--quiet", "demo", "--config", str(repo_root / "configs" / "demo.yaml"),
         "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=1800, check=False, cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert "demo stage: sample" in (run_dir / "logs" / "bloomkit.log").read_text()
