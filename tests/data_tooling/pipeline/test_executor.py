"""Executor: shard tasks resume after kill -9 with identical output; bad input is counted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
import zstandard
from typer.testing import CliRunner

from bloomkit.data_tooling.cli import app as data_app
from bloomkit.data_tooling.pipeline.executor import ErrorBudgetExceeded, ShardsMissing
from bloomkit.data_tooling.pipeline.run import run_corpus, run_shard_task
from bloomkit.data_tooling.pipeline.writers import read_shard
from bloomkit.rundir import RunDir
from tests.data_tooling.pipeline.corpus_fixtures import corpus_hashes, make_config, small_inputs


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return small_inputs(tmp_path / "raw")


def corpus_ids(run: Path) -> list[str]:
    return [d.id for p in sorted((run / "corpus").iterdir()) for d in read_shard(p)]


def test_resume_after_kill_9_gives_identical_corpus(tmp_path):
    inputs = small_inputs(tmp_path / "raw", shards=6, per_language=3)
    config = make_config(inputs)
    reference = run_corpus(config, RunDir(tmp_path / "ref", "test", config))

    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "killed"
    cli = "from bloomkit.data_tooling.cli import app; app()"  # not every stage's imports
    command = [sys.executable, "-c", cli, "run", str(config_path), "--run-dir", str(run)]
    proc = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    first = run / "shards" / "00000" / "stats.json"
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)  # the run and any worker it started
    proc.wait()
    assert first.exists()
    assert not (run / "dedup" / "stats.json").exists(), "the run ended before it was killed"
    finished_at = first.stat().st_mtime_ns

    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert first.stat().st_mtime_ns == finished_at  # a finished shard is never redone
    assert corpus_hashes(run) == corpus_hashes(tmp_path / "ref")
    ids = corpus_ids(run)
    assert len(ids) == len(set(ids)) == reference["kept"]


def test_interrupted_shard_and_dedup_stage_are_redone_identically(tmp_path, inputs):
    config = make_config(inputs)
    run = RunDir(tmp_path / "run", "test", config)
    run_corpus(config, run)
    expected = corpus_hashes(run.path)
    # what a kill leaves: a shard without its marker, a half-written file, stale temporaries
    (run.path / "shards/00001/stats.json").unlink()
    (run.path / "shards/00001/kept.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    (run.path / "shards/00001/.kept.jsonl.zst.tmp-999999").write_bytes(b"partial")
    (run.path / "dedup/stats.json").unlink()
    (run.path / ".corpus.tmp-999999").mkdir()
    shutil.rmtree(run.path / "corpus")
    summary = run_corpus(config, run)
    assert corpus_hashes(run.path) == expected
    assert not list(run.path.glob(".corpus.*"))
    assert not (run.path / "shards/00001/.kept.jsonl.zst.tmp-999999").exists()
    assert summary["documents"] == 3 * 6 * 4 + 4


def test_workers_do_not_change_the_output(tmp_path, inputs):
    one = make_config(inputs)
    two = make_config(inputs, executor={"workers": 2})
    run_corpus(one, RunDir(tmp_path / "one", "test", one))
    run_corpus(two, RunDir(tmp_path / "two", "test", two))
    assert corpus_hashes(tmp_path / "one") == corpus_hashes(tmp_path / "two")


def bad_inputs(folder: Path) -> Path:
    good = small_inputs(folder, shards=1, per_language=2)
    lines = [
        b'{"id": "ok-1", "text": "Kigali ni umurwa mukuru w\'u Rwanda kandi ni umujyi munini."}',
        b'["not", "an", "object"]',
        b'{"id": "no-text", "body": "where is the text"}',
        b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}',
        b"{not json",
    ]
    (folder / "bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "empty.jsonl").write_bytes(b"")
    whole = zstandard.ZstdCompressor().compress(b'{"id": "z", "text": "truncated"}\n' * 50)
    (folder / "cut.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    return good


def quarantined(run: Path) -> list[dict]:
    return [
        d.metadata["quarantine"]
        for p in sorted(run.glob("shards/*/quarantined.jsonl.zst"))
        for d in read_shard(p)
    ]


def test_bad_input_is_quarantined_counted_and_named(tmp_path):
    inputs = bad_inputs(tmp_path / "raw")
    config = make_config(inputs)
    summary = run_corpus(config, RunDir(tmp_path / "run", "test", config))
    reasons = [q["reason"] for q in quarantined(tmp_path / "run")]
    assert summary["quarantined"] == len(reasons) == 6
    expected = [
        "bad.jsonl:2: line: expected a JSON object, got list",
        "bad.jsonl:3: text: missing (fields: body, id)",
        "bad.jsonl:4: text: invalid UTF-8",
        "bad.jsonl:5: line: not JSON",
        "cut.jsonl.zst:",
        "empty.jsonl:1: file: empty file",
    ]
    for part in expected:
        assert any(part in reason for reason in reasons), (part, reasons)
    accounting = json.loads((tmp_path / "run/report/accounting.json").read_text())
    row = accounting["by_source"]["sib200-flores"]
    assert row["read"] == row["kept"] + row["removed"] + row["quarantined"]
    assert row["quarantined"] == 6


def test_error_budget_stops_the_run_with_a_clear_message(tmp_path):
    inputs = bad_inputs(tmp_path / "raw")
    config = make_config(inputs, executor={"error_budget": 2})
    with pytest.raises(ErrorBudgetExceeded) as err:
        run_corpus(config, RunDir(tmp_path / "run", "test", config))
    message = str(err.value)
    assert "executor.error_budget 2" in message
    assert "bad.jsonl:2: line: expected a JSON object" in message
    assert not (tmp_path / "run" / "corpus").exists()


def test_shard_tasks_then_merge_equal_one_run(tmp_path, inputs):
    config = make_config(inputs)
    run_corpus(config, RunDir(tmp_path / "one", "test", config))
    run = RunDir(tmp_path / "split", "test", config)
    first = run_shard_task(config, run, 1, 2)
    assert first["shards"] == [1] and first["documents"] == 6 * 4
    with pytest.raises(ShardsMissing, match=r"2 of 3 shard\(s\) have no stats.json yet: 00000"):
        run_corpus(config, run, merge=True)
    assert not (run.path / "corpus").exists() and not (run.path / "shards/00000").exists()
    assert run_shard_task(config, run, 0, 2)["shards"] == [0, 2]
    finished = (run.path / "shards/00001/stats.json").stat().st_mtime_ns
    assert run_shard_task(config, run, 1, 2)["shards"] == [1]  # resumed: nothing redone
    assert (run.path / "shards/00001/stats.json").stat().st_mtime_ns == finished
    summary = run_corpus(config, run, merge=True)
    assert corpus_hashes(run.path) == corpus_hashes(tmp_path / "one")
    assert summary["documents"] == 3 * 6 * 4 + 4
    with pytest.raises(ValueError, match="--task 2: must be 0 … 1 for --tasks 2"):
        run_shard_task(config, run, 2, 2)


@pytest.mark.parametrize(
    "flags", [["--task", "0"], ["--tasks", "2"], ["--task", "0", "--tasks", "2", "--merge"]]
)
def test_task_flags_are_checked(tmp_path, flags):
    result = CliRunner().invoke(data_app, ["run", str(tmp_path / "x.yaml"), *flags])
    assert result.exit_code == 2
    assert "give --task and --tasks together, and without --merge" in result.output
