"""s1-style selection: quality, then difficulty, then diversity (Muennighoff et al., 2025, §2).

1. **Quality**: drop rows with an API error, a truncated trace, no answer, a question under
   ``min_tokens`` tokens (words of spaced scripts, characters of unspaced ones, so a Chinese
   question is not short for having few characters) or over ``max_chars`` characters, or a
   formatting problem (``format_patterns``: image references, ASCII-art rules).
2. **Difficulty**: each question goes to every reference model (``references``: any
   OpenAI-compatible endpoint, e.g. ``bloomkit serve`` of a small model) and is dropped when one
   of them answers it right. s1 grades with an LLM; here the final answers (last ``\\boxed{}``,
   else an ``Answer:`` line, else the last number, else the last line) are compared after
   normalisation (case, spaces, ``$``, numbers as numbers), which is cheaper and misses
   equivalent forms (``1/2`` vs ``0.5``).
3. **Diversity**: each question gets a domain of the taxonomy (``domains``: the MSC list s1
   uses). With a ``classifier`` model (any OpenAI-compatible endpoint: ``bloomkit serve``,
   vLLM, a hosted API), as s1 did with Claude, the model reads the taxonomy and the question,
   in any language, and names a code. Without one, or when its answer names no code, keyword
   scoring decides: the words of a domain's title and descriptions, cut to 6-character stems,
   weighted by inverse domain frequency; English keywords only, so other languages mostly land
   in ``unclassified``. Then, as s1's Algorithm 1, until ``num_select`` are chosen: pick a
   domain uniformly, and in it a question with probability ∝ 2^-rank of its trace length
   (longest first).

Outputs (``RUN/select/``): ``selected.jsonl`` (the row plus ``domain`` and ``reasons``: why it
passed each stage), ``dropped.jsonl`` (the row plus ``reason``), ``report.json`` and one
``reference-N-journal.jsonl`` per reference model and ``classifier-journal.jsonl`` (answers
reused by a rerun). Each output appears in one rename.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from bloomkit.config import Section
from bloomkit.finetuning.distill import read_questions
from bloomkit.finetuning.instruction_filters import rouge_tokens
from bloomkit.finetuning.teacher import Teacher, TeacherConfig
from bloomkit.rundir import atomic_write_json, atomic_write_text

# words of the MSC descriptions that say nothing about a question's domain
_STOP = {"and", "or", "of", "the", "on", "in", "to", "with", "for", "its", "their", "other",
         "general", "theory", "theories", "two", "one", "higher", "dimensional", "special",
         "foundations", "methods", "applications", "problems", "generalizations"}  # fmt: skip


CLASSIFY_PROMPT = """Classify the question below into one domain of this taxonomy. The question \
may be written in any language.

{domains}

Question:
{question}

Answer with the code of the domain only."""


class SelectConfig(Section):
    """``bloomkit finetune select`` config."""

    questions: str
    """JSONL rows: a question, and optionally a trace, an answer, a solution and an error."""
    question_field: str = "question"
    trace_field: str = "thinking"
    answer_field: str = "answer"
    solution_field: str = "solution"
    """The correct answer the reference models are graded against."""
    min_tokens: Annotated[int, Field(ge=0)] = 5
    """Shortest question in :func:`~.instruction_filters.rouge_tokens` ("2+2?" is 2)."""
    max_chars: Annotated[int, Field(gt=0)] = 20_000
    format_patterns: dict[str, str] = {
        "image": r"!\[[^\]]*\]\(|<img\b|\\includegraphics",
        "ascii_art": r"(?m)^[ \t|+\-_=*/\\#]{20,}$",
    }
    """Regular expressions on the question; a match drops it as ``bad_format_<name>``."""
    references: list[TeacherConfig] = []
    """Reference models for difficulty; empty: no difficulty stage."""
    reference_prompt: str = "{question}\n\nPut the final answer in \\boxed{}."
    """Sent to each reference; ``{question}`` is replaced by the question (no other braces are
    special, so ``\\boxed{}`` reaches the model as written)."""
    domains: str = "../shared/data/finetune/s1_msc_domains.json"
    """Taxonomy: a JSON list of ``{code, title, descriptions}``."""
    classifier: TeacherConfig | None = None
    """Model that names each question's domain (any language); None: keywords only."""
    classifier_prompt: str = CLASSIFY_PROMPT
    """``{domains}`` becomes one ``code: title`` line per domain, ``{question}`` the question."""
    num_select: Annotated[int, Field(gt=0)] = 1000
    seed: int = 0


def _stems(text: str) -> list[str]:
    words = re.findall(r"[a-z]+", text.lower())
    return [w[:6] for w in words if len(w) > 2 and w not in _STOP]


class DomainClassifier:
    """Keyword scoring over a taxonomy: a question's score for a domain is the sum, over the
    stems they share, of the stem's count in the domain's text (title counted twice) × its
    inverse domain frequency (see the module docstring)."""

    def __init__(self, domains: list[dict[str, Any]]):
        self.domains = [(d["code"], d["title"]) for d in domains]
        self.keywords = [Counter(_stems(" ".join([d["title"]] * 2 + d["descriptions"])))
                         for d in domains]  # fmt: skip
        df = Counter(stem for words in self.keywords for stem in words)
        self.idf = {stem: math.log(len(domains) / n) + 1e-3 for stem, n in df.items()}

    def classify(self, question: str) -> tuple[str, str, float, list[str]]:
        """(code, title, score, matched stems); ``("unclassified", …, 0, [])`` on no match."""
        stems = set(_stems(question))
        best = ("unclassified", "no keyword of any domain", 0.0, [])
        for (code, title), words in zip(self.domains, self.keywords, strict=True):
            matched = sorted(stems & words.keys())
            score = sum(words[s] * self.idf[s] for s in matched)
            if score > best[2]:
                best = (code, title, round(score, 3), matched)
        return best


def named_domain(text: str, codes: list[str]) -> str | None:
    """The taxonomy code a classifier's answer names first (``"60"``, ``"Code: 60."``), or None."""
    found = []
    for code in codes:
        match = re.search(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])", text)
        if match:
            found.append((match.start(), code))
    return min(found)[1] if found else None


async def _classify(
    cfg: SelectConfig,
    model: TeacherConfig,
    rows: list[dict[str, Any]],
    domains: list[dict[str, Any]],
    out: Path,
):
    """Per row (code or None, the classifier's answer or error); and the classifier's cost."""
    listing = "\n".join(f"{d['code']}: {d['title']}" for d in domains)
    codes = [d["code"] for d in domains]
    prompt = cfg.classifier_prompt.replace("{domains}", listing)
    async with Teacher(model, out / "classifier-journal.jsonl") as teacher:
        asks = [teacher.ask(prompt.replace("{question}", r[cfg.question_field]), tag=str(r["id"]))
                for r in rows]  # fmt: skip
        replies = await asyncio.gather(*asks)
        cost = teacher.report()
    named = [(None, f"error {r.error}") if r.error else (named_domain(r.text, codes), r.text)
             for r in replies]  # fmt: skip
    return named, cost


def final_answer(text: str) -> str:
    """The final answer in a solution: last ``\\boxed{…}``, ``Answer:`` line, number or line."""
    boxed = text.rfind("\\boxed{")
    if boxed >= 0:
        depth, start = 0, boxed + len("\\boxed{")
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth < 0:
                return text[start:i]
    lines = re.findall(r"(?im)^\s*(?:final\s+)?answer\s*[:：]\s*(.+)$", text)
    if lines:
        return lines[-1]
    numbers = re.findall(r"-?\d+(?:[.,]\d+)?(?:/\d+)?", text)
    if numbers:
        return numbers[-1]
    return text.strip().splitlines()[-1] if text.strip() else ""


def same_answer(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        x = re.sub(r"\\(?:left|right|!|,|;)|\$|\\text\{([^}]*)\}", r"\1", x)
        return re.sub(r"\s+", "", x).strip(".").lower()

    a, b = norm(a), norm(b)
    try:
        return math.isclose(float(a.replace(",", "")), float(b.replace(",", "")), rel_tol=1e-6)
    except ValueError:
        return a == b


def quality_reason(cfg: SelectConfig, row: dict[str, Any]) -> str | None:
    question = row[cfg.question_field]
    if not question.strip():
        return "no_question"
    if row.get("error"):
        return "api_error"
    if row.get("finish_reason") == "length":
        return "truncated"
    if cfg.answer_field in row and not str(row[cfg.answer_field] or "").strip():
        return "no_answer"
    if len(rouge_tokens(question)) < cfg.min_tokens:
        return "too_short"
    if len(question) > cfg.max_chars:
        return "too_long"
    for name, pattern in cfg.format_patterns.items():
        if re.search(pattern, question):
            return f"bad_format_{name}"
    return None


def trace_chars(cfg: SelectConfig, row: dict[str, Any]) -> int:
    return len(str(row.get(cfg.trace_field) or "")) + len(str(row.get(cfg.answer_field) or ""))


async def _difficulty(cfg: SelectConfig, rows: list[dict[str, Any]], out: Path):
    """Per row: (None, why it is hard) or (drop reason, detail); and each reference's cost."""
    verdicts: list[tuple[str | None, str]] = [(None, "") for _ in rows]
    costs = []
    for n, ref in enumerate(cfg.references):
        async with Teacher(ref, out / f"reference-{n}-journal.jsonl") as teacher:
            prompts = [cfg.reference_prompt.replace("{question}", r[cfg.question_field])
                       for r in rows]  # fmt: skip
            asks = [teacher.ask(p, tag=str(r["id"])) for p, r in zip(prompts, rows, strict=True)]
            # return_exceptions: a budget stop lets the answers already in flight land
            replies = await asyncio.gather(*asks, return_exceptions=True)
            costs.append(teacher.report())
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        for i, (row, reply) in enumerate(zip(rows, replies, strict=True)):
            if verdicts[i][0] is not None:
                continue
            solution = final_answer(str(row.get(cfg.solution_field) or ""))
            got = final_answer(reply.text)
            if reply.error:
                verdicts[i] = ("reference_error", f"{ref.model}: {reply.error}")
            elif not solution:
                verdicts[i] = ("no_solution", f"no {cfg.solution_field!r} to grade against")
            elif same_answer(got, solution):
                verdicts[i] = ("too_easy", f"{ref.model} answered {got!r} = {solution!r}")
            else:
                why = f"{ref.model} answered {got!r}, expected {solution!r}"
                verdicts[i] = (None, "; ".join(filter(None, [verdicts[i][1], why])))
    return verdicts, costs


def sample_diverse(groups: dict[str, list[dict[str, Any]]], n: int, seed: int):
    """s1's Algorithm 1: uniform domain, then rank-weighted (2^-rank, longest trace first)."""
    rng = random.Random(seed)
    pools = {d: sorted(rows, key=lambda r: -r["_chars"]) for d, rows in sorted(groups.items())}
    chosen = []
    while len(chosen) < n and pools:
        domain = rng.choice(sorted(pools))
        pool = pools[domain]
        rank = rng.choices(range(len(pool)), weights=[2.0**-r for r in range(len(pool))])[0]
        row = pool.pop(rank)
        chosen.append((row, f"pick {len(chosen) + 1}: domain drawn uniformly from {len(pools)}; "
                            f"trace {row['_chars']} chars, rank {rank + 1} of {len(pool) + 1} "
                            "in its domain (weight 2^-rank)"))  # fmt: skip
        if not pool:
            del pools[domain]
    return chosen


def select(cfg: SelectConfig, run_dir: Path) -> dict[str, Any]:
    """Run the three stages; return the report (also ``report.json``)."""
    out = Path(run_dir) / "select"
    out.mkdir(parents=True, exist_ok=True)
    rows = read_questions(Path(cfg.questions), cfg.question_field, strict=False)
    domains_path = Path(cfg.domains)
    if not domains_path.is_file():
        raise FileNotFoundError(f"domain taxonomy not found: {domains_path} (select.domains)")
    domains = json.loads(domains_path.read_text(encoding="utf-8"))
    titles = {d["code"]: d["title"] for d in domains}
    keywords = DomainClassifier(domains)
    counts: Counter[str] = Counter(
        questions=len(rows), domain_by_classifier=0, domain_by_keywords=0
    )
    dropped, passed = [], []
    for row in rows:
        reason = quality_reason(cfg, row)
        if reason:
            dropped.append({**row, "reason": reason})
        else:
            passed.append(row)
    verdicts, costs = asyncio.run(_difficulty(cfg, passed, out))
    hard = []
    for row, (reason, detail) in zip(passed, verdicts, strict=True):
        if reason:
            dropped.append({**row, "reason": reason, "detail": detail})
        else:
            hard.append((row, detail))
    named: list[tuple[str | None, str]] = [(None, "")] * len(hard)
    classifier_cost, model = None, cfg.classifier
    if model is not None:
        named, classifier_cost = asyncio.run(
            _classify(cfg, model, [r for r, _ in hard], domains, out)
        )
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (row, detail), (named_code, answer) in zip(hard, named, strict=True):
        if named_code is not None:
            code, title = named_code, titles[named_code]
            how = f"named by {model.model if model else ''}: {answer.strip()[:80]!r}"
        else:
            code, title, score, matched = keywords.classify(row[cfg.question_field])
            how = f"keywords, score {score}; matched {', '.join(matched) or '-'}"
            if model is not None:
                how = f"classifier named no domain ({answer.strip()[:80]!r}); {how}"
        counts[f"domain_by_{'classifier' if named_code else 'keywords'}"] += 1
        reasons = {
            "quality": f"no API error, answer present, {len(row[cfg.question_field])} chars, "
                       "no format problem",
            "difficulty": detail or "not measured (no reference models)",
            "domain": f"{code} {title} ({how})",
        }  # fmt: skip
        groups[code].append({**row, "domain": {"code": code, "title": title},
                             "_chars": trace_chars(cfg, row), "reasons": reasons})  # fmt: skip
    chosen = sample_diverse(groups, cfg.num_select, cfg.seed)
    lines = []
    for row, why in chosen:
        row["reasons"]["diversity"] = why
        lines.append(json.dumps({k: v for k, v in row.items() if k != "_chars"},
                                ensure_ascii=False) + "\n")  # fmt: skip
    atomic_write_text(out / "selected.jsonl", "".join(lines))
    atomic_write_text(out / "dropped.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                     for r in dropped))  # fmt: skip
    counts.update(f"dropped_{r['reason']}" for r in dropped)
    counts["selected"] = len(chosen)
    report = {**dict(sorted(counts.items())),
              "selected_per_domain": dict(Counter(r["domain"]["code"] for r, _ in chosen)),
              "references": costs, "classifier": classifier_cost}  # fmt: skip
    atomic_write_json(out / "report.json", report)
    return report
