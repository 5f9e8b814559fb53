"""Distillation: questions → teacher traces (thinking + answer) → SFT rows.

As in s1 (Muennighoff et al., 2025, §2): each question is sent to a reasoning teacher and its
thinking and answer are stored, then written as one assistant turn with the delimiters the
student will be trained (and budget-forced) with, e.g. ``<think>…</think>`` then the answer.

The teacher's thinking is read from a separate reasoning field when the server sends one
(``reasoning_content``, as DeepSeek-R1 / vLLM do), else from between ``teacher_think`` markers
in the answer text (``<think>``/``</think>`` by default); an answer with neither has no thinking
and is dropped when ``require_thinking``.

Outputs (``RUN/distill/``): ``traces.jsonl`` (``id``, ``question``, ``thinking``, ``answer``,
``finish_reason``, ``error`` and the question row's other fields: the input of
``bloomkit finetune select``), ``sft.jsonl`` (``chat`` or ``alpaca`` rows as
:mod:`.formats` reads them), ``report.json`` (counts, ``dropped_<reason>``, cost) and
``journal.jsonl``. A rerun answers from the journal and pays only for the questions never
answered.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from bloomkit.config import Section
from bloomkit.finetuning.teacher import Reply, Teacher, TeacherConfig, TeacherError
from bloomkit.rundir import atomic_path, atomic_write_json


class DistillConfig(Section):
    """``bloomkit finetune distill`` config."""

    questions: str
    """JSONL of questions: ``question_field`` and optionally ``id``, ``language``, …"""
    question_field: str = "question"
    prompt: str = "{question}"
    """Sent to the teacher; ``{question}`` is replaced by the question."""
    teacher_think: tuple[str, str] = ("<think>", "</think>")
    """How the teacher marks thinking inside its answer text, when it has no reasoning field."""
    think_open: str = "<think>\n"
    """Student delimiters: the SFT response is ``think_open + thinking + think_close +
    answer_open + answer``."""
    think_close: str = "\n</think>\n"
    answer_open: str = ""
    format: Literal["chat", "alpaca"] = "chat"
    require_thinking: bool = True
    keep_truncated: bool = False
    """Keep answers that stopped at ``max_tokens`` (s1 drops them)."""
    min_answer_chars: Annotated[int, Field(ge=0)] = 1
    teacher: TeacherConfig = TeacherConfig(max_tokens=8192, temperature=0.0)


def read_questions(path: Path, field: str, strict: bool = True) -> list[dict[str, Any]]:
    """Question rows; a line that is not a JSON object, or (``strict``) has no text in ``field``,
    is an error naming its line. Not ``strict``: such a row gets ``field`` = ``""``."""
    if not path.is_file():
        raise FileNotFoundError(f"questions not found: {path}")
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{number}: not JSON ({err.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{number}: not a JSON object")
            continue
        if not isinstance(row.get(field), str) or not row[field].strip():
            if strict:
                problems.append(f"{path}:{number}: no text in field {field!r}")
                continue
            row[field] = ""
        rows.append({**row, "id": row.get("id", f"{path.stem}-{number}")})
    if problems:
        raise ValueError(f"{len(problems)} bad question row(s):\n  " + "\n  ".join(problems[:10]))
    return rows


def split_thinking(reply: Reply, markers: tuple[str, str]) -> tuple[str, str]:
    """(thinking, answer) of a reply: its reasoning field, else the text between ``markers``
    (an unclosed opening marker: all that follows is thinking, the answer is empty)."""
    if reply.thinking:
        return reply.thinking.strip(), reply.text.strip()
    open_, close = markers
    before, found, rest = reply.text.partition(open_)
    if not found:
        return "", reply.text.strip()
    thinking, closed, answer = rest.partition(close)
    return thinking.strip(), (before + answer).strip() if closed else ""


def sft_row(cfg: DistillConfig, question: str, thinking: str, answer: str) -> dict[str, Any]:
    """One SFT row in ``cfg.format``."""
    response = f"{cfg.think_open}{thinking}{cfg.think_close}{cfg.answer_open}{answer}"
    if cfg.format == "alpaca":
        return {"instruction": question, "input": "", "output": response}
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": response}]}  # fmt: skip


def drop_reason(cfg: DistillConfig, reply: Reply, thinking: str, answer: str) -> str | None:
    if reply.error:
        return "api_error"
    if reply.truncated and not cfg.keep_truncated:
        return "truncated"
    if cfg.require_thinking and not thinking:
        return "no_thinking"
    if len(answer) < cfg.min_answer_chars:
        return "no_answer"
    return None


def distill(cfg: DistillConfig, run_dir: Path) -> dict[str, Any]:
    """Collect traces for every question; return the report (also ``report.json``). Raises
    :class:`~bloomkit.finetuning.teacher.TeacherError` after writing every paid answer."""
    return asyncio.run(_distill(cfg, Path(run_dir) / "distill"))


async def _distill(cfg: DistillConfig, out: Path) -> dict[str, Any]:
    questions = read_questions(Path(cfg.questions), cfg.question_field)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter(questions=len(questions))
    async with Teacher(cfg.teacher, out / "journal.jsonl") as teacher:
        asks = [teacher.ask(cfg.prompt.replace("{question}", q[cfg.question_field]), tag=q["id"])
                for q in questions]  # fmt: skip
        replies = await asyncio.gather(*asks, return_exceptions=True)
        for reply in replies:  # a bug, not a teacher failure: surface it
            if isinstance(reply, BaseException) and not isinstance(reply, TeacherError):
                raise reply
        stop = next((r for r in replies if isinstance(r, TeacherError)), None)
        with atomic_path(out / "traces.jsonl") as traces_tmp, \
             atomic_path(out / "sft.jsonl") as sft_tmp, \
             open(traces_tmp, "w", encoding="utf-8") as traces, \
             open(sft_tmp, "w", encoding="utf-8") as sft:  # fmt: skip
            for question, reply in zip(questions, replies, strict=True):
                if isinstance(reply, BaseException):
                    counts["not_asked"] += 1
                    continue
                thinking, answer = split_thinking(reply, cfg.teacher_think)
                trace = {**question, "thinking": thinking, "answer": answer,
                         "finish_reason": reply.finish_reason, "error": reply.error,
                         "journal_key": reply.key}  # fmt: skip
                traces.write(json.dumps(trace, ensure_ascii=False) + "\n")
                reason = drop_reason(cfg, reply, thinking, answer)
                if reason is not None:
                    counts[f"dropped_{reason}"] += 1
                    continue
                row = sft_row(cfg, question[cfg.question_field], thinking, answer)
                extra = {k: question[k] for k in ("id", "language") if k in question}
                sft.write(json.dumps({**row, **extra}, ensure_ascii=False) + "\n")
                counts["kept"] += 1
        report = {**dict(sorted(counts.items())), "teacher": teacher.report()}
    atomic_write_json(out / "report.json", report)
    if stop is not None:
        raise stop
    return report
