"""s1-style selection against a fake reference model: quality, difficulty, domains, reasons."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bloomkit.finetuning.select import (
    DomainClassifier,
    SelectConfig,
    final_answer,
    named_domain,
    quality_reason,
    same_answer,
    sample_diverse,
    select,
)
from bloomkit.finetuning.teacher import TeacherConfig
from tests.finetuning.fake_teacher import FakeTeacher, completion, error, prompt_of


def q(id_, question, solution, thinking="Let me think.", **extra):
    return {
        "id": id_,
        "question": question,
        "solution": solution,
        "thinking": thinking,
        "answer": f"\\boxed{{{solution}}}",
        **extra,
    }


QUESTIONS = [
    q("easy", "How many edges does a complete graph on 6 vertices have?", "15"),
    q("dice", "What is the probability that two fair dice sum to 7?", "1/6", "x" * 300),
    q("eigen", "Find the product of the eigenvalues of the matrix diag(2, 3).", "6", "y" * 200),
    q("ode", "Solve the ordinary differential equation y' = y, y(0) = 1; give y(1).", "2.718"),
    q("apierr", "What is the integral of x^2 from 0 to 1 in closed form?", "1/3", error="http_500"),
    q("image", "In the triangle ![tri](tri.png) shown, find the angle x in degrees.", "40"),
    q("short", "2+2?", "4"),
    q(
        "cut",
        "Prove that there are infinitely many prime numbers of the form 4k+3.",
        "",
        finish_reason="length",
    ),
    q("flaky", "Count the lattice paths from (0,0) to (3,3) moving right or up.", "20"),
]
REFERENCE = {
    "complete graph": "It has \\boxed{15} edges.",
    "dice": "\\boxed{1/5}",
    "eigenvalues": "Answer: 5",
    "differential": "y(1) = e ≈ 2.71828",
}


def reference(body, hit):
    text = prompt_of(body)
    if "lattice" in text:
        return error(503)
    return completion(next((a for k, a in REFERENCE.items() if k in text), "\\boxed{0}"))


def make_config(tmp_path, shared_data, url, **kw) -> SelectConfig:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QUESTIONS))
    ref = TeacherConfig(
        base_url=url, model="tiny-ref", api_key_env=None, backoff_s=0.01, max_retries=1
    )
    domains = str(shared_data / "finetune" / "s1_msc_domains.json")
    return SelectConfig(questions=str(path), references=[ref], domains=domains, **kw)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_selection_keeps_hard_diverse_questions_with_reasons(tmp_path, shared_data):
    with FakeTeacher(reference) as fake:
        report = select(make_config(tmp_path, shared_data, fake.url), tmp_path / "run")
        hits = len(fake.hits)
        select(make_config(tmp_path, shared_data, fake.url), tmp_path / "run")
        assert len(fake.hits) - hits == 2  # only the failed reference answer is asked again
    out = tmp_path / "run" / "select"
    selected = {r["id"]: r for r in read_jsonl(out / "selected.jsonl")}
    assert set(selected) == {"dice", "eigen", "ode"}
    dice = selected["dice"]
    assert dice["domain"] == {"code": "60", "title": "Probability theory and stochastic processes"}
    assert set(dice["reasons"]) == {"quality", "difficulty", "domain", "diversity"}
    assert dice["reasons"]["difficulty"] == "tiny-ref answered '1/5', expected '1/6'"
    assert "matched probab" in dice["reasons"]["domain"]
    assert "trace 311 chars" in dice["reasons"]["diversity"]
    assert selected["eigen"]["domain"]["code"] == "15"
    assert selected["ode"]["domain"]["code"] == "34"
    dropped = {r["id"]: r["reason"] for r in read_jsonl(out / "dropped.jsonl")}
    assert dropped == {
        "easy": "too_easy",
        "apierr": "api_error",
        "image": "bad_format_image",
        "short": "too_short",
        "cut": "truncated",
        "flaky": "reference_error",
    }
    assert report["selected"] == 3 and report["dropped_too_easy"] == 1
    assert report["references"][0]["http_503"] == 2


def test_without_references_difficulty_is_not_measured(tmp_path, shared_data):
    cfg = make_config(tmp_path, shared_data, "http://127.0.0.1:9/v1", num_select=2)
    cfg.references = []
    report = select(cfg, tmp_path)
    rows = read_jsonl(tmp_path / "select" / "selected.jsonl")
    assert report["selected"] == len(rows) == 2
    assert rows[0]["reasons"]["difficulty"] == "not measured (no reference models)"


def test_sampling_favours_longer_traces():
    rows = [{"id": n, "_chars": n} for n in (100, 400, 200, 300)]
    firsts = Counter(sample_diverse({"05": list(rows)}, 1, seed)[0][0]["id"] for seed in range(400))
    assert firsts[400] > firsts[300] > firsts[200] > firsts[100]  # weights 1, 1/2, 1/4, 1/8


def test_domains_are_drawn_uniformly_before_lengths():
    groups = {
        "05": [{"id": f"c{i}", "_chars": 1000 + i} for i in range(10)],
        "60": [{"id": "p", "_chars": 10}],
    }
    firsts = Counter(sample_diverse(groups, 1, seed)[0][0]["id"] for seed in range(400))
    assert 0.4 < firsts["p"] / 400 < 0.6  # the short, lonely domain is drawn half the time


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("Answer: 5", "5"),
        ("the value is 2.71828...", "2.71828"),
        ("yes", "yes"),
    ],
)
def test_final_answer(text, answer):
    assert final_answer(text) == answer


def test_same_answer_normalises():
    assert same_answer("$15$", "15") and same_answer("1,000", "1000.0")
    assert not same_answer("1/5", "1/6")


def test_classifier_falls_back_to_unclassified(shared_data):
    domains = json.loads((shared_data / "finetune" / "s1_msc_domains.json").read_text())
    classifier = DomainClassifier(domains)
    assert classifier.classify("Quelle est la capitale du Kenya ?")[0] == "unclassified"
    code, title, _, matched = classifier.classify("How many spanning trees has the graph K4?")
    assert (code, title, matched) == ("05", "Combinatorics", ["graph"])


# questions in five languages and what a multilingual classifier model would name
MULTILINGUAL = {
    "zh": ("掷两枚均匀的骰子，点数之和为7的概率是多少？", "Domain: 60"),
    "hi": ("दो पासे फेंकने पर योग 7 आने की संभावना क्या है?", "60 (Probability)"),
    "fr": ("Calculez le déterminant de la matrice [[2, 1], [1, 3]].", "15"),
    "es": ("Resuelve la ecuación diferencial y' = 2y con y(0) = 1.", "Code 34."),
    "sw": ("Pembetatu yenye pande 3, 4 na 5 ina eneo gani?", "51"),
    "vague": ("How many spanning trees has the graph K4?", "It is about graphs, I think."),
    "down": ("Wie viele Primzahlen liegen zwischen 10 und 30?", None),  # the model fails
}


def classifier(body, hit):
    question = prompt_of(body).split("Question:\n", 1)[1].split("\n\nAnswer with", 1)[0]
    answer = next(a for q, a in MULTILINGUAL.values() if q == question)
    return error(500) if answer is None else completion(answer)


def test_a_classifier_model_names_domains_in_any_language(tmp_path, shared_data):
    path = tmp_path / "questions.jsonl"
    rows = [q(key, text, "1", "t" * (10 + n)) for n, (key, (text, _)) in
            enumerate(MULTILINGUAL.items())]  # fmt: skip
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    domains_path = shared_data / "finetune" / "s1_msc_domains.json"
    with FakeTeacher(classifier) as fake:
        cfg = SelectConfig(
            questions=str(path), domains=str(domains_path), num_select=10,
            classifier=TeacherConfig(base_url=fake.url, model="judge", api_key_env=None,
                                     backoff_s=0.01, max_retries=0),
        )  # fmt: skip
        report = select(cfg, tmp_path / "run")
        prompt = prompt_of(fake.hits[0])
        hits = len(fake.hits)
        select(cfg, tmp_path / "run")
        assert len(fake.hits) - hits == 1  # the rerun asks again only the failed one
    assert "60: Probability theory and stochastic processes" in prompt
    assert prompt.count("\n") > 61  # the whole taxonomy, one line per domain
    selected = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "select" / "selected.jsonl")}
    codes = {key: row["domain"]["code"] for key, row in selected.items()}
    assert codes == {"zh": "60", "hi": "60", "fr": "15", "es": "34", "sw": "51", "vague": "05",
                     "down": "unclassified"}  # fmt: skip
    assert selected["zh"]["reasons"]["domain"].startswith("60 Probability theory")
    assert "named by judge: 'Domain: 60'" in selected["zh"]["reasons"]["domain"]
    vague = selected["vague"]["reasons"]["domain"]
    assert "classifier named no domain" in vague and "matched graph" in vague
    assert "error http_500" in selected["down"]["reasons"]["domain"]
    assert report["domain_by_classifier"] == 5 and report["domain_by_keywords"] == 2
    assert report["classifier"]["failed"] == 1
    # the English keywords alone would have left every non-English question unclassified
    keywords = DomainClassifier(json.loads(domains_path.read_text(encoding="utf-8")))
    assert {keywords.classify(MULTILINGUAL[k][0])[0] for k in ("zh", "hi", "sw")} == {
        "unclassified"
    }


def test_named_domain_takes_the_first_whole_code():
    codes = ["05", "15", "60"]
    assert named_domain("Code: 60 (not 15)", codes) == "60"
    assert named_domain("In 1960 someone wrote about 05.", codes) == "05"
    assert named_domain("No idea.", codes) is None


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("2+2?", "too_short"),
        ("求函数f(x)=x²的导数。", None),  # 14 characters, 9 tokens: a whole question
        ("x 的平方等于 4，求 x。", None),
        ("Find x if 2x = 10.", None),
        ("Trouve x.", "too_short"),
    ],
)
def test_question_length_counts_tokens_in_every_script(question, reason):
    cfg = SelectConfig(questions="unused.jsonl")
    assert quality_reason(cfg, {"question": question, "answer": "1"}) == reason
