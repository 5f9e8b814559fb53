"""Tokenization as a job array + merge job on the real local cluster: same bytes as one run."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.data_tooling.indexed import tokenize_corpus
from bloomkit.rundir import RunDir
from bloomkit.slurm.status import run_status
from tests.data_tooling.test_indexed import _config, _outputs, setup  # noqa: F401 (fixture)


def bk(*argv: str) -> str:
    result = CliRunner().invoke(app, ["slurm", *argv])
    assert result.exit_code == 0, result.output
    return result.output


def test_tokenize_array_then_merge_equals_a_local_run(slurm_env, setup, tmp_path: Path) -> None:  # noqa: F811
    root, _ = setup
    config = _config(root, workers=1)
    config_path = tmp_path / "tokenize.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "array"
    (run / "blend.json").mkdir(parents=True)  # in the merge's way: it fails after the tasks

    out = bk("submit", "tokenize", str(config_path), "--tasks", "2", "--run-dir", str(run))
    assert "(array 0-1)" in out
    tokenize_corpus(config, RunDir(tmp_path / "local", "test", config))
    slurm_env.wait_jobs()
    info = run_status(run)
    assert info["tasks_done"] == [0, 1] and not (run / "slurm" / "done" / "run").exists()
    assert not info["finished"], "every task is done but the merge job failed"
    assert "finished: False" in bk("status", str(run))

    (run / "blend.json").rmdir()
    out = bk("resubmit", str(run), "--failed")
    assert "tokenize-merge.sbatch" in out and "(tasks" not in out  # the merge job alone
    slurm_env.wait_jobs()
    assert run_status(run)["finished"] and (run / "slurm" / "done" / "run").exists()
    ours, theirs = _outputs(run), _outputs(tmp_path / "local")
    assert len(ours) == 2 * 46 + 1
    assert ours.pop("blend").replace(b"/array/", b"/") == theirs.pop("blend").replace(
        b"/local/", b"/"
    )
    assert ours == theirs  # every .bin/.idx byte-identical
