"""Tiny pretraining runs for the trainer tests: one config builder and one runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bloomkit.config import validate
from bloomkit.pretraining.launch import free_port
from bloomkit.pretraining.pretrain import pretrain
from bloomkit.pretraining.train import PretrainConfig
from bloomkit.rundir import RunDir


def tiny_config(
    data: dict[str, Any] | Path,
    *,
    steps: int,
    optim: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
    parallel: dict[str, Any] | None = None,
    **train: Any,
) -> PretrainConfig:
    """The tiny preset (sequence 32), micro-batch 2, global batch 4, one eval batch, split
    90/10/0; ``data`` is a token prefix (a blend of one) or the data section; ``train``
    overrides the train section."""
    section = {"blend": {str(data): 1.0}} if isinstance(data, Path) else data
    return validate(
        PretrainConfig,
        {
            "model": {"preset": "tiny", "seq_length": 32},
            "parallel": parallel or {},
            "data": {**section, "split": "90,10,0"},
            "optim": {"lr": 3e-3, "warmup_steps": 1, **(optim or {})},
            "train": {"steps": steps, "micro_batch_size": 2, "global_batch_size": 4,
                      "eval_batches": 1, **train},
            "checkpoint": checkpoint or {},
        },
    )  # fmt: skip


def run(config: PretrainConfig, out: Path) -> dict[str, Any]:
    """Pretrain into ``out`` in this process (a free rendezvous port); the run's summary."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MASTER_PORT", str(free_port()))
        return pretrain(config, RunDir(out, "test", None))
