"""The endpoint and megatron backends score the tiny model as the HF path does."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bloomkit.eval.runner import EvalConfig, evaluate

TASKS = ["sib200_en", "sib200_sw", "flores_bpb_en", "flores_bpb_sw"]
KEY = "eval-key"


@pytest.fixture(scope="module")
def hf_results(tiny_bloom, sib200_dir):
    config = EvalConfig(model=tiny_bloom, suite=None, tasks=TASKS, limit=2, data_dir=sib200_dir)
    return evaluate(config)


def assert_same_scores(ours, theirs, tolerance: float) -> None:
    assert sorted(ours.tasks) == sorted(theirs.tasks) == sorted(TASKS)
    for name, task in theirs.tasks.items():
        mine = ours.tasks[name]
        assert mine.doc_ids == task.doc_ids and mine.n_samples == task.n_samples == 2
        for metric, score in task.metrics.items():
            assert mine.metrics[metric].value == pytest.approx(score.value, abs=tolerance), (
                name,
                metric,
            )
        for key, values in task.per_doc.items():
            assert mine.per_doc[key] == pytest.approx(values, abs=tolerance), (name, key)


def test_endpoint_scores_like_the_hf_path(tiny_bloom, sib200_dir, hf_results, monkeypatch):
    from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread

    monkeypatch.setenv("BLOOMKIT_TEST_KEY", KEY)
    app = create_app(tiny_bloom, ServeConfig(model_name="tiny", api_key=KEY))
    with serve_in_thread(app) as url:
        config = EvalConfig(
            backend="endpoint", base_url=f"{url}/v1", served_model="tiny",
            api_key_env="BLOOMKIT_TEST_KEY", tokenizer=tiny_bloom, suite=None, tasks=TASKS,
            limit=2, data_dir=sib200_dir,
        )  # fmt: skip
        results = evaluate(config)
    assert_same_scores(results, hf_results, 1e-3)
    provenance = results.provenance
    assert provenance.backend == "endpoint" and provenance.model.path == f"{url}/v1"
    assert provenance.model.tokenizer_files == hf_results.provenance.model.tokenizer_files
    assert "--model local-completions" in provenance.reproduce
    assert (
        f"base_url={url}/v1/completions" in provenance.reproduce and KEY not in provenance.reproduce
    )


@pytest.mark.parametrize(("tensor_parallel", "batch_size"), [(1, 4), (2, 3)])
def test_megatron_checkpoint_scores_like_the_hf_path(
    tiny_bloom, sib200_dir, hf_results, tmp_path, tensor_parallel, batch_size
):
    """In this process, and split over two tensor-parallel worker ranks; batched, against the
    HF path one request at a time."""
    from bloomkit.pretraining.checkpoint import read_meta
    from bloomkit.pretraining.convert import import_hf
    from bloomkit.pretraining.parallel import ParallelConfig

    checkpoint = import_hf(str(tiny_bloom), tmp_path / "ckpt", ParallelConfig())
    config = EvalConfig(
        backend="megatron", model=checkpoint, tokenizer=tiny_bloom, suite=None, tasks=TASKS,
        limit=2, data_dir=sib200_dir, tensor_parallel=tensor_parallel, batch_size=batch_size,
    )  # fmt: skip
    results = evaluate(config)
    assert_same_scores(results, hf_results, 1e-4)
    for name, task in hf_results.tasks.items():
        for metric in ("acc", "acc_norm"):
            if metric in task.metrics:
                assert results.tasks[name].metrics[metric].value == task.metrics[metric].value
    provenance = results.provenance
    assert provenance.backend == "megatron" and provenance.model.path == str(checkpoint)
    shards = {n: f["sha256"] for n, f in read_meta(checkpoint)["files"].items()}
    hashed = provenance.model.model_files
    assert "bloomkit.json" in hashed  # it holds every shard's sha256, `.metadata` included
    assert {n: h for n, h in shards.items() if not n.startswith(".")}.items() <= hashed.items()
    assert "--model bloomkit-megatron" in provenance.reproduce
    assert ("tensor_parallel=2" in provenance.reproduce) == (tensor_parallel == 2)
    assert f"--batch_size {batch_size}" in provenance.reproduce
    if tensor_parallel == 2:  # the record's command reproduces the numbers outside bloomkit
        args = shlex.split(provenance.reproduce)
        assert args[:3] == ["python", "-m", "bloomkit.eval.lm_eval_cli"]
        out = tmp_path / "lm_eval"
        done = subprocess.run(
            [sys.executable, *args[1:], "--output_path", str(out)],
            capture_output=True, text=True, timeout=600, check=False,
            env={"HF_HUB_OFFLINE": "1", "PATH": str(Path(sys.executable).parent)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        (path,) = out.rglob("results_*.json")
        theirs = json.loads(path.read_text())["results"]
        for name, task in results.tasks.items():
            for metric, score in task.metrics.items():
                assert theirs[name][f"{metric},none"] == score.value, (name, metric)


def test_backends_say_what_they_need(tiny_bloom, tmp_path):
    with pytest.raises(ValueError, match="backend endpoint needs base_url and tokenizer"):
        EvalConfig(backend="endpoint", suite="sib200")
    with pytest.raises(ValueError, match="backend megatron needs tokenizer"):
        EvalConfig(backend="megatron", model=tmp_path, suite="sib200")
    with pytest.raises(ValueError, match="apply to backend megatron"):
        EvalConfig(model=tmp_path, suite="sib200", tensor_parallel=2)
    from bloomkit.eval.runner import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"no bloomkit\.json"):
        evaluate(EvalConfig(backend="megatron", model=tiny_bloom, tokenizer=tiny_bloom,
                            suite=None, tasks=["sib200_en"], limit=1))  # fmt: skip


def test_cli_flags_choose_the_backend():
    from typer.testing import CliRunner

    from bloomkit.cli import app

    result = CliRunner().invoke(app, ["eval", "run", "--backend", "endpoint", "--limit", "1"])
    assert result.exit_code == 2
    assert "backend endpoint needs base_url and tokenizer" in result.output
