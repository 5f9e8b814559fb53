"""Self-instruct in any of the 46 languages: seed tasks → teacher → new Alpaca-format rows.

The recipe of Stanford Alpaca's ``generate_instruction.py`` (Taori et al., 2023, after Wang et
al., 2022, "Self-Instruct"): each prompt shows ``num_prompt_instructions`` seed tasks and asks
for ``instructions_per_prompt`` new ones; the numbered answer is parsed and filtered, and a new
instruction is kept only when its ROUGE-L against every seed and every kept instruction is below
``rouge_threshold`` (0.7 in Alpaca). Made multilingual:

- each prompt names a target language (``languages`` rotate over the prompts);
- the filters (:mod:`.instruction_filters`) measure length in tokens that are words of spaced
  scripts and characters of unspaced ones; ROUGE-L splits unspaced scripts (Chinese, Japanese,
  Thai…) into characters;
- the blacklist (tasks a text-only model cannot do: images, files, audio…) is a table for the
  46 languages (``tables/instruction_blacklist.tsv``, extended by ``blacklist``); a language
  without terms gets none, and the report lists it;
- Alpaca's "first character must be ASCII" rule is gone; an instruction must instead be written
  mostly (``min_script_share``) in its language's script (``languages.tsv``), which drops
  English answers to a Hindi prompt but cannot tell two Latin-script languages apart.

Outputs (``RUN/self-instruct/``): ``instructions.jsonl`` (``instruction``, ``input``,
``output``, ``language``, ``id``, ``provenance``), ``dropped.jsonl`` (with ``reason``),
``report.json`` (counts, ``dropped_<reason>``, per-language counts, the teacher's cost report),
``journal.jsonl`` (every paid answer, appended and flushed as it lands). Rounds are deterministic
in ``seed``, so a rerun replays them from the journal and pays only for prompts never answered;
the other outputs are rebuilt by every run and each appears in one rename when the run ends.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator

from bloomkit.config import Section
from bloomkit.data_tooling.languages import languages
from bloomkit.finetuning.instruction_filters import (
    BLACKLIST,
    InstructionFilter,
    Novelty,
    blacklist_pattern,
)
from bloomkit.finetuning.teacher import Reply, Teacher, TeacherConfig, TeacherError
from bloomkit.rundir import atomic_write_json, atomic_write_text

# --------------------------------------------------------------------------- prompt and parsing

PROMPT = """You are asked to come up with a set of {n} diverse task instructions. These task \
instructions will be given to a language model and we will evaluate the model on completing them.

Here are the requirements:
1. Try not to repeat the verb for each instruction to maximize diversity.
2. The language used for the instruction also should be diverse. For example, you should combine \
questions with imperative instructions.
3. The type of instructions should be diverse: open-ended generation, classification, editing, \
brainstorming, rewriting, question answering, reasoning and so on.
4. A language model should be able to complete the instruction: do not ask for images, audio, \
files or actions in the world.
5. Write every instruction, input and output in {language}. Keep the labels "Instruction:", \
"Input:" and "Output:" in English.
6. The instructions should be 1 to 2 sentences long.
7. Generate an appropriate input for the instruction when it needs one, with realistic data; \
otherwise write "<noinput>".
8. The output should be an appropriate response to the instruction and the input.

List of {n} tasks:
"""

_LABEL = re.compile(
    r"^[ \t>#*_-]*(?:\d+\s*[.):：]\s*)?[*_]*(instruction|input|output)[*_]*\s*[:：][*_]*[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_NO_INPUT = re.compile(r"^<?\s*no\s*-?\s*input\s*>?\.?$", re.IGNORECASE)


def build_prompt(examples: list[dict[str, Any]], language: str, n: int) -> str:
    """The generation prompt: requirements, then the examples numbered ``1.``… and the opening
    ``k+1. Instruction:`` for the model to continue."""
    text = PROMPT.format(n=n, language=language)
    for i, task in enumerate(examples, 1):
        instance = task["instances"][0]
        text += f"###\n{i}. Instruction: {task['instruction']}\n"
        text += f"{i}. Input:\n{instance.get('input') or '<noinput>'}\n"
        text += f"{i}. Output:\n{instance['output']}\n"
    return text + f"###\n{len(examples) + 1}. Instruction:"


def parse_instructions(text: str) -> list[dict[str, str]]:
    """Numbered ``Instruction:/Input:/Output:`` blocks, tolerant of Markdown bold, missing
    numbers, full-width colons and ``###`` separators. Text before the first label counts as an
    instruction when the first label is an input or output (a completion that continues the
    prompt's open ``k+1. Instruction:``). A block missing a field has it empty."""
    first = _LABEL.search(text)
    if first is None or first.group(1).lower() != "instruction":
        text = "Instruction: " + text
    records: list[dict[str, str]] = []
    matches = list(_LABEL.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = re.sub(r"\s*#{3,}\s*$", "", text[match.end() : end].strip()).strip()
        label = match.group(1).lower()
        if label == "instruction" or not records or label in records[-1]:
            records.append({})
        records[-1][label] = "" if label == "input" and _NO_INPUT.match(value) else value
    return [{k: r.get(k, "") for k in ("instruction", "input", "output")} for r in records]


# --------------------------------------------------------------------------- the run


class SelfInstructConfig(Section):
    """``bloomkit finetune self-instruct`` config."""

    seeds: str
    """Seed tasks, self-instruct JSONL: ``instruction``, ``instances: [{input, output}]``."""
    num_instructions: Annotated[int, Field(gt=0)] = 100
    """Stop once this many instructions are kept (Alpaca: 52,002)."""
    languages: Annotated[list[str], Field(min_length=1)] = ["en"]
    """Target languages (BLOOM codes); prompt ``i`` of a round asks for ``languages[i % n]``."""
    prompts_per_round: Annotated[int, Field(gt=0)] = 8
    """Prompts sent together; their answers are filtered in order, then written."""
    max_rounds: Annotated[int, Field(gt=0)] = 1000
    """Stop after this many rounds even when short of ``num_instructions`` (a useless teacher)."""
    num_prompt_instructions: Annotated[int, Field(gt=0)] = 3
    instructions_per_prompt: Annotated[int, Field(gt=0)] = 20
    min_tokens: Annotated[int, Field(ge=0)] = 3
    """Shortest instruction, in words of spaced scripts and characters of unspaced ones
    (翻译成英文 is 5, "Name a colour." 3)."""
    max_chars: Annotated[int, Field(gt=0)] = 1000
    rouge_threshold: Annotated[float, Field(gt=0, le=1)] = 0.7
    min_script_share: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Least share of an instruction's letters in its language's script; 0 turns it off."""
    blacklist: dict[str, list[str]] = {}
    """Extra blacklisted words per language code, added to :data:`BLACKLIST`."""
    seed: int = 1234
    teacher: TeacherConfig = TeacherConfig()

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, codes: list[str]) -> list[str]:
        unknown = [c for c in codes if c not in languages()]
        if unknown:
            raise ValueError(f"unknown language code(s) {unknown}; known: {', '.join(languages())}")
        return codes

    @field_validator("blacklist")
    @classmethod
    def _usable_terms(cls, extra: dict[str, list[str]]) -> dict[str, list[str]]:
        for code, words in extra.items():
            if code not in languages():
                raise ValueError(f"blacklist: unknown language code {code!r}")
            blacklist_pattern(words)  # refuses a single Han character, which matches inside words
        return extra


def seed_problem(task: Any) -> str | None:
    """What is wrong with one seed task, naming the field, or None."""
    if not isinstance(task, dict):
        return f"expected a JSON object, got {type(task).__name__}"
    if "instruction" not in task:
        return "missing field 'instruction'"
    if not isinstance(task["instruction"], str) or not task["instruction"].strip():
        return "field 'instruction' is empty or not text"
    instances = task.get("instances")
    if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
        return "missing field 'instances' (a list of {input, output})"
    if not isinstance(instances[0].get("output"), str):
        return "missing field 'instances[0].output'"
    return None


def read_seeds(path: Path) -> list[dict[str, Any]]:
    """Seed tasks, each checked for an instruction and a first instance with an output."""
    if not path.is_file():
        raise FileNotFoundError(f"seed tasks not found: {path}")
    seeds, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{number}: invalid JSON: {err}")
            continue
        problem = seed_problem(task)
        if problem is not None:
            problems.append(f"{path}:{number}: {problem}")
            continue
        seeds.append({**task, "id": task.get("id", f"{path.name}:{number}")})
    if problems:
        shown = "\n  ".join(problems[:10])
        raise ValueError(f"{len(problems)} bad seed task(s) (need instruction and "
                         f"instances[0].output):\n  {shown}")  # fmt: skip
    return seeds


def _request(cfg: SelfInstructConfig, seeds: list[dict[str, Any]], rnd: int, i: int):
    """(language, seed ids, prompt) of prompt ``i`` in round ``rnd``: fixed by ``cfg.seed``."""
    rng = random.Random(f"{cfg.seed}/{rnd}/{i}")
    examples = rng.sample(seeds, min(cfg.num_prompt_instructions, len(seeds)))
    code = cfg.languages[(rnd * cfg.prompts_per_round + i) % len(cfg.languages)]
    prompt = build_prompt(examples, languages()[code].name, cfg.instructions_per_prompt)
    return code, [t["id"] for t in examples], prompt


def self_instruct(cfg: SelfInstructConfig, run_dir: Path) -> dict[str, Any]:
    """Generate until ``num_instructions`` are kept; return the report (also ``report.json``).
    Raises :class:`~bloomkit.finetuning.teacher.TeacherError` (budget, key, unreachable) after
    writing out every answer paid for so far."""
    return asyncio.run(_self_instruct(cfg, Path(run_dir) / "self-instruct"))


async def _self_instruct(cfg: SelfInstructConfig, out: Path) -> dict[str, Any]:
    seeds = read_seeds(Path(cfg.seeds))
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(cfg, seeds, out)
    stop: TeacherError | None = None
    rnd = 0
    async with Teacher(cfg.teacher, out / "journal.jsonl") as teacher:
        try:
            while writer.kept < cfg.num_instructions and rnd < cfg.max_rounds and stop is None:
                requests = [_request(cfg, seeds, rnd, i) for i in range(cfg.prompts_per_round)]
                asks = [teacher.ask(p, tag=f"round-{rnd}/prompt-{i}") for i, (_, _, p) in
                        enumerate(requests)]  # fmt: skip
                # return_exceptions: a budget stop lets the answers already in flight land
                replies = await asyncio.gather(*asks, return_exceptions=True)
                for i, (request, reply) in enumerate(zip(requests, replies, strict=True)):
                    if isinstance(reply, TeacherError):
                        stop = stop or reply
                    elif isinstance(reply, BaseException):
                        raise reply
                    else:
                        writer.take(reply, request, rnd, i)
                rnd += 1
        finally:
            writer.close()
        report = writer.report(rnd, teacher.report())
    atomic_write_json(out / "report.json", report)
    if stop is not None:
        raise stop
    return report


class _Writer:
    """Parses, filters and counts answers; :meth:`close` writes the kept and dropped rows."""

    def __init__(self, cfg: SelfInstructConfig, seeds: list[dict[str, Any]], out: Path):
        self.cfg = cfg
        self.filter = InstructionFilter(
            min_tokens=cfg.min_tokens, max_chars=cfg.max_chars, rouge_threshold=cfg.rouge_threshold,
            min_script_share=cfg.min_script_share, blacklist=cfg.blacklist,
            novelty=Novelty(task["instruction"] for task in seeds),
        )  # fmt: skip
        self.counts: Counter[str] = Counter()
        self.out = out
        self.kept_lines: list[str] = []
        self.dropped_lines: list[str] = []

    @property
    def kept(self) -> int:
        return self.counts["kept"]

    def take(self, reply: Reply, request: tuple[str, list[str], str], rnd: int, i: int) -> None:
        code, seed_ids, _ = request
        self.counts["answers"] += 1
        if reply.error:
            self.counts["answers_failed"] += 1
            return
        source = {"teacher": self.cfg.teacher.model, "round": rnd, "prompt": i,
                  "seeds": seed_ids, "journal_key": reply.key}  # fmt: skip
        rows = parse_instructions(reply.text)
        for n, row in enumerate(rows):
            self.counts["parsed"] += 1
            if reply.truncated and n == len(rows) - 1:  # the block max_tokens cut off
                reason = "truncated"
            elif self.kept >= self.cfg.num_instructions:
                reason = "over_target"
            else:
                reason = self.filter.reason(row, code)
            similarity = {k: row[k] for k in ("rouge_l_max", "most_similar") if k in row}
            record = {"id": f"si-{rnd}-{i}-{n}", "language": code,
                      **{k: row[k] for k in ("instruction", "input", "output")},
                      "provenance": {**source, **similarity}}  # fmt: skip
            if reason is None:
                self.counts["kept"] += 1
                self.counts[f"kept_{code}"] += 1
                self.kept_lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                self.counts[f"dropped_{reason}"] += 1
                line = json.dumps({**record, "reason": reason}, ensure_ascii=False)
                self.dropped_lines.append(line + "\n")

    def close(self) -> None:
        atomic_write_text(self.out / "instructions.jsonl", "".join(self.kept_lines))
        atomic_write_text(self.out / "dropped.jsonl", "".join(self.dropped_lines))

    def report(self, rounds: int, cost: dict[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        missing = [c for c in cfg.languages if not BLACKLIST.get(c) and not cfg.blacklist.get(c)]
        return {
            "kept": self.kept,
            "target": cfg.num_instructions,
            "rounds": rounds,
            **{k: v for k, v in sorted(self.counts.items()) if k != "kept"},
            "blacklist_missing": missing,
            "usd_per_kept": round(cost["spent_usd_total"] / self.kept, 6) if self.kept else None,
            "teacher": cost,
        }
