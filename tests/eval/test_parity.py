"""bloomkit and plain lm-eval give identical numbers: the record's reproduce command is run."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bloomkit.eval.results import load

LM_EVAL = str(Path(sys.executable).with_name("lm_eval"))


@pytest.mark.slow
def test_reproduce_command_gives_identical_numbers(few_results, tmp_path):
    record = load(few_results)
    args = shlex.split(record.provenance.reproduce)
    assert args[:2] == ["lm_eval", "run"] and "--include_path" in args
    out = tmp_path / "lm_eval"
    result = subprocess.run(
        [LM_EVAL, *args[1:], "--output_path", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
        env={"HF_HUB_OFFLINE": "1", "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.rglob("results_*.json")
    theirs = json.loads(path.read_text())["results"]
    assert set(theirs) == set(record.tasks)
    compared = 0
    for name, task in record.tasks.items():
        for metric, score in task.metrics.items():
            assert theirs[name][f"{metric},none"] == score.value, (name, metric)
            if score.stderr_source == "lm-eval":
                assert theirs[name][f"{metric}_stderr,none"] == score.stderr
            compared += 1
    assert compared >= 10
