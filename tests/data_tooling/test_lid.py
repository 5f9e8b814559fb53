"""Language identification: measured support table, held-out accuracy, ``unknown``, the step."""

from __future__ import annotations

import csv
import importlib.resources
import inspect
import json

import pytest
import yaml

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid import UNKNOWN, LanguageID, LanguageIdentifier, identify
from bloomkit.data_tooling.lid.identifier import SUPPORT_TABLE, default_identifier
from bloomkit.data_tooling.lid.ngram import MODEL_FILE, NgramModel
from bloomkit.data_tooling.lid.sib200 import documents, read_sentences
from bloomkit.data_tooling.pipeline.base import Document


def _support_rows() -> dict[str, dict[str, str]]:
    with open(SUPPORT_TABLE, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row["language"]: row for row in rows}


def _lm_eval_text(lang: str) -> str:
    """Real German/Italian text shipped by an installed package (lm-eval's MMLU few-shots)."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda *_: None)
    path = f"tasks/llama3/instruct/mmlu_{lang}/mmlu_{lang}_philosophy.yaml"
    data = yaml.load((importlib.resources.files("lm_eval") / path).read_text("utf-8"), loader)
    samples = data["fewshot_config"]["samples"]
    return " ".join(
        str(t) for s in samples for t in [s["input_question"], *s["input_choice_list"].values()]
    )


def test_support_table_covers_the_goal() -> None:
    rows = _support_rows()
    assert list(rows) == language_codes()
    supported = [code for code, row in rows.items() if row["supported"] == "yes"]
    assert len(supported) >= 44
    for row in rows.values():
        assert (row["supported"] == "yes") == (float(row["accuracy"]) >= 0.90)


def test_dev_accuracy_per_language_matches_the_table(shared_data) -> None:
    ident = LanguageIdentifier(support=None)
    for code, row in _support_rows().items():
        docs = documents(shared_data, code, "dev")
        correct = sum(ident.predict(d).language == code for d in docs)
        assert correct / len(docs) >= float(row["accuracy"]) - 1e-9, code


@pytest.mark.parametrize(
    ("code", "confused_with"),
    [("tw", "ak"), ("tum", "ny"), ("rn", "rw"), ("zht", "zhs"), ("fon", "yo"), ("bm", "ki")],
)
def test_pairs_the_detectors_confuse(shared_data, code: str, confused_with: str) -> None:
    for doc in documents(shared_data, code, "dev")[:3]:
        prediction = identify(doc)
        assert (prediction.language, prediction.best) == (code, code)
        assert prediction.score >= 0.9
    assert identify(documents(shared_data, confused_with, "dev")[0]).language == confused_with


@pytest.mark.parametrize("lang", ["de", "it"])
def test_languages_outside_the_46_are_unknown_not_mislabelled(lang: str) -> None:
    prediction = identify(_lm_eval_text(lang))
    assert prediction.language == UNKNOWN
    assert prediction.reason == "foreign"
    assert 0.0 <= prediction.score <= 1.0


def test_too_little_text_is_unknown() -> None:
    assert identify("ok 42 !!").language == UNKNOWN
    assert identify("ok 42 !!").reason == "too_short"


def test_unsupported_languages_answer_unknown_with_their_score(shared_data) -> None:
    ident = LanguageIdentifier(support={code: code != "tum" for code in language_codes()})
    prediction = ident.predict(documents(shared_data, "tum", "dev")[0])
    assert (prediction.language, prediction.best, prediction.reason) == (
        UNKNOWN,
        "tum",
        "unsupported",
    )
    assert prediction.score > 0.9


def test_step_sets_language_and_keeps_code_hints(shared_data) -> None:
    python_source = inspect.getsource(json)
    docs = [
        Document("sw-0", documents(shared_data, "sw", "dev")[0]),
        Document("zht-0", read_sentences(shared_data, "zht", "dev")[0]),
        Document("py-0", python_source, metadata={"language_hint": "Python"}),
        Document("de-0", _lm_eval_text("de")),
    ]
    step = LanguageID(identifier=default_identifier())
    out = {doc.id: doc for doc in step.run(docs)}
    assert (out["sw-0"].language, out["zht-0"].language) == ("sw", "zht")
    assert out["sw-0"].language_score > 0.9
    assert (out["py-0"].language, out["py-0"].language_score) == ("python", 1.0)
    assert out["de-0"].language == UNKNOWN
    assert out["de-0"].metadata["lid_unknown_reason"] == "foreign"
    assert step.stats.counts["seen"] == 4 and step.stats.counts["code_hint"] == 1

    dropping = LanguageID(drop_unknown=True)
    assert [d.id for d in dropping.run(docs)] == ["sw-0", "zht-0", "py-0"]
    assert dropping.stats.counts["removed_lid_unknown"] == 1


def test_shipped_model_is_small_and_round_trips(tmp_path) -> None:
    assert MODEL_FILE.stat().st_size < 3_000_000
    ensemble = json.loads((MODEL_FILE.parent / "ensemble.json").read_text("utf-8"))
    assert ensemble["languages"] == language_codes()
    tiny = NgramModel.fit({"a": ["aaaa abab"], "b": ["bbbb baba"]}, bits=10)
    tiny.save(tmp_path / "m.npz")
    loaded = NgramModel.load(tmp_path / "m.npz")
    assert loaded.languages == ("a", "b")
    assert loaded.languages[int(loaded.scores("abba aaa").argmax())] == "a"
