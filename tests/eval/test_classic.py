"""The bloom-classic tasks: lm-eval's own xnli, xcopa, … in BLOOM's languages, read from a
local mirror; `bloomkit eval run` and plain `lm_eval` give identical numbers on it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.tasks._yaml_loader import load_yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.data_tooling.languages import language_codes
from bloomkit.eval import mirror
from bloomkit.eval.results import load
from bloomkit.eval.tasks import TASKS_DIR, catalog

CLASSIC = TASKS_DIR / "classic"
LM_EVAL = str(Path(sys.executable).with_name("lm_eval"))
HERE = Path(__file__).resolve().parent
# benchmark -> BLOOM languages lm-eval 0.4.13 has it in
LANGS = {
    "xnli": {"ar", "en", "es", "fr", "hi", "sw", "ur", "vi", "zhs"},
    "xcopa": {"id", "sw", "ta", "vi", "zhs"},
    "xstorycloze": {"ar", "en", "es", "eu", "hi", "id", "sw", "te", "zhs"},
    "xwinograd": {"en", "fr", "pt", "zhs"},
    "pawsx": {"en", "es", "fr", "zhs"},
}


def _module(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_generator():
    generator = _module(CLASSIC, "_generate_configs")
    expected = generator.render()
    for name, text in expected.items():
        assert (CLASSIC / name).read_text(encoding="utf-8") == text, f"{name} is stale"
    generated = {
        p.name for p in CLASSIC.glob("*.yaml") if p.read_text().startswith(generator.HEADER)
    }
    assert generated == set(expected), "generated files the generator no longer writes"


def test_suite_covers_the_bloom_languages_of_each_benchmark():
    cat = catalog()
    leaves = cat.leaves("bloom-classic")
    by_benchmark: dict[str, set[str]] = {}
    for name in leaves:
        by_benchmark.setdefault(cat.tasks[name].benchmark, set()).add(cat.tasks[name].lang)
    assert {b: by_benchmark[b] for b in LANGS} == LANGS
    belebele = by_benchmark["belebele"]
    assert {"en", "zhs", "zht", "yo", "wo", "bm", "sw"} <= belebele <= set(language_codes())
    assert set(language_codes()) - belebele == {"fon", "ak", "tw", "ki", "tum", "rn"}
    assert cat.tasks["belebele_zho_Hant"].lang == "zht"
    assert cat.subgroups("bloom-classic")[1:] == [f"{b}_bloom" for b in [*LANGS, "belebele"]]


def _lm_eval_file(folder: str, name: str) -> Path:
    lm_tasks = Path(importlib.import_module("lm_eval.tasks").__file__).parent / folder
    paths = sorted(lm_tasks.glob("*.yaml"))
    (path,) = [
        p for p in paths if load_yaml(p, resolve_func=False, recursive=False).get("task") == name
    ]
    return path


@pytest.mark.parametrize(("folder", "name"), [
    ("xnli", "xnli_ur"), ("xcopa", "xcopa_zh"), ("xstorycloze", "xstorycloze_eu"),
    ("xwinograd", "xwinograd_fr"), ("paws-x", "paws_fr"), ("paws-x", "paws_zh"),
    ("belebele", "belebele_yor_Latn"),
])  # fmt: skip
def test_config_is_lm_evals_own_but_for_the_data(folder, name):
    ours = load_yaml(CLASSIC / f"{name}.yaml", resolve_func=False)
    theirs = load_yaml(_lm_eval_file(folder, name), resolve_func=False)
    data_keys = {"dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset", "include"}
    prefix = f"utils.{ours['dataset_kwargs']['benchmark']}_"

    def strip(cfg: dict, functions: str) -> dict:
        """Without data keys; ``!function`` paths (lm-eval makes them absolute) as names."""
        return {
            k: functions + v.split("/utils.")[1] if isinstance(v, str) and "/utils." in v else v
            for k, v in cfg.items() if k not in data_keys
        }  # fmt: skip

    assert strip(ours, "utils.") == strip(theirs, prefix)
    assert ours["dataset_kwargs"]["hf_path"] == theirs["dataset_path"]
    assert ours["dataset_kwargs"]["hf_name"] == theirs["dataset_name"]


def test_prompt_functions_are_lm_evals_objects():
    utils = _module(CLASSIC, "utils")
    for folder, prefix in (("xcopa", "xcopa_"), ("xwinograd", "xwinograd_"), ("paws-x", "pawsx_")):
        theirs = importlib.import_module(f"lm_eval.tasks.{folder}.utils")
        aliases = [n for n in vars(utils) if n.startswith(prefix)]
        assert aliases
        for alias in aliases:
            assert getattr(utils, alias) is getattr(theirs, alias.removeprefix(prefix))
    functions = set()
    for path in CLASSIC.glob("*.yaml"):
        functions |= {line.split("!function ")[1].strip("'") for line in
                      path.read_text().splitlines() if "!function" in line}  # fmt: skip
    for function in functions:
        assert callable(getattr(utils, function.removeprefix("utils."))), function


TASKS = ["xnli_fr", "xcopa_zh", "xstorycloze_hi", "xwinograd_pt", "paws_zh", "belebele_swh_Latn"]


@pytest.fixture(scope="module")
def classic_mirror(tmp_path_factory, sib200_dir) -> Path:
    """A mirror of one language per benchmark, made from local save_to_disk folders."""
    test_mirror = _module(HERE, "test_mirror")
    sources = test_mirror.build_sources(tmp_path_factory.mktemp("hub"), sib200_dir, TASKS)
    out = tmp_path_factory.mktemp("mirror")
    mirror.mirror(out, TASKS, source=sources)
    return out


@pytest.mark.slow
def test_bloomkit_and_plain_lm_eval_agree_on_the_mirror(
    classic_mirror, tiny_bloom, sib200_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("BLOOMKIT_MIRROR_DIR", str(classic_mirror))  # as users may set it
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "eval", "run", "--model", str(tiny_bloom), "--tasks", ",".join(TASKS),
        "--data-dir", str(sib200_dir), "--run-dir", str(run),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = load(run / "results.json")
    assert sorted(record.tasks) == sorted(TASKS) and not record.missing
    for name in TASKS:
        task = record.tasks[name]
        assert task.n_samples == 6 and 0 <= task.metrics["acc"].value <= 1
        assert task.benchmark == catalog().tasks[name].benchmark
    assert set(record.tasks["belebele_swh_Latn"].metrics) == {"acc", "acc_norm"}
    assert record.tasks["belebele_swh_Latn"].lang == "sw"

    mirrored = {str(p.relative_to(classic_mirror)) for p in classic_mirror.rglob("*.jsonl")}
    assert mirrored <= set(record.provenance.data_files)  # every file read is hashed
    args = shlex.split(record.provenance.reproduce)
    metadata = json.loads(args[args.index("--metadata") + 1])
    assert metadata["mirror_dir"] == str(classic_mirror.resolve())
    out = tmp_path / "lm_eval"
    done = subprocess.run(
        [LM_EVAL, *args[1:], "--output_path", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.rglob("results_*.json")
    theirs = json.loads(path.read_text())["results"]
    compared = 0
    for name, task in record.tasks.items():
        for metric, score in task.metrics.items():
            assert theirs[name][f"{metric},none"] == score.value, (name, metric)
            assert theirs[name][f"{metric}_stderr,none"] == score.stderr, (name, metric)
            compared += 1
    assert compared == 7


def test_an_unmirrored_language_is_left_out_and_the_rest_scored(
    classic_mirror, tiny_bloom, sib200_dir
):
    from bloomkit.eval.runner import EvalConfig, evaluate

    config = EvalConfig(model=tiny_bloom, suite=None, tasks=["xnli_fr", "xnli_en"], limit=2,
                        data_dir=sib200_dir, mirror_dir=classic_mirror)  # fmt: skip
    record = evaluate(config)
    assert list(record.tasks) == ["xnli_fr"] and record.tasks["xnli_fr"].n_samples == 2
    (gap,) = record.missing
    assert gap.task == "xnli_en" and gap.lang == "en"
    assert gap.reason == (
        f"no data: {classic_mirror}/facebook/xnli/en/train.jsonl, "
        f"{classic_mirror}/facebook/xnli/en/validation.jsonl; write it with `bloomkit eval mirror`"
    )
