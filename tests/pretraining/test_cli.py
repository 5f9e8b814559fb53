"""`bloomkit pretrain run`: refuses bad configs before launch, runs the shipped demo config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BLOOMKIT = str(Path(sys.executable).with_name("bloomkit"))


def pretrain_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLOOMKIT, "pretrain", "run", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def test_layout_that_does_not_divide_exits_2_with_the_reason(repo_root, tmp_path):
    result = pretrain_cli(
        str(repo_root / "configs/pretrain/demo.yaml"), "--run-dir", str(tmp_path / "run"),
        "--set", "parallel.tensor_parallel=3", cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 2
    assert "num_attention_heads 4 % parallel.tensor_parallel 3" in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_dataset_exits_2_naming_the_files(repo_root, tmp_path):
    result = pretrain_cli(
        str(repo_root / "configs/pretrain/demo.yaml"), "--run-dir", str(tmp_path / "run"),
        "--set", "data.byte_corpus=null", "--set", f"data.blend={{{tmp_path}/tok: 1.0}}",
        cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{tmp_path}/tok.bin" in result.stderr


def test_demo_config_trains_at_tp2(repo_root, tmp_path):
    result = pretrain_cli(
        str(repo_root / "configs/pretrain/demo.yaml"), "--run-dir", str(tmp_path),
        "--set", "train.steps=4", cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["layout"] == "tp2×pp1×dp1" and summary["steps"] == 4
    assert (tmp_path / "loss.png").is_file() and (tmp_path / "manifest.json").is_file()

    shard = next((tmp_path / "checkpoints/step-4").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:-1])  # the only checkpoint, damaged
    result = pretrain_cli(
        str(repo_root / "configs/pretrain/demo.yaml"), "--run-dir", str(tmp_path),
        "--set", "train.steps=6", cwd=repo_root,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "names 'step-4' but no checkpoint at or before it is intact" in result.stderr
    assert "restart_if_damaged" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["bloom-560m", "bloom-1b7", "bloom-7b1"])
def test_named_run_configs_validate(repo_root, name):
    from bloomkit.config import load_config
    from bloomkit.pretraining.train import PretrainConfig

    config = load_config(PretrainConfig, repo_root / f"configs/pretrain/{name}.yaml")
    assert config.model.preset == name
