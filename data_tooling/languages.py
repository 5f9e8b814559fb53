"""The 46 natural languages of BLOOM, read from ``tables/languages.tsv``.

Codes are the BLOOM/ROOTS codes (``zhs``/``zht`` for Simplified/Traditional Chinese); each
row also gives the FLORES-200 code, script, family and a coarse resource level.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).parent / "tables" / "languages.tsv"


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    flores: str
    name: str
    script: str
    family: str
    resource: str


@cache
def languages() -> dict[str, Language]:
    """All 46 languages keyed by BLOOM code, in the table's order."""
    with open(TABLE, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row["code"]: Language(**row) for row in rows}


def language_codes() -> list[str]:
    return list(languages())
