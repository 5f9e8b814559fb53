"""What the leaderboard records about a model at submission: licence, model and data card.

Read from the evaluated model folder: the ``license_name``/``license`` of the README.md front
matter, else a ``LICENSE-RAIL`` file (bloomkit exports carry both); the card summary is the
README's first paragraph, the data card its ``Data card`` section (an export quotes the corpus
data card there). Stored as a sidecar ``<sha12>.submission.json`` beside the results file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

SIDECAR_SUFFIX = ".submission.json"
RAIL_FILE = "LICENSE-RAIL"
_RAIL = re.compile(r"(?<![a-z])(open)?rail(?![a-z])")
"""A RAIL-family licence name: bigscience-bloom-rail-1.0, openrail-m, bloomkit-rail-1.0."""


class Licence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: str
    """Where it was read: ``README.md front matter``, ``LICENSE-RAIL`` or ``--licence``."""
    rail: bool
    """A Responsible AI Licence (use-based restrictions): highlighted on the model page."""


class Submission(BaseModel):
    """The sidecar of an admitted results file."""

    model_config = ConfigDict(extra="forbid")

    content_sha256: str
    licence: Licence
    model_card: str | None
    """First paragraph of the model's README.md (plain text), None without a README."""
    data_card: str | None
    """The README's ``Data card`` section (markdown), None when it has none."""
    submitted: str


def is_rail(name: str) -> bool:
    return bool(_RAIL.search(name.lower()))


def front_matter(readme: str) -> dict[str, Any]:
    """The YAML between the leading ``---`` lines of a model card ({} when none or unreadable)."""
    match = re.match(r"---\n(.*?)\n---\s*\n", readme, re.DOTALL)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def card_summary(readme: str) -> str | None:
    """The first paragraph of the card body that is not a heading, as one line."""
    body = re.sub(r"\A---\n.*?\n---\s*\n", "", readme, flags=re.DOTALL)
    for block in re.split(r"\n\s*\n", body):
        lines = [line.strip() for line in block.strip().splitlines()]
        text = " ".join(line for line in lines if not line.startswith("#"))
        if text:
            return text
    return None


def data_card(readme: str) -> str | None:
    """The section headed ``Data card`` (any level) up to the next heading of its level."""
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        if match := re.fullmatch(r"(#+)\s*data card\s*", line.strip(), re.IGNORECASE):
            level = len(match.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if re.match(rf"#{{1,{level}}}(?!#)", lines[j])), len(lines))  # fmt: skip
            return "\n".join(lines[i:end]).strip() + "\n"
    return None


def folder_licence(folder: Path, readme: str | None) -> Licence | None:
    """The licence the model folder declares, or None."""
    meta = front_matter(readme) if readme else {}
    for key in ("license_name", "license"):
        value = meta.get(key)
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        if value and str(value) != "other":
            name = str(value)
            return Licence(name=name, source="README.md front matter",
                           rail=is_rail(name) or (folder / RAIL_FILE).is_file())  # fmt: skip
    if (folder / RAIL_FILE).is_file():
        first = (folder / RAIL_FILE).read_text(encoding="utf-8").strip().splitlines()
        return Licence(name=first[0] if first else RAIL_FILE, source=RAIL_FILE, rail=True)
    return None
