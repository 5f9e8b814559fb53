"""The source catalogue: every corpus source with its licence, provenance and languages.

A catalogue is a YAML file (versioned with the project or the corpus)::

    version: 1
    sources:
      - id: sib200-flores
        name: SIB-200 (FLORES-200 sentences)
        licence: CC-BY-SA-4.0          # SPDX identifier
        provenance: https://github.com/dadelani/sib-200
        languages: [en, fr, ...]
        collected: 2024-01-01
        files: {sib200/en/train.tsv: <sha256>, ...}   # optional, checked by `verify`
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, field_validator

from bloomkit.config import Section, load_config
from bloomkit.rundir import sha256_file

# SPDX identifiers of licences seen in multilingual corpora; extend as sources need.
KNOWN_LICENCES = {
    "Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "PSF-2.0", "CC0-1.0", "CC-BY-4.0",
    "CC-BY-SA-4.0", "CC-BY-SA-3.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "ODC-By-1.0",
    "GPL-3.0-only", "LGPL-3.0-only", "MPL-2.0", "public-domain", "unknown",
}  # fmt: skip


class Source(Section):
    """One source of documents."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    licence: str
    """SPDX licence identifier of the text (not of the tool that collected it)."""
    provenance: str
    """Where the data came from: a URL or a citation."""
    languages: list[str] = Field(min_length=1)
    collected: date
    notes: str = ""
    attribution: str = ""
    """The attribution line redistributions must carry."""
    files: dict[str, str] = {}
    """Optional {relative path: sha256} of the files this source ships."""

    @field_validator("licence")
    @classmethod
    def _spdx(cls, value: str) -> str:
        if value not in KNOWN_LICENCES:
            raise ValueError(
                f"unknown licence; expected an SPDX id such as {sorted(KNOWN_LICENCES)}"
            )
        return value


class Catalogue(Section):
    version: int = 1
    sources: list[Source] = []

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources)
        raise KeyError(f"no source {source_id!r} in the catalogue (known: {known})")


def load_catalogue(path: Path | str) -> Catalogue:
    return load_config(Catalogue, path)


def verify_files(catalogue: Catalogue, root: Path) -> list[str]:
    """Problems with the files the catalogue lists under ``root`` (missing or changed)."""
    problems = []
    for source in catalogue.sources:
        for relative, expected in source.files.items():
            path = root / relative
            if not path.is_file():
                problems.append(f"{source.id}: {relative}: listed but missing")
            elif sha256_file(path) != expected:
                problems.append(f"{source.id}: {relative}: content differs from the catalogue")
    return problems
