"""`bloomkit eval mirror`: hub datasets (here: local save_to_disk folders with the hub's schema,
real FLORES sentences from SIB-200) become the JSONL layout the bloom-classic tasks read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.eval import mirror
from bloomkit.eval.tasks import catalog
from bloomkit.eval.tasks.classic.utils import load_mirror

ROWS = 6
STRING = datasets.Value("string")
INT32 = datasets.Value("int32")


def _sentences(sib200: Path, lang: str) -> list[str]:
    with open(sib200 / lang / "dev.tsv", encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["text"] for row in rows][: ROWS + 4]


def _split(s: list[str], hf_path: str) -> tuple[dict, datasets.Features]:
    """ROWS rows of one split with the hub's column schema, filled with real sentences."""
    n = range(ROWS)
    words = [t.split() for t in s]  # zh has no spaces: a sentence is then one "word"
    if hf_path == "facebook/xnli":
        labels = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])
        rows = {"premise": s[:ROWS], "hypothesis": s[1 : ROWS + 1], "label": [i % 3 for i in n]}
        return rows, datasets.Features(premise=STRING, hypothesis=STRING, label=labels)
    if hf_path == "cambridgeltl/xcopa":
        rows = {
            "premise": [t.rstrip(".。") + "." for t in s[:ROWS]], "choice1": s[1 : ROWS + 1],
            "choice2": s[2 : ROWS + 2], "question": [("cause", "effect")[i % 2] for i in n],
            "label": [i % 2 for i in n], "idx": list(n), "changed": [False] * ROWS,
        }  # fmt: skip
        features = {"premise": STRING, "choice1": STRING, "choice2": STRING, "question": STRING,
                    "label": INT32, "idx": INT32, "changed": datasets.Value("bool")}  # fmt: skip
        return rows, datasets.Features(features)
    if hf_path == "juletxara/xstory_cloze":
        rows = {f"input_sentence_{k}": s[k - 1 : ROWS + k - 1] for k in range(1, 5)}
        rows |= {"story_id": [f"story-{i}" for i in n], "sentence_quiz1": s[4 : ROWS + 4],
                 "sentence_quiz2": s[:ROWS][::-1],
                 "answer_right_ending": [1 + i % 2 for i in n]}  # fmt: skip
        return rows, datasets.Features({**{c: STRING for c in rows}, "answer_right_ending": INT32})
    if hf_path == "Muennighoff/xwinograd":
        rows = {
            "sentence": [" ".join(["_", *w[1:]]) if len(w) > 1 else "_" + s[i][1:]
                         for i, w in enumerate(words[:ROWS])],
            "option1": [w[0] if len(w) > 1 else s[i][0] for i, w in enumerate(words[:ROWS])],
            "option2": [w[-1] if len(w) > 1 else s[i][-1] for i, w in enumerate(words[:ROWS])],
            "answer": [("1", "2")[i % 2] for i in n],
        }  # fmt: skip
        return rows, datasets.Features({c: STRING for c in rows})
    if hf_path == "google-research-datasets/paws-x":
        rows = {"id": [i + 1 for i in n], "sentence1": s[:ROWS], "sentence2": s[1 : ROWS + 1],
                "label": [i % 2 for i in n]}  # fmt: skip
        labels = datasets.ClassLabel(names=["0", "1"])
        return rows, datasets.Features(id=INT32, sentence1=STRING, sentence2=STRING, label=labels)
    assert hf_path == "facebook/belebele", hf_path
    rows = {
        "link": [f"https://en.wikibooks.org/wiki/{i}" for i in n], "question_number": [1] * ROWS,
        "flores_passage": [" ".join(s[i : i + 3]) for i in n], "question": s[3 : ROWS + 3],
        **{f"mc_answer{k}": s[k : ROWS + k] for k in range(1, 5)},
        "correct_answer_num": [str(1 + i % 4) for i in n], "dialect": ["x"] * ROWS,
        "ds": ["2023-05-03"] * ROWS,
    }  # fmt: skip
    return rows, datasets.Features({**{c: STRING for c in rows}, "question_number": INT32})


HUB_SPLITS = {
    "facebook/xnli": ("train", "test", "validation"),
    "cambridgeltl/xcopa": ("validation", "test"),
    "juletxara/xstory_cloze": ("train", "eval"),
    "Muennighoff/xwinograd": ("test",),
    "google-research-datasets/paws-x": ("train", "test", "validation"),
    "facebook/belebele": ("test",),
}


def build_sources(root: Path, sib200: Path, names: list[str]) -> Path:
    """``root/<hf_path>/<hf_name>``: a ``save_to_disk`` DatasetDict with the hub's splits and
    columns for every hub config the named tasks read, text from the task language's SIB-200."""
    cat = catalog()
    for config in mirror.needed(names):
        lang = cat.tasks[config.tasks[0]].lang
        rows, features = _split(_sentences(sib200, lang), config.hf_path)
        split = datasets.Dataset.from_dict(rows, features=features)
        data = datasets.DatasetDict({name: split for name in HUB_SPLITS[config.hf_path]})
        data.save_to_disk(str(root / config.hf_path / config.hf_name))
    return root


ONE_PER_BENCHMARK = [
    "xnli_fr", "xcopa_zh", "xstorycloze_hi", "xwinograd_pt", "paws_zh", "belebele_swh_Latn",
]  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory, sib200_dir) -> Path:
    return build_sources(tmp_path_factory.mktemp("hub"), sib200_dir, ONE_PER_BENCHMARK)


def test_every_classic_task_names_a_schema_known_hub_dataset():
    configs = mirror.needed(["bloom-classic"])
    assert {c.hf_path for c in configs} == set(mirror.COLUMNS) == set(HUB_SPLITS)
    assert sum(len(c.tasks) for c in configs) == len(catalog().leaves("bloom-classic"))
    splits = {c.hf_path: c.splits for c in configs}
    assert splits["facebook/xnli"] == ("train", "validation")
    assert splits["juletxara/xstory_cloze"] == ("train", "eval")
    assert splits["facebook/belebele"] == ("test",)


def test_mirror_writes_each_dataset_as_the_tasks_read_it(sources, tmp_path, sib200_dir):
    out = tmp_path / "mirror"
    written = mirror.mirror(out, ONE_PER_BENCHMARK, source=sources)
    assert len(written) == 2 + 2 + 2 + 1 + 3 + 1  # xnli, xcopa, xstorycloze, xwinograd, paws, bele
    manifest = json.loads((out / mirror.MANIFEST).read_text())
    assert manifest["files"] == written
    for config in mirror.needed(ONE_PER_BENCHMARK):
        saved = datasets.load_from_disk(str(sources / config.hf_path / config.hf_name))
        mirrored = load_mirror(config.hf_path, config.hf_name, mirror_dir=str(out))
        assert set(mirrored) == set(config.splits)
        for split in config.splits:
            assert mirrored[split].to_list() == saved[split].to_list(), (config, split)
    xnli = (out / "facebook/xnli/fr/validation.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(xnli[0])
    assert first == {"premise": _sentences(sib200_dir, "fr")[0],
                     "hypothesis": _sentences(sib200_dir, "fr")[1], "label": 0}  # fmt: skip
    files = mirror.split_files(out, ONE_PER_BENCHMARK)
    assert sorted(files) == sorted(ONE_PER_BENCHMARK)
    assert all(path.is_file() for paths in files.values() for path in paths)


def test_a_missing_split_or_column_is_named(sources, tmp_path):
    folder = sources / "facebook/xnli/fr"
    data = datasets.load_from_disk(str(folder)).remove_columns("hypothesis")
    broken = tmp_path / "broken"
    data.save_to_disk(str(broken / "facebook/xnli/fr"))
    with pytest.raises(ValueError, match=r"xnli/fr: split train lacks column\(s\) hypothesis"):
        mirror.mirror(tmp_path / "out", ["xnli_fr"], source=broken)
    data = datasets.load_from_disk(str(folder))
    del data["validation"]
    data.save_to_disk(str(broken / "facebook/xnli/fr"))
    with pytest.raises(ValueError, match=r"xnli/fr: no split validation .*read train, validation"):
        mirror.mirror(tmp_path / "out", ["xnli_fr"], source=broken)


def test_unmirrored_languages_are_listed(sources, tmp_path, sib200_dir):
    from bloomkit.eval.plan import plan
    from bloomkit.eval.runner import EvalConfig

    out = tmp_path / "mirror"
    mirror.mirror(out, ["xnli_fr", "xcopa_zh"], source=sources)
    config = EvalConfig(model=tmp_path, suite=None, tasks=["xnli_fr", "xcopa_zh", "xnli_en"],
                        mirror_dir=out, data_dir=sib200_dir)  # fmt: skip
    the_plan = plan(config)
    assert the_plan.ours == ["xnli_fr", "xcopa_zh"]
    assert [(m.task, m.lang) for m in the_plan.missing] == [("xnli_en", "en")]
    assert f"{out}/facebook/xnli/en/train.jsonl" in the_plan.missing[0].reason
    assert "bloomkit eval mirror" in the_plan.missing[0].reason
    with pytest.raises(FileNotFoundError, match="facebook/xnli/en: no mirrored splits"):
        load_mirror("facebook/xnli", "en", mirror_dir=str(out))


def test_mirror_command(sources, tmp_path):
    out = tmp_path / "mirror"
    args = ["eval", "mirror", "--out", str(out), "--tasks", "xwinograd_pt,belebele_swh_Latn"]
    result = CliRunner().invoke(app, [*args, "--from", str(sources)])
    assert result.exit_code == 0, result.output
    assert "2 files, 12 rows" in result.output
    assert (out / "Muennighoff/xwinograd/pt/test.jsonl").is_file()
    result = CliRunner().invoke(app, [*args[:4], "--tasks", "xnli_frr", "--from", str(sources)])
    assert result.exit_code == 2 and "did you mean xnli_fr" in result.output
    result = CliRunner().invoke(app, [*args[:4], "--tasks", "sib200_en", "--from", str(sources)])
    assert result.exit_code == 2 and "only bloom-classic tasks are mirrored" in result.output


def test_without_a_source_folder_the_hub_is_read_with_load_dataset(monkeypatch):
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or "hub")
    assert mirror.load_source("facebook/xnli", "fr") == "hub"
    monkeypatch.delenv("BLOOMKIT_MIRROR_DIR", raising=False)
    assert load_mirror("facebook/xnli", "fr", version=1.0, data_dir="x") == "hub"
    assert calls == [(("facebook/xnli", "fr"), {})] * 2
