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
