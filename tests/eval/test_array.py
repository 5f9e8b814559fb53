"""`bloomkit eval run` split over array tasks, then `--merge`: the same results.json as one run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.eval.array import units
from bloomkit.eval.plan import plan
from bloomkit.eval.results import EvalResults, load
from bloomkit.eval.runner import EvalConfig, evaluate
from bloomkit.eval.tasks import catalog


def eval_config(tmp_path: Path, model: Path, data_dir: Path) -> tuple[EvalConfig, Path]:
    """The whole sib200 group (46 languages, 2 documents each) and one more task; its YAML."""
    config = EvalConfig(model=model, suite="sib200", tasks=["flores_bpb_en"], limit=2,
                        data_dir=data_dir)  # fmt: skip
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return config, path


def same_record(merged: EvalResults, single: EvalResults, *ignore: str) -> None:
    """Everything equal but when and how long the scoring ran (and ``ignore``d provenance)."""
    timing = {"started", "seconds", *ignore}
    assert merged.model_dump(exclude={"content_sha256", "provenance"}) == single.model_dump(
        exclude={"content_sha256", "provenance"}
    )
    assert merged.provenance.model_dump(exclude=timing) == single.provenance.model_dump(
        exclude=timing
    )


@pytest.mark.slow
def test_shares_merge_into_the_single_run_record(tiny_bloom, sib200_dir, tmp_path):
    config, path = eval_config(tmp_path, tiny_bloom, sib200_dir)
    run = tmp_path / "run"
    base = ["eval", "run", "--config", str(path), "--run-dir", str(run)]
    cli = CliRunner()

    scored = cli.invoke(app, [*base, "--task", "0", "--num-tasks", "2"])
    assert scored.exit_code == 0, scored.output
    refused = cli.invoke(app, [*base, "--merge"])
    assert refused.exit_code == 2 and not (run / "results.json").exists()
    message = " ".join(refused.output.split())
    assert "23 of 47 task(s) have no share yet (array task(s) 1 of 2)" in message
    order = units(plan(config), catalog())
    assert len(order) == 47 and order[-1] == "flores_bpb_en"
    assert f"{', '.join(order[1::2])}; rerun" in message  # the odd ones, task 1's share

    scored = cli.invoke(app, [*base, "--merge"], env={"BLOOMKIT_TASK_ID": "1",
                                                      "BLOOMKIT_NUM_TASKS": "2"})  # fmt: skip
    assert scored.exit_code == 2, scored.output  # --merge and a task id mean nothing together
    scored = cli.invoke(app, base, env={"BLOOMKIT_TASK_ID": "1", "BLOOMKIT_NUM_TASKS": "2"})
    assert scored.exit_code == 0, scored.output
    assert not (run / "results.json").exists()
    assert sorted(p.name for p in (run / "shares").iterdir()) == [
        "task-00000-of-00002.json", "task-00001-of-00002.json"]  # fmt: skip
    merged = cli.invoke(app, [*base, "--merge"])
    assert merged.exit_code == 0, merged.output

    result = load(run / "results.json")
    single = evaluate(config)
    assert len(result.tasks) == 47 and not result.groups["sib200"].partial
    assert result.groups["sib200"].metrics["acc"].stderr is not None
    same_record(result, single)
