"""The trainer: loss falls, and TP2, PP2, DP2 follow the single-process loss curve (fp32)."""

from __future__ import annotations

import json

import pytest

from bloomkit.pretraining.checks import train_worker
from bloomkit.pretraining.launch import spawn
from bloomkit.pretraining.optim import OptimConfig, learning_rate
from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import run, tiny_config

STEPS = 6
RTOL = 2e-4  # fp32, different reduction orders across layouts


def layout_config(prefix, **parallel) -> PretrainConfig:
    return tiny_config(prefix, steps=STEPS, optim={"warmup_steps": 2}, parallel=parallel)


@pytest.fixture(scope="module")
def reference(token_prefix, tmp_path_factory):
    """One process, TP1×PP1×DP1: the run every layout is compared with."""
    out = tmp_path_factory.mktemp("ref")
    return run(layout_config(token_prefix), out)


def test_single_process_loss_falls_and_metrics_are_logged(reference, tmp_path_factory):
    losses = reference["losses"]
    assert len(losses) == STEPS and losses[-1] < losses[0] - 0.5, losses
    assert reference["valid_loss"] is not None and reference["tokens_per_s"] > 0
    assert reference["layout"] == "tp1×pp1×dp1" and reference["precision"] == "fp32"


def test_metrics_file_and_plot(reference, tmp_path_factory):
    runs = sorted(p for p in tmp_path_factory.getbasetemp().glob("ref*") if p.is_dir())
    rows = [json.loads(x) for x in (runs[-1] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    keys = {"loss", "lr", "grad_norm", "tokens_per_s", "tflops", "mfu", "data_wait_pct"}
    assert keys <= set(rows[0])
    assert (runs[-1] / "loss.png").stat().st_size > 1000


def test_two_process_layouts_follow_the_reference(reference, token_prefix, tmp_path):
    layouts = [{"tensor_parallel": 2}, {"pipeline_parallel": 2}, {"data_parallel": 2}]
    configs = [layout_config(token_prefix, **layout).model_dump(mode="json") for layout in layouts]
    outs = [tmp_path / f"layout{i}" for i in range(len(layouts))]
    for out in outs:
        out.mkdir()
    spawn(train_worker, 2, configs, [str(o) for o in outs])
    for layout, out in zip(layouts, outs, strict=True):
        summary = json.loads((out / "summary.json").read_text())
        assert summary["losses"] == pytest.approx(reference["losses"], rel=RTOL), layout
        assert summary["valid_loss"] == pytest.approx(reference["valid_loss"], rel=RTOL), layout


def test_learning_rate_warmup_then_cosine_to_ten_percent():
    config = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(config, 0, 110) == pytest.approx(0.1)
    assert learning_rate(config, 9, 110) == pytest.approx(1.0)
    assert learning_rate(config, 60, 110) == pytest.approx(0.55)
    assert learning_rate(config, 110, 110) == pytest.approx(0.1)


@pytest.mark.slow
def test_tp2_pp2_dp2_on_eight_processes_follows_the_reference(reference, token_prefix, tmp_path):
    config = layout_config(token_prefix, tensor_parallel=2, pipeline_parallel=2, data_parallel=2)
    spawn(train_worker, 8, [config.model_dump(mode="json")], [str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["layout"] == "tp2×pp2×dp2"
    assert summary["losses"] == pytest.approx(reference["losses"], rel=RTOL)
