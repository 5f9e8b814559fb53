"""Run directories: manifest with provenance, atomic outputs, finished steps are no-ops."""

import json

import pytest

from bloomkit.config import Section
from bloomkit.rundir import RunDir, atomic_path, atomic_write_text, sha256_file


class Cfg(Section):
    steps: int = 3


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"], "no temporary file left behind"


def test_atomic_directory_replaces_whole(tmp_path):
    target = tmp_path / "shards"
    for content in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a.txt").write_text(content)
    assert (target / "a.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_manifest_records_provenance(tmp_path):
    data = tmp_path / "input.txt"
    data.write_text("hello")
    run = RunDir(tmp_path / "run", "demo", Cfg(steps=5))
    run.run_step("copy", lambda: {"n": 1}, inputs=[data], params={"x": 1})
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["command"] == "demo"
    assert manifest["config"] == {"steps": 5}
    assert manifest["inputs"] == {str(data): sha256_file(data)}
    assert manifest["packages"]["torch"].startswith("2.13.0")
    assert manifest["packages"]["megatron-core"] == "0.16.1"
    assert manifest["code_version"].startswith("0.1.0")
    assert manifest["steps"]["copy"]["status"] == "done"
    assert manifest["steps"]["copy"]["seconds"] >= 0
    assert "steps: 5" in (tmp_path / "run" / "config.yaml").read_text()


def test_finished_step_is_a_noop_until_inputs_change(tmp_path):
    data = tmp_path / "input.txt"
    data.write_text("v1")
    calls = []

    def step():
        calls.append(1)
        atomic_write_text(tmp_path / "run" / "out.txt", data.read_text())
        return {"calls": len(calls)}

    def run_once():
        run = RunDir(tmp_path / "run", "demo")
        return run.run_step("s", step, inputs=[data], outputs=["out.txt"])

    assert run_once() == {"calls": 1}
    assert run_once() == {"calls": 1}, "same inputs: the recorded summary, no rerun"
    assert len(calls) == 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["inputs"] == {str(data): sha256_file(data)}, "a no-op rerun keeps its inputs"
    data.write_text("v2")
    assert run_once() == {"calls": 2}
    (tmp_path / "run" / "out.txt").unlink()
    assert run_once() == {"calls": 3}, "a missing output makes the step run again"


def test_a_check_that_finds_the_outputs_damaged_runs_the_step_again(tmp_path):
    out = tmp_path / "run" / "out.txt"
    calls = []

    def step():
        calls.append(1)
        atomic_write_text(out, "whole")
        return {"calls": len(calls)}

    def intact(summary):
        if out.read_text() != "whole":
            raise ValueError(f"{out}: damaged")

    def run_once():
        return RunDir(tmp_path / "run", "demo").run_step("s", step, outputs=["out.txt"],
                                                         check=intact)  # fmt: skip

    assert run_once() == run_once() == {"calls": 1}, "intact: the recorded summary"
    out.write_text("wh")
    assert run_once() == {"calls": 2} and out.read_text() == "whole"


def test_failed_step_is_not_marked_done(tmp_path):
    run = RunDir(tmp_path / "run", "demo")

    def boom():
        raise ValueError("bad shard")

    with pytest.raises(ValueError):
        run.run_step("s", boom)
    assert RunDir(tmp_path / "run", "demo").manifest["steps"]["s"]["status"] == "running"
    assert run.run_step("s", lambda: {"ok": True}) == {"ok": True}


def test_corrupt_manifest_names_the_file(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"run/manifest.json:1: corrupt run manifest"):
        RunDir(tmp_path / "run", "demo")
