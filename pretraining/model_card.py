"""The model card (README.md) of an exported Hugging Face folder: the model, its training run,
the corpus data card quoted whole, eval results, languages, special tokens and the licence's
use restrictions (``templates/model_card.md.j2``)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from bloomkit.pretraining.hf import BLOOM_SPECIAL_IDS
from bloomkit.pretraining.model.config import BloomModelConfig


def _eval_rows(path: Path | None) -> list[dict[str, Any]]:
    """Group means of an eval results file (per task when it has no groups)."""
    if path is None:
        return []
    from bloomkit.eval.results import load

    results = load(path)
    scored = [(name, g.metrics) for name, g in sorted(results.groups.items())] or [
        (name, t.metrics) for name, t in sorted(results.tasks.items())
    ]
    return [
        {"task": name, "metric": metric, "value": score.value}
        for name, metrics in scored
        for metric, score in sorted(metrics.items())
        if score.value is not None
    ]


_LANGUAGE_ROW = re.compile(r"^\| `([^`]+)` \|")


def card_languages(text: str) -> list[str]:
    """The language codes of a data card's ``## Languages`` table (as ``bloomkit data run``
    writes it: one ``| `code` | documents | …`` row per language, most documents first),
    without ``unknown``."""
    _, found, rest = text.partition("\n## Languages\n")
    table = rest.split("\n## ", 1)[0] if found else ""
    codes = [m[1] for line in table.splitlines() if (m := _LANGUAGE_ROW.match(line))]
    return [code for code in codes if code != "unknown"]


def _data_card(path: Path | None) -> dict[str, Any] | None:
    """The corpus data card, quoted whole (its headings one level down), and its languages."""
    if path is None:
        return None
    text = path.read_text(encoding="utf-8").strip()
    lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()]
    return {"path": str(path), "summary": "\n".join(lines), "languages": card_languages(text)}


def model_card(
    checkpoint: Path,
    meta: dict[str, Any],
    model: BloomModelConfig,
    *,
    data_card: Path | None = None,
    eval_results: Path | None = None,
    languages: list[str] | None = None,
    tokenizer: Path | None = None,
    special_tokens: list[dict[str, Any]] | None = None,
) -> str:
    """The exported folder's README.md; ``languages`` default to the data card's;
    ``special_tokens``: ``{name, token, id}`` rows of the shipped ``tokenizer``, whose absence
    the card states with the ids assumed instead."""
    import jinja2

    card = _data_card(data_card)
    template = resources.files("bloomkit.pretraining") / "templates" / "model_card.md.j2"
    env = jinja2.Environment(keep_trailing_newline=True, autoescape=False)
    return env.from_string(template.read_text(encoding="utf-8")).render(
        name=f"bloomkit BLOOM {checkpoint.parent.parent.name or checkpoint.name}",
        model=model,
        parameters=model.num_parameters(),
        meta=meta,
        checkpoint=checkpoint,
        data_card=card,
        eval_rows=_eval_rows(eval_results),
        languages=languages or (card["languages"] if card else []),
        tokenizer=tokenizer,
        special_tokens=special_tokens or [],
        bloom_special_ids=BLOOM_SPECIAL_IDS,
    )
