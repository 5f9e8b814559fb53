"""The lm-eval task files: generated, complete for 46 languages, reading local data right."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from bloomkit.data_tooling.languages import language_codes
from bloomkit.eval.tasks import TASKS_DIR, catalog

BLOOM46 = TASKS_DIR / "bloom46"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BLOOM46 / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_generator():
    generator = _module("_generate_configs")
    expected = generator.render()
    for name, text in expected.items():
        assert (BLOOM46 / name).read_text(encoding="utf-8") == text, f"{name} is stale"
    generated = {
        p.name for p in BLOOM46.glob("*.yaml") if p.read_text().startswith(generator.HEADER)
    }
    assert generated == set(expected), "generated files the generator no longer writes"


def test_every_language_has_every_benchmark_with_a_version():
    cat = catalog()
    langs = set(language_codes())
    assert len(langs) == 46
    for benchmark in ("sib200", "sib200_5shot", "flores_bpb"):
        tasks = [t for t in cat.tasks.values() if t.benchmark == benchmark]
        assert {t.lang for t in tasks} == langs
        for task in tasks:
            lines = task.path.read_text(encoding="utf-8").splitlines()
            assert len(lines) == 5 and lines[-1].startswith("metadata: {version: ")
    assert cat.leaves("bloom46") == [f"sib200_{c}" for c in language_codes()] + [
        f"flores_bpb_{c}" for c in language_codes()
    ]


def test_loader_keeps_quotes_and_reads_the_chosen_split(shared_data):
    utils = _module("utils")
    data = utils.load_sib200("fr", data_dir=str(shared_data / "sib200"))
    assert (len(data["train"]), len(data["eval"])) == (701, 99)
    with open(shared_data / "sib200" / "fr" / "dev.tsv", encoding="utf-8") as handle:
        raw = [line.rstrip("\n").split("\t") for line in handle][1:]
    quoted = [i for i, row in enumerate(raw) if '"' in row[2]]
    assert quoted, "the French dev set has sentences with quotes"
    for i in quoted:
        assert data["eval"][i]["text"] == raw[i][2]
    assert (
        len(utils.load_sib200("fr", data_dir=str(shared_data / "sib200"), split="train")["eval"])
        == 701
    )


def test_loader_takes_the_folder_from_the_environment(shared_data, monkeypatch, tmp_path):
    utils = _module("utils")
    monkeypatch.delenv(utils.DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=utils.DATA_DIR_ENV):
        utils.load_sib200("en")
    monkeypatch.setenv(utils.DATA_DIR_ENV, str(shared_data / "sib200"))
    assert len(utils.load_sib200("en")["eval"]) == 99
    with pytest.raises(FileNotFoundError, match=r"xx/train\.tsv"):
        utils.load_sib200("xx", data_dir=str(tmp_path))


def test_choices_are_the_sib200_labels(shared_data):
    from lm_eval.tasks import TaskManager

    labels = (shared_data / "sib200" / "labels.txt").read_text().split()
    manager = TaskManager(
        include_path=str(TASKS_DIR),
        include_defaults=False,
        metadata={"data_dir": str(shared_data / "sib200")},
    )
    tasks = manager.load(["sib200_5shot_yo", "flores_bpb_zhs"])["tasks"]
    sib, bpb = tasks["sib200_5shot_yo"], tasks["flores_bpb_zhs"]
    assert sib.get_config("num_fewshot") == 5
    assert sorted(sib.doc_to_choice(sib.test_docs()[0])) == sorted(labels)
    assert bpb.get_config("output_type") == "loglikelihood_rolling"
    with open(shared_data / "sib200" / "zhs" / "dev.tsv", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert bpb.doc_to_target(bpb.test_docs()[0]) == first["text"]
