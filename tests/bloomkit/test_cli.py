"""The `bloomkit` console command: every stage is a subcommand with its own --help."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bloomkit

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))
STAGES = ["data", "pretrain", "finetune", "eval", "leaderboard", "slurm", "demo"]


def bloomkit_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLOOMKIT, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def test_help_lists_every_stage():
    result = bloomkit_cli("--help")
    assert result.returncode == 0, result.stderr
    for stage in STAGES:
        assert f" {stage} " in result.stdout, f"{stage} missing from bloomkit --help"


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_help(stage):
    result = bloomkit_cli(stage, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: bloomkit" in result.stdout


def test_version():
    result = bloomkit_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"bloomkit {bloomkit.__version__}"


def test_bad_config_is_rejected_before_work(tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text("# a demo config\nsample: null\nsampel_size: 3\n")
    result = bloomkit_cli("demo", "--config", str(config), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert f"{config}:3: sampel_size: unknown field" in result.stderr
    assert not (tmp_path / "run").exists(), "no run directory before the config is valid"


def test_bad_override_names_the_override(tmp_path):
    result = bloomkit_cli(
        "demo", "--set", "sample=[1, 2]", "--run-dir", str(tmp_path / "run"), cwd=Path.cwd()
    )
    assert result.returncode == 2
    assert "--set sample: sample: expected Path or null, got [1, 2]" in result.stderr


def test_bad_stage_override_is_rejected_before_the_run_dir(repo_root, tmp_path):
    result = bloomkit_cli(
        "demo", "--set", "pretrain.set=[train.steps=x]", "--run-dir", str(tmp_path / "run"),
        cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "pretrain.set: train.steps: expected int >= 1, got 'x'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_stage_config_is_rejected_before_the_run_dir(repo_root, tmp_path):
    missing = tmp_path / "nonexistent.yaml"
    result = bloomkit_cli(
        "demo", "--set", f"pretrain.config={missing}", "--run-dir", str(tmp_path / "run"),
        cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{missing}: config file not found" in result.stderr
    assert not (tmp_path / "run").exists()


def test_stage_configs_are_relative_to_the_demo_config(repo_root, tmp_path):
    """A copy of configs/ elsewhere uses its own stage files, whatever the working directory."""
    configs = shutil.copytree(repo_root / "configs", tmp_path / "configs")
    stage = configs / "pretrain" / "demo.yaml"
    lines = stage.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("steps:"))
    lines[number - 1] = lines[number - 1].replace("150", "-1")
    stage.write_text("\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    result = bloomkit_cli(
        "demo", "--config", str(configs / "demo.yaml"), "--run-dir", str(run_dir), cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert f"{stage}:{number}: train.steps: expected int >= 1, got -1" in result.stderr
    assert not run_dir.exists()
