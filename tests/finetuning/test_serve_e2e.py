"""Self-instruct, s1-style select and the whole loop down to SFT arrays with ``bloomkit serve``
(the tiny random BLOOM of ``conftest.py``) as teacher, reference and domain classifier, through
:mod:`bloomkit.finetuning.teacher`.

A random model writes gibberish, so most generations are dropped; these tests check what a user
would: the answers in the journal are the server's, every parsed item is kept or dropped with a
reason and the counts add up, a rerun pays for nothing twice, and the outputs are valid JSONL.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bloomkit.finetuning.distill import DistillConfig, distill
from bloomkit.finetuning.select import SelectConfig, final_answer, select
from bloomkit.finetuning.self_instruct import SelfInstructConfig, self_instruct
from bloomkit.finetuning.sft import SFTDataConfig, SFTSource
from bloomkit.finetuning.sft_data import load_tokenizer, prepare_sft_data
from bloomkit.finetuning.teacher import BudgetExceeded, TeacherConfig, TeacherError
from tests.finetuning.fake_teacher import FakeTeacher, completion, prompt_of
from tests.finetuning.test_select import QUESTIONS
from tests.finetuning.test_self_instruct import answer_in, sentences


@pytest.fixture(scope="module")
def served(tiny_bloom):
    """``bloomkit serve`` of the tiny model, named ``tiny``; yields its ``/v1`` URL."""
    from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread

    app = create_app(tiny_bloom, ServeConfig(model_name="tiny", device="cpu", dtype="float32"))
    with serve_in_thread(app) as url:
        yield url + "/v1"


def teacher(url: str, **kw) -> TeacherConfig:
    """A client of the served tiny model: short sampled answers (greedy decoding of a random
    model repeats one token), priced so that every answer costs something."""
    defaults = dict(base_url=url, model="tiny", api_key_env=None, backoff_s=0.01, max_retries=1,
                    max_tokens=24, price_input_per_1m=1.0, price_output_per_1m=2.0)  # fmt: skip
    return TeacherConfig(**{**defaults, **kw})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_journal(path: Path, endpoint: str) -> list[dict]:
    """Every journal line is an answer of the served model with real token counts."""
    entries = read_jsonl(path)
    obj = "chat.completion" if endpoint == "chat" else "text_completion"
    for entry in entries:
        response = entry["response"]
        assert (response["model"], response["object"]) == ("tiny", obj)
        assert response["usage"]["prompt_tokens"] == entry["prompt_tokens"] > 0
        assert entry["estimated"] is False and entry["cost_usd"] > 0
        assert entry["request"]["model"] == "tiny" and entry["endpoint"] == endpoint
    return entries


# --------------------------------------------------------------------------- self-instruct


def si_config(seeds: Path, url: str, **teacher_kw) -> SelfInstructConfig:
    return SelfInstructConfig(
        seeds=str(seeds), num_instructions=50, languages=["en", "zhs"], prompts_per_round=2,
        max_rounds=2, num_prompt_instructions=2, instructions_per_prompt=3,
        teacher=teacher(url, **{"concurrency": 2, **teacher_kw}),
    )  # fmt: skip


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_self_instruct_against_bloomkit_serve(seeds, served, endpoint, tmp_path):
    # stopping at the first "e" or "a" ends nearly every answer before max_tokens, so the
    # filters (not just the truncation rule) judge the model's real output
    cfg = si_config(seeds, served, endpoint=endpoint, stop=["e", "a"])
    report = self_instruct(cfg, tmp_path)
    out = tmp_path / "self-instruct"
    entries = check_journal(out / "journal.jsonl", endpoint)
    assert len(entries) == report["answers"] == 4 and report["rounds"] == 2
    assert "answers_failed" not in report and report["teacher"]["requests"] == 4
    assert {e["response"]["choices"][0]["finish_reason"] for e in entries} == {"stop"}

    kept, dropped = read_jsonl(out / "instructions.jsonl"), read_jsonl(out / "dropped.jsonl")
    assert len(kept) == report["kept"] and len(kept) + len(dropped) == report["parsed"] >= 4
    reasons = Counter(row["reason"] for row in dropped)
    assert reasons == Counter({k.removeprefix("dropped_"): v for k, v in report.items()
                               if k.startswith("dropped_")})  # fmt: skip
    # every row cites the journaled answer it was parsed from, and its instruction is in it
    answers = {e["key"]: e["response"]["choices"][0] for e in entries}
    for row in kept + dropped:
        choice = answers[row["provenance"]["journal_key"]]
        text = choice["message"]["content"] if endpoint == "chat" else choice["text"]
        assert row["instruction"] in text
        assert row["language"] in ("en", "zhs") and row["provenance"]["teacher"] == "tiny"
    assert len({row["id"] for row in kept + dropped}) == len(kept) + len(dropped)

    again = self_instruct(cfg, tmp_path)
    assert again["teacher"]["reused"] == 4 and again["teacher"].get("requests", 0) == 0
    assert again["teacher"]["spent_usd_this_run"] == 0
    assert len(read_jsonl(out / "journal.jsonl")) == 4
    assert read_jsonl(out / "dropped.jsonl") == dropped  # replayed, not regenerated
    assert {k: v for k, v in again.items() if k != "teacher"} == {
        k: v for k, v in report.items() if k != "teacher"
    }


def test_self_instruct_budget_stop_then_resume_against_bloomkit_serve(seeds, served, tmp_path):
    cfg = si_config(seeds, served, concurrency=1, budget_usd=1e-9)
    with pytest.raises(BudgetExceeded, match="budget spent"):
        self_instruct(cfg, tmp_path)  # the first answer spends the cap, the second is refused
    out = tmp_path / "self-instruct"
    assert len(check_journal(out / "journal.jsonl", "chat")) == 1
    stopped = json.loads((out / "report.json").read_text())
    assert (stopped["answers"], stopped["rounds"]) == (1, 1)

    cfg.teacher = cfg.teacher.model_copy(update={"budget_usd": 1.0})
    report = self_instruct(cfg, tmp_path)
    assert report["teacher"]["reused"] == 1 and report["teacher"]["requests"] == 3
    assert len(check_journal(out / "journal.jsonl", "chat")) == report["answers"] == 4


def test_a_setting_the_server_refuses_stops_the_run_with_the_fix(seeds, served, tmp_path):
    """``max_tokens`` over ``bloomkit serve``'s limit (1024) is wrong for every request: the run
    stops at once naming the setting, rather than failing each prompt of every round."""
    cfg = si_config(seeds, served, max_tokens=3072)
    with pytest.raises(TeacherError, match=r"refused teacher\.max_tokens: max_tokens=3072 is over "
                       r"this server's limit of 1024; change it"):  # fmt: skip
        self_instruct(cfg, tmp_path)
    stopped = json.loads((tmp_path / "self-instruct" / "report.json").read_text())
    assert (stopped["rounds"], stopped["kept"], stopped["teacher"]["http_400"]) == (1, 0, 2)
    assert "answers" not in stopped and stopped["teacher"]["requests"] == 2  # no retries
    assert not (tmp_path / "self-instruct" / "journal.jsonl").exists()  # nothing was paid for


# --------------------------------------------------------------------------- select


def test_select_with_bloomkit_serve_as_reference(served, shared_data, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in QUESTIONS))
    cfg = SelectConfig(
        questions=str(questions), references=[teacher(served)], num_select=100,
        domains=str(shared_data / "finetune" / "s1_msc_domains.json"),
    )  # fmt: skip
    report = select(cfg, tmp_path)
    out = tmp_path / "select"
    entries = check_journal(out / "reference-0-journal.jsonl", "chat")
    # the four quality drops (API error, image, too short, truncated) never reach the server
    asked = [e["request"]["messages"][0]["content"] for e in entries]
    passed = [r for r in QUESTIONS if r["id"] not in ("apierr", "image", "short", "cut")]
    assert sorted(asked) == sorted(f"{r['question']}\n\nPut the final answer in \\boxed{{}}."
                                   for r in passed)  # fmt: skip

    selected, dropped = read_jsonl(out / "selected.jsonl"), read_jsonl(out / "dropped.jsonl")
    assert sorted(r["id"] for r in selected + dropped) == sorted(r["id"] for r in QUESTIONS)
    assert report["selected"] == len(selected) and report["questions"] == len(QUESTIONS)
    assert sum(v for k, v in report.items() if k.startswith("dropped_")) == len(dropped)
    assert all(row["reason"] for row in dropped)
    answered = {e["request"]["messages"][0]["content"].split("\n\n")[0]:
                e["response"]["choices"][0]["message"]["content"] for e in entries}  # fmt: skip
    for row in selected:  # hard: the server's answer, graded, is quoted as the reason
        got, expected = final_answer(answered[row["question"]]), final_answer(row["solution"])
        assert row["reasons"]["difficulty"] == f"tiny answered {got!r}, expected {expected!r}"
        assert set(row["reasons"]) == {"quality", "difficulty", "domain", "diversity"}
    cost = report["references"][0]
    assert cost["model"] == "tiny" and cost["requests"] == len(passed) and cost["spent_usd_total"]

    again = select(cfg, tmp_path)
    assert again["references"][0]["reused"] == len(passed)
    assert again["references"][0].get("requests", 0) == 0
    assert read_jsonl(out / "selected.jsonl") == selected
    assert len(read_jsonl(out / "reference-0-journal.jsonl")) == len(passed)


# --------------------------------------------------------------------------- the whole loop


def test_loop_self_instruct_select_distill_gives_sft_data(
    seeds, served, tiny_bloom, shared_data, tmp_path
):
    """Self-instruct → select → distill → SFT arrays. A random model cannot write the numbered
    Instruction/Input/Output format, so the self-instruct teacher is the scripted fake (real
    SIB-200 sentences in English, Chinese and Hindi); the reference model, the domain classifier
    and the distillation teacher are ``bloomkit serve``."""
    texts = {code: sentences(shared_data, code) for code in ("en", "zhs", "hi")}
    with FakeTeacher(lambda body, hit: completion(answer_in(prompt_of(body), texts))) as fake:
        cfg = SelfInstructConfig(
            seeds=str(seeds), num_instructions=6, languages=["en", "zhs", "hi"],
            prompts_per_round=3, teacher=TeacherConfig(base_url=fake.url, api_key_env=None),
        )  # fmt: skip
        made = self_instruct(cfg, tmp_path)
    instructions = tmp_path / "self-instruct" / "instructions.jsonl"
    assert made["kept"] == 6

    picked = select(
        SelectConfig(
            questions=str(instructions), question_field="instruction", solution_field="output",
            references=[teacher(served, max_tokens=8)], classifier=teacher(served, max_tokens=4),
            domains=str(shared_data / "finetune" / "s1_msc_domains.json"), num_select=4,
        ),
        tmp_path,
    )  # fmt: skip
    selected = read_jsonl(tmp_path / "select" / "selected.jsonl")
    dropped = sum(v for k, v in picked.items() if k.startswith("dropped_"))
    assert picked["selected"] == len(selected) == min(4, 6 - dropped)
    assert picked["domain_by_classifier"] + picked["domain_by_keywords"] == 6 - dropped
    check_journal(tmp_path / "select" / "classifier-journal.jsonl", "chat")
    made_ids = {row["id"] for row in read_jsonl(instructions)}
    assert {row["id"] for row in selected} <= made_ids

    distilled = distill(
        DistillConfig(questions=str(tmp_path / "select" / "selected.jsonl"),
                      question_field="instruction", require_thinking=False,
                      keep_truncated=True,  # a random model rarely stops within 8 tokens
                      teacher=teacher(served, max_tokens=8)),
        tmp_path,
    )  # fmt: skip
    check_journal(tmp_path / "distill" / "journal.jsonl", "chat")
    sft_rows = read_jsonl(tmp_path / "distill" / "sft.jsonl")
    assert distilled.get("kept", 0) == len(sft_rows) >= 2, distilled
    assert {row["id"] for row in sft_rows} <= {row["id"] for row in selected}
    assert {row["language"] for row in sft_rows} <= {"en", "zhs", "hi"}

    data = SFTDataConfig(sources=[SFTSource(path=str(tmp_path / "distill" / "sft.jsonl"))])
    report = prepare_sft_data(data, load_tokenizer(tiny_bloom), tmp_path / "sft",
                              seq_length=256)  # fmt: skip
    assert report["kept"] == report["rows"] == len(sft_rows) and not report["problems"]
    assert (tmp_path / "sft" / "train" / "tokens.npy").is_file()
