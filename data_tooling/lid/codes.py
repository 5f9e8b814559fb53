"""The 13 programming languages of BLOOM's training data (ROOTS code subset), from a table.

Documents a reader marks with one of these (``metadata["language_hint"]``) are code: the
language identifier keeps the hint and the natural-language quality filters skip them.
``ts`` is Xitsonga among the natural languages, so TypeScript's alias is ``ts-code``.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

TABLE = Path(__file__).parents[1] / "tables" / "code_languages.tsv"


@cache
def code_languages() -> dict[str, str]:
    """``{name or alias (lowercase): canonical code}`` for the programming languages."""
    names: dict[str, str] = {}
    with open(TABLE, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            for alias in [row["code"], row["name"], *row["aliases"].split()]:
                names[alias.lower()] = row["code"]
    return names


def code_language(hint: object) -> str | None:
    """The canonical code of a programming-language hint (``"Python"`` -> ``python``), else None."""
    if not isinstance(hint, str):
        return None
    return code_languages().get(hint.strip().lower())


def is_code(language: str | None) -> bool:
    """Whether ``language`` (a document's language code) names a programming language."""
    return code_language(language) is not None
