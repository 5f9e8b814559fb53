"""Distillation against a fake reasoning teacher: delimiters, formats, drops, resume."""

from __future__ import annotations

import json

import pytest

from bloomkit.finetuning.distill import DistillConfig, distill
from bloomkit.finetuning.formats import normalise
from bloomkit.finetuning.teacher import TeacherConfig
from tests.finetuning.fake_teacher import FakeTeacher, completion, error, prompt_of

QUESTIONS = [
    {"id": "sum", "question": "What is 17 + 25?", "language": "en"},
    {"id": "zh", "question": "一个三角形的内角和是多少度？", "language": "zhs"},
    {"id": "tags", "question": "How many primes are below 10?"},
    {"id": "cut", "question": "Prove the Riemann hypothesis."},
    {"id": "fail", "question": "This one always fails."},
]


def teacher_script(body, hit):
    q = prompt_of(body)
    if "17 + 25" in q:  # a reasoning field, as DeepSeek-R1 / vLLM send it
        return completion("42", thinking="17 + 25: 7 + 5 = 12, carry 1; 1 + 2 + 1 = 4.")
    if "三角形" in q:
        return completion("180度", thinking="三角形内角和定理。")
    if "primes" in q:  # thinking inline between markers
        return completion("<think>2, 3, 5, 7 are prime.</think>\nThere are 4.")
    if "Riemann" in q:
        return completion("<think>Consider the zeta function and", finish="length")
    return error(500)


def make_config(tmp_path, url, **kw) -> DistillConfig:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUESTIONS))
    teacher = TeacherConfig(base_url=url, api_key_env=None, backoff_s=0.01, max_retries=1)
    return DistillConfig(questions=str(path), teacher=teacher, **kw)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_traces_become_chat_rows_with_the_students_delimiters(tmp_path):
    with FakeTeacher(teacher_script) as fake:
        report = distill(make_config(tmp_path, fake.url), tmp_path / "run")
        hits = len(fake.hits)
        again = distill(make_config(tmp_path, fake.url), tmp_path / "run")
        assert len(fake.hits) - hits == 2  # only the failing question is asked again (2 tries)
    assert again["teacher"]["reused"] == 4
    rows = read_jsonl(tmp_path / "run" / "distill" / "sft.jsonl")
    assert [r["id"] for r in rows] == ["sum", "zh", "tags"]
    assert rows[0]["messages"][1]["content"] == (
        "<think>\n17 + 25: 7 + 5 = 12, carry 1; 1 + 2 + 1 = 4.\n</think>\n42"
    )
    assert (
        rows[2]["messages"][1]["content"]
        == "<think>\n2, 3, 5, 7 are prime.\n</think>\nThere are 4."
    )
    assert report["dropped_truncated"] == 1 and report["dropped_api_error"] == 1
    assert report["kept"] == 3
    for i, row in enumerate(rows):  # formats.py reads them
        assert normalise(row, "chat", f"sft.jsonl:{i + 1}")[0].messages[0][0] == "user"
    traces = read_jsonl(tmp_path / "run" / "distill" / "traces.jsonl")
    assert traces[3]["finish_reason"] == "length" and traces[4]["error"].startswith("http_500")


def test_alpaca_format_and_custom_delimiters(tmp_path):
    with FakeTeacher(teacher_script) as fake:
        cfg = make_config(
            tmp_path,
            fake.url,
            format="alpaca",
            think_open="<|thinking|>",
            think_close="<|/thinking|>",
            answer_open="Answer: ",
        )
        distill(cfg, tmp_path)
    rows = read_jsonl(tmp_path / "distill" / "sft.jsonl")
    assert rows[1]["output"] == "<|thinking|>三角形内角和定理。<|/thinking|>Answer: 180度"
    assert rows[1]["language"] == "zhs"
    example = normalise(rows[1], "alpaca", "x")[0]
    assert example.meta == {"id": "zh", "language": "zhs"}


def test_bad_question_rows_are_named(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?"}\nnot json\n{"prompt": "wrong field"}\n')
    cfg = DistillConfig(questions=str(path))
    with pytest.raises(ValueError, match=r"q.jsonl:2: not JSON(.|\n)*q.jsonl:3: no text in field"):
        distill(cfg, tmp_path)


def test_cli_reports_and_exits_2_on_a_spent_budget(tmp_path):
    import typer
    from typer.testing import CliRunner

    from bloomkit.finetuning.recipes_cli import distill_command

    app = typer.Typer()
    app.command("distill")(distill_command)
    app.command("unused")(lambda: None)  # two commands: the name is a subcommand
    with FakeTeacher(teacher_script) as fake:
        make_config(tmp_path, fake.url)  # writes questions.jsonl
        (tmp_path / "distill.yaml").write_text(
            f"questions: {tmp_path / 'questions.jsonl'}\n"
            f"teacher: {{base_url: '{fake.url}', api_key_env: null, backoff_s: 0.01,"
            " max_retries: 0, price_output_per_1m: 1000.0, concurrency: 1}\n"
        )
        run = ["distill", str(tmp_path / "distill.yaml"), "--run-dir", str(tmp_path / "run")]
        result = CliRunner().invoke(app, [*run, "--set", "teacher.budget_usd=0.1"])
        assert result.exit_code == 2, result.output
        assert "budget spent" in result.output and "--set teacher.budget_usd" in result.output
        assert len(fake.hits) == 2  # $0.05 an answer: the third is refused
        result = CliRunner().invoke(app, [*run, "--set", "teacher.budget_usd=10"])
        assert result.exit_code == 0, result.output
        assert "spent_usd_this_run" in result.output
        assert len(fake.hits) == 5  # 2 reused, 3 new (the failing one once)


def test_end_to_end_against_bloomkit_serve(tiny_bloom, tmp_path):
    """The real server over a tiny random BLOOM: answers are gibberish, but the client, the
    journal, the usage-based cost and the output formats work end to end."""
    from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread

    app = create_app(tiny_bloom, ServeConfig(model_name="tiny", device="cpu", dtype="float32"))
    with serve_in_thread(app) as url:
        cfg = make_config(tmp_path, url + "/v1", require_thinking=False, keep_truncated=True)
        cfg.teacher = cfg.teacher.model_copy(
            update={
                "model": "tiny",
                "max_tokens": 6,
                "temperature": 0.0,
                "price_output_per_1m": 1.0,
            }
        )
        report = distill(cfg, tmp_path / "run")
        again = distill(cfg, tmp_path / "run")
    assert report["teacher"]["completion_tokens"] > 0
    assert report["teacher"]["spent_usd_total"] > 0 and not report["teacher"].get("usage_estimated")
    assert again["teacher"]["reused"] == len(QUESTIONS)
    rows = read_jsonl(tmp_path / "run" / "distill" / "sft.jsonl")
    assert len(rows) + report.get("dropped_no_answer", 0) == len(QUESTIONS)
