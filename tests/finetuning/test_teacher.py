"""The teacher client against fake servers: retries, Retry-After, garbage, budget, journal."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from bloomkit.finetuning.teacher import BudgetExceeded, Teacher, TeacherConfig, TeacherError
from tests.finetuning.fake_teacher import (
    MALFORMED,
    NO_CHOICES,
    Answer,
    FakeTeacher,
    completion,
    error,
)


def config(url: str, **kw) -> TeacherConfig:
    defaults = dict(base_url=url, backoff_s=0.01, max_retries=3, timeout_s=2.0, api_key_env=None)
    return TeacherConfig(**{**defaults, **kw})


def ask_all(cfg: TeacherConfig, journal, prompts, **kw):
    async def main():
        async with Teacher(cfg, journal) as teacher:
            replies = await asyncio.gather(*(teacher.ask(p, **kw) for p in prompts))
            return replies, teacher

    return asyncio.run(main())


def test_answer_is_journaled_and_costed(tmp_path):
    with FakeTeacher(lambda body, hit: completion("42", usage=(1000, 500))) as fake:
        cfg = config(fake.url, price_input_per_1m=2.0, price_output_per_1m=10.0)
        (reply,), teacher = ask_all(cfg, tmp_path / "j.jsonl", ["6 × 7?"])
    assert (reply.text, reply.error, reply.reused) == ("42", None, False)
    entry = json.loads((tmp_path / "j.jsonl").read_text())
    assert entry["response"]["choices"][0]["message"]["content"] == "42"
    assert entry["cost_usd"] == pytest.approx(1000 * 2 / 1e6 + 500 * 10 / 1e6)
    assert teacher.report()["spent_usd_this_run"] == pytest.approx(0.007)
    assert fake.hits[0]["messages"] == [{"role": "user", "content": "6 × 7?"}]


def test_5xx_and_timeouts_are_retried_with_backoff(tmp_path):
    script = [error(500), error(503), Answer(delay_s=1.0), completion("ok")]
    with FakeTeacher(lambda body, hit: script[hit]) as fake:
        (reply,), teacher = ask_all(config(fake.url, timeout_s=0.3), tmp_path / "j.jsonl", ["q"])
    assert reply.text == "ok"
    assert len(fake.hits) == 4
    stats = teacher.report()
    assert (stats["http_500"], stats["http_503"], stats["timeouts"], stats["retries"]) == (
        1,
        1,
        1,
        3,
    )


def test_429_retry_after_is_honoured(tmp_path):
    script = [error(429, "slow down", Retry_After="1"), completion("ok")]
    with FakeTeacher(lambda body, hit: script[hit]) as fake:
        start = time.perf_counter()
        (reply,), teacher = ask_all(config(fake.url), tmp_path / "j.jsonl", ["q"])
    assert reply.text == "ok"
    assert time.perf_counter() - start >= 1.0  # backoff_s alone would wait ~0.01 s
    assert teacher.report()["http_429"] == 1


def test_garbage_is_counted_not_crashing(tmp_path):
    def script(body, hit):
        return (
            MALFORMED
            if "always" in body["messages"][0]["content"]
            else [MALFORMED, NO_CHOICES, completion("ok")][hit]
        )

    with FakeTeacher(script) as fake:
        (good,), teacher = ask_all(config(fake.url), tmp_path / "j.jsonl", ["fine"])
        (bad,), teacher2 = ask_all(
            config(fake.url, max_retries=1), tmp_path / "j.jsonl", ["always"]
        )
    assert good.text == "ok"
    assert (teacher.report()["malformed_json"], teacher.report()["malformed_reply"]) == (1, 1)
    assert bad.error.startswith("malformed_json: gave up after 2 attempts")
    assert teacher2.report()["failed_malformed_json"] == 1


def test_truncated_and_missing_usage(tmp_path):
    answer = completion("cut mid-sent", finish="length", usage=None)
    with FakeTeacher(lambda body, hit: answer) as fake:
        (reply,), teacher = ask_all(
            config(fake.url, price_output_per_1m=1.0), tmp_path / "j", ["q"]
        )
    assert reply.truncated
    stats = teacher.report()
    assert (stats["truncated"], stats["usage_estimated"]) == (1, 1)
    assert stats["spent_usd_total"] > 0  # no usage is charged by characters, not free


def test_fatal_status_and_unreachable_raise_clear_errors(tmp_path):
    with FakeTeacher(lambda body, hit: error(401, "bad key")) as fake:
        with pytest.raises(TeacherError, match="401: bad key; check the API key"):
            ask_all(config(fake.url), tmp_path / "j.jsonl", ["q"])
        url = fake.url
    with pytest.raises(TeacherError, match=r"unreachable.*bloomkit serve"):
        ask_all(config(url, max_retries=1), tmp_path / "j.jsonl", ["q"])


def test_concurrency_limit(tmp_path):
    inflight, peak, lock = [0], [0], threading.Lock()

    def script(body, hit):
        with lock:
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])
        time.sleep(0.05)
        with lock:
            inflight[0] -= 1
        return completion("ok")

    with FakeTeacher(script) as fake:
        replies, _ = ask_all(
            config(fake.url, concurrency=3), tmp_path / "j", [str(i) for i in range(12)]
        )
    assert all(r.text == "ok" for r in replies)
    assert peak[0] <= 3


def test_budget_stops_and_rerun_reuses_the_journal(tmp_path):
    journal = tmp_path / "j.jsonl"
    # each answer costs 1000 × $1/1M = $0.001; the cap allows 3
    with FakeTeacher(lambda body, hit: completion(f"a{hit}", usage=(0, 1000))) as fake:
        cfg = config(fake.url, concurrency=1, price_output_per_1m=1.0, budget_usd=0.003)
        with pytest.raises(BudgetExceeded, match=r"\$0\.0030 of teacher.budget_usd=\$0.003"):
            ask_all(cfg, journal, [f"q{i}" for i in range(5)])
        assert len(fake.hits) == 3
        assert len(journal.read_text().splitlines()) == 3  # every paid answer kept
        with pytest.raises(BudgetExceeded, match="refusing to start"):
            ask_all(cfg, journal, ["q0"])
        # the cap raised: the three paid answers come from the journal, two new ones are paid
        replies, teacher = ask_all(
            cfg.model_copy(update={"budget_usd": 1.0}), journal, [f"q{i}" for i in range(5)]
        )
        assert len(fake.hits) == 5
    assert [r.reused for r in replies] == [True, True, True, False, False]
    assert teacher.report()["reused"] == 3
    assert teacher.report()["spent_usd_total"] == pytest.approx(0.005)


def test_torn_journal_line_is_skipped(tmp_path):
    journal = tmp_path / "j.jsonl"
    with FakeTeacher(lambda body, hit: completion("ok")) as fake:
        ask_all(config(fake.url), journal, ["q"])
        with open(journal, "a") as handle:
            handle.write('{"key": "half-writ')  # a crash mid-append
        (reply,), teacher = ask_all(config(fake.url), journal, ["q"])
        assert len(fake.hits) == 1
    assert reply.reused and teacher.report()["journal_torn_lines"] == 1
