"""Instruction formats on real data: the 175 Alpaca seed tasks (and SIB-200 sentences for xP3 in
other languages) become the same examples from every format and reader; bad rows are reported as
``file:row:field``, counted and skipped."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from bloomkit.finetuning.formats import BadRow, detect_format, normalise, read_rows
from bloomkit.finetuning.sft import SFTSource
from bloomkit.finetuning.sft_data import read_examples
from bloomkit.finetuning.templates import builtin_templates, resolve_template


def _seed_tasks(seeds) -> list[dict]:
    return [json.loads(line) for line in seeds.read_text(encoding="utf-8").splitlines()]


def _examples(path, fmt="auto"):
    counts, problems = Counter(), []
    items = read_examples([SFTSource(path=str(path), format=fmt)], {}, counts, problems)
    return [example for example, _, _ in items], counts, problems


def test_seed_tasks_parse_one_example_per_instance(seeds):
    tasks = _seed_tasks(seeds)
    assert len(tasks) == 175
    assert detect_format(tasks[0]) == "self_instruct"
    examples, counts, problems = _examples(seeds)
    assert problems == [] and counts["rows"] == 175
    assert len(examples) == sum(len(task["instances"]) for task in tasks)
    first = examples[0]
    assert first.messages[0] == ("user", tasks[0]["instruction"])
    assert first.messages[1] == ("assistant", tasks[0]["instances"][0]["output"])
    assert first.where == f"{seeds}:1[0]" and first.meta["id"] == "seed_task_0"


def _as(fmt: str, task: dict) -> dict:
    instance = task["instances"][0]
    return {
        "alpaca": {"instruction": task["instruction"], "input": instance["input"],
                   "output": instance["output"]},
        "dolly": {"instruction": task["instruction"], "context": instance["input"],
                  "response": instance["output"], "category": task["name"]},
        "xp3": {"inputs": task["instruction"], "targets": instance["output"]},
        "chat": {"messages": [{"role": "user", "content": task["instruction"]},
                              {"role": "assistant", "content": instance["output"]}]},
    }[fmt]  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [(f, s) for f in ("alpaca", "dolly", "xp3", "chat") for s in (".jsonl", ".json")]
    + [("alpaca", "hf")],  # the datasets reader is one code path: one format is enough
)
def test_every_format_and_reader_gives_the_seed_examples(seeds, tmp_path, fmt, suffix):
    tasks = _seed_tasks(seeds)
    rows = [_as(fmt, task) for task in tasks]
    file = tmp_path / f"rows{'.jsonl' if suffix == 'hf' else suffix}"
    if suffix == ".json":
        file.write_text(json.dumps({"data": rows}, ensure_ascii=False), encoding="utf-8")
    else:
        file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    examples, _, problems = _examples(f"hf:{file}" if suffix == "hf" else file)
    assert problems == [] and len(examples) == 175
    for task, example in zip(tasks, examples, strict=True):
        instance = task["instances"][0]
        assert example.messages[0] == ("user", task["instruction"])
        assert example.messages[-1] == ("assistant", instance["output"])
        if fmt in ("alpaca", "dolly"):
            assert example.context == instance["input"]
    assert detect_format(rows[0]) == fmt


def test_xp3_in_other_languages_adds_no_english(shared_data, tmp_path):
    """SIB-200 sentences as xP3 rows (sentence → topic) in 5 scripts, templated by ``xp3``."""
    rows = []
    for lang in ("ar", "zhs", "hi", "sw", "yo"):
        with open(shared_data / "sib200" / lang / "dev.tsv", encoding="utf-8", newline="") as f:
            for record in list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:3]:
                rows.append({"inputs": record["text"], "targets": record["category"]})
    file = tmp_path / "xp3.jsonl"
    file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    examples, _, problems = _examples(file)
    assert problems == [] and len(examples) == 15
    template = resolve_template("xp3")
    for row, example in zip(rows, examples, strict=True):
        assert template.segments(example) == [
            (row["inputs"] + "\n", False), (row["targets"], True)
        ]  # fmt: skip


def test_builtin_templates_cover_languages_and_the_published_ones():
    templates = builtin_templates()
    assert {"alpaca", "dolly", "xp3", "chat"} <= set(templates)
    assert {t.language for t in templates.values()} >= {"en", "fr", "es", "zhs", "ar", "hi", "sw"}
    assert templates["dolly"].response_suffix == "\n\n### End"
    assert templates["alpaca"].prompt.startswith("Below is an instruction that describes a task.")


ALPACA_ROWS = [  # (row, expected problem after the file name); the first row fixes the format
    ({"instruction": "Name a colour.", "output": "Blue."}, None),
    ({"instruction": "Name a colour."}, ":2:output: missing_field"),
    ({"instruction": "Name a colour.", "output": "  "}, ":3:output: empty_response"),
    ("{not json", ":4: bad_json"),
    ({"instruction": "x", "output": "y", "template": "alpacca"},
     ":5:template: unknown_template: 'alpacca' did you mean 'alpaca'"),
    ({"instruction": 3, "output": "y"}, ":6:instruction: bad_field"),
    ({"question": "?"}, ":7:instruction: missing_field"),
    (["x"], ":8: not_a_record"),
]  # fmt: skip
CHAT_ROWS = [
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]},
     None),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]},
     ":2:messages[1].role: bad_role"),
    ({"messages": [{"role": "user", "content": "hi"}]}, ":3:messages[0].role: empty_response"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
     ":4:messages[1].content: empty_response"),
    ({"messages": []}, ":5:messages: missing_field"),
]  # fmt: skip
SELF_INSTRUCT_ROWS = [
    ({"instruction": "x", "instances": [{"input": "", "output": "y"}]}, None),
    ({"instruction": "x", "instances": [{"input": "", "output": ""}]},
     ":2:instances[0].output: empty_response"),
    ({"instruction": "x", "instances": []}, ":3:instances: missing_field"),
]  # fmt: skip


@pytest.mark.parametrize("rows", [ALPACA_ROWS, CHAT_ROWS, SELF_INSTRUCT_ROWS])
def test_bad_rows_are_reported_by_file_row_and_field(tmp_path, rows):
    file = tmp_path / "bad.jsonl"
    lines = [row if isinstance(row, str) else json.dumps(row) for row, _ in rows]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples, counts, problems = _examples(file)
    assert len(examples) == 1 and counts["rows"] == len(rows)
    expected = [f"{file}{where}" for _, where in rows if where]
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)
    reasons = [where.split(": ")[1] for _, where in rows if where]
    assert {k: v for k, v in counts.items() if k.startswith("dropped_")} == {
        f"dropped_{reason}": n for reason, n in Counter(reasons).items()
    }


def test_format_mismatch_and_non_objects_are_bad_rows():
    with pytest.raises(BadRow, match="response: missing_field"):
        normalise({"instruction": "x", "output": "y"}, "dolly", "f:1")
    # Dolly's `context` wins over Alpaca when both layouts could match
    assert detect_format({"instruction": "x", "context": "", "response": "y"}) == "dolly"


def test_missing_file_and_unknown_suffix_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="instruction data not found"):
        list(read_rows(str(tmp_path / "nope.jsonl")))
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown suffix"):
        list(read_rows(str(tmp_path / "rows.txt")))
