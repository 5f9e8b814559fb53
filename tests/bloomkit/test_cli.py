"""The `bloomkit` console command: every stage is a subcommand with its own --help."""

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
