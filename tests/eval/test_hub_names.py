"""The classic tasks' hub datasets by name, offline: `bloomkit eval mirror` without ``--from``,
and the tasks' own loader without a mirror, read ``Muennighoff/xwinograd`` (config ``pt``) from
the ``datasets`` cache the test builds (:mod:`tests.hub_cache`), and give its rows unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bloomkit.eval import mirror
from bloomkit.eval.tasks import catalog
from tests.eval.test_mirror import HUB_SPLITS, _sentences, _split
from tests.hub_cache import cache_dataset, offline_env, run_bloomkit

TASK = "xwinograd_pt"


@pytest.fixture(scope="module")
def hub(sib200_dir, tmp_path_factory) -> dict:
    """The task's hub config cached with the hub's splits and columns (real sentences)."""
    (config,) = mirror.needed([TASK])
    columns, _ = _split(_sentences(sib200_dir, catalog().tasks[TASK].lang), config.hf_path)
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    root = tmp_path_factory.mktemp("hub")
    (root / "rows.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    splits = dict.fromkeys(HUB_SPLITS[config.hf_path], root / "rows.jsonl")
    cache_dataset(root / "datasets", config.hf_path, splits, config=config.hf_name)
    env = offline_env(root / "hub-cache-empty", root / "datasets")
    env.pop("BLOOMKIT_MIRROR_DIR", None)
    return {"config": config, "rows": rows, "env": env}


def test_mirror_without_a_source_reads_the_hub_dataset(hub, tmp_path):
    out, config = tmp_path / "mirror", hub["config"]
    result = run_bloomkit(
        ["eval", "mirror", "--out", str(out), "--tasks", TASK], hub["env"], tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = " ".join(result.stderr.split())  # the console's lines, unwrapped
    assert f"1 files, {len(hub['rows'])} rows" in report
    lines = (out / config.hf_path / config.hf_name / "test.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line) for line in lines.splitlines()] == hub["rows"]


def test_task_loader_without_a_mirror_reads_the_hub_dataset(hub, tmp_path):
    config = hub["config"]
    code = (
        "import json; from bloomkit.eval.tasks.classic.utils import load_mirror; "
        f"data = load_mirror({config.hf_path!r}, {config.hf_name!r}); "
        "print(json.dumps({split: data[split].to_list() for split in data}))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=hub["env"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"test": hub["rows"]}


def test_eval_run_scores_a_cached_hub_model_by_name(tiny_bloom, sib200_dir, tmp_path):
    """``--model ORG/NAME``: its snapshot in the hub cache is scored, hashed and recorded, the
    scores those of the same folder given by path; a name in no cache is an error naming it."""
    from tests.hub_cache import cache_model

    snapshot = cache_model(tmp_path / "hub", "bigscience/bloom-tiny-test", tiny_bloom)
    env = offline_env(tmp_path / "hub")
    args = ["--suite", "sib200", "--limit", "2", "--data-dir", str(sib200_dir)]
    by_name = run_bloomkit(["eval", "run", "--model", "bigscience/bloom-tiny-test", *args,
                            "--run-dir", str(tmp_path / "by-name")], env, tmp_path)  # fmt: skip
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    by_path = run_bloomkit(["eval", "run", "--model", str(tiny_bloom), *args,
                            "--run-dir", str(tmp_path / "by-path")], env, tmp_path)  # fmt: skip
    assert by_path.returncode == 0, by_path.stderr
    named, direct = (json.loads((tmp_path / run / "results.json").read_text())
                     for run in ("by-name", "by-path"))  # fmt: skip
    model, model_by_path = named["provenance"]["model"], direct["provenance"]["model"]
    assert model["path"] == str(snapshot)
    assert model["model_files"] == model_by_path["model_files"]  # the same bytes
    assert model["tokenizer_files"] == model_by_path["tokenizer_files"]
    assert {k: v["metrics"] for k, v in named["tasks"].items()} == {
        k: v["metrics"] for k, v in direct["tasks"].items()
    }
    missing = run_bloomkit(["eval", "run", "--model", "nobody/missing", *args, "--run-dir",
                            str(tmp_path / "missing")], env, tmp_path)  # fmt: skip
    assert missing.returncode == 2
    assert "nobody/missing: model is neither a local folder nor a hub model" in " ".join(
        missing.stderr.split()
    )


def test_tokenizer_by_hub_name_resolves_to_its_snapshot(tiny_bloom, tmp_path):
    """``tokenizer: ORG/NAME`` (megatron and endpoint backends) → the cached snapshot folder."""
    from tests.hub_cache import cache_model

    snapshot = cache_model(tmp_path / "hub", "bigscience/tokenizer-test", tiny_bloom)
    code = (
        "from bloomkit.eval.hub import resolve_hub_names; "
        "from bloomkit.eval.runner import EvalConfig; "
        f"config = EvalConfig(backend='megatron', model={str(tmp_path)!r}, "
        "tokenizer='bigscience/tokenizer-test'); "
        "print(resolve_hub_names(config).tokenizer)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=offline_env(tmp_path / "hub"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(snapshot)
