"""The Slurm finetune stage rendered without a cluster (dry run) from the SFT demo config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bloomkit.config import ConfigError
from bloomkit.slurm.submit import Request, SubmitError, submit

REPO = Path(__file__).resolve().parents[2]
SFT = REPO / "configs" / "finetune" / "sft-demo.yaml"


def dry(tmp_path: Path, **kwargs) -> str:
    request = Request(stage="finetune", config=SFT, profile="local-cpu",
                      run_dir=tmp_path / "run", **kwargs)  # fmt: skip
    return submit(request, dry_run=True).text


def test_sft_runs_under_torchrun_on_two_nodes(tmp_path: Path) -> None:
    """TP2 in the demo config: two nodes of one rank each (the local-cpu profile)."""
    text = dry(tmp_path, nodes=2, overrides=["train.eval_interval=10"])
    run = tmp_path / "run"
    assert "#SBATCH --nodes=2\n" in text and "#SBATCH --job-name=bk-finetune-run\n" in text
    assert 'torchrun --nnodes="$SLURM_NNODES" --nproc-per-node=1' in text
    assert "--rdzv-backend=c10d" in text
    line = next(ln for ln in text.splitlines() if "bloomkit finetune sft" in ln)
    assert line.strip() == (
        f"bloomkit finetune sft {run}/slurm/config.yaml --run-dir {run} "
        "--set train.eval_interval=10 &"
    )
    assert f"#SBATCH --output={run}/slurm/logs/%x-%j.out" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_layout_and_config_are_checked_before_submitting(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="needs 2 ranks but the job starts 1 node"):
        dry(tmp_path, nodes=1)
    # early stopping without an evaluation interval: refused, naming the file, line and fix
    with pytest.raises(ConfigError, match=r"sft-demo\.yaml:\d+: train: .*set train\.eval_interval"):
        dry(tmp_path, nodes=2, overrides=["train.early_stopping.patience=3"])
    text = dry(tmp_path, nodes=2, overrides=["train.early_stopping.patience=3",
                                             "train.eval_interval=10"])  # fmt: skip
    assert "--set train.early_stopping.patience=3 --set train.eval_interval=10 &" in text
    assert not (tmp_path / "run" / "slurm").exists()  # a dry run writes nothing


def test_sft_chains_and_is_done_only_when_finished(tmp_path: Path) -> None:
    """SFT exits 0 when a signal or time limit stops it, as pretraining does: a chained job
    marks the run done only once ``RUN/finished.json`` exists (last step or early stop)."""
    text = dry(tmp_path, nodes=2, chain=3)
    run = tmp_path / "run"
    assert "#SBATCH --array=1-3%1" in text
    assert f'[ "$signals" -eq 0 ] && [ -e {run}/finished.json ]; then' in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
