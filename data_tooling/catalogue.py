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
        card: {domain: encyclopedic, personal_data: none known, limitations: ...}

``version`` counts changes: :func:`save_catalogue` (and so :func:`add_source`) writes each
change as the next version, atomically, and refuses to overwrite a newer file.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path

import yaml
from pydantic import Field, field_validator

from bloomkit.config import Section, load_config
from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.codes import code_languages
from bloomkit.rundir import atomic_write_text, sha256_file

# SPDX identifiers of licences seen in multilingual corpora; extend as sources need.
KNOWN_LICENCES = {
    "Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "PSF-2.0", "CC0-1.0", "CC-BY-4.0",
    "CC-BY-SA-4.0", "CC-BY-SA-3.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "ODC-By-1.0",
    "GPL-3.0-only", "LGPL-3.0-only", "MPL-2.0", "public-domain", "unknown",
}  # fmt: skip


def known_languages() -> list[str]:
    """Codes a source may list: the 46 BLOOM languages, then the programming languages."""
    return [*language_codes(), *dict.fromkeys(code_languages().values())]


class DataCard(Section):
    """What the generated data card says about a source beyond its licence and languages."""

    domain: str = ""
    """Kind of text: news, encyclopedic, web, books, code, ..."""
    personal_data: str = ""
    """Whether the text may hold personal data, and what was done about it."""
    limitations: str = ""
    """Known gaps and biases (coverage, translation artefacts, ...)."""


class Source(Section):
    """One source of documents."""

    id: str
    """Short and stable: lower-case letters, digits, ``.``, ``_``, ``-`` (``wiki-yo``)."""
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
    card: DataCard = DataCard()

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
            raise ValueError("expected lower-case letters, digits, '.', '_', '-' (e.g. wiki-yo)")
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        known = known_languages()
        programming = known[len(language_codes()) :]
        for code in value:
            if code not in known:
                close = difflib.get_close_matches(code, known, n=3)
                hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
                raise ValueError(
                    f"unknown language code {code!r}; {hint}expected a BLOOM code (en, fr, "
                    f"zhs, ...) or a programming language ({', '.join(programming)})"
                )
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value

    @field_validator("licence")
    @classmethod
    def _spdx(cls, value: str) -> str:
        if value not in KNOWN_LICENCES:
            close = difflib.get_close_matches(value, KNOWN_LICENCES, n=2)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise ValueError(
                f"unknown licence; {hint}expected an SPDX id such as {sorted(KNOWN_LICENCES)}"
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


def save_catalogue(catalogue: Catalogue, path: Path | str) -> Catalogue:
    """Write ``catalogue`` to ``path`` atomically as its next version; return what was written.

    A new file keeps ``catalogue.version``; a change to an existing file is written as the
    file's version + 1, and an unchanged catalogue is not written at all. A catalogue read
    at an older version than the file's is refused, so a concurrent change is never lost.
    """
    path = Path(path)
    if path.exists():
        current = load_catalogue(path)
        if catalogue.version != current.version:
            raise ValueError(
                f"{path}: changed since it was read (version {current.version} on disk, "
                f"{catalogue.version} read); read it again and redo the change"
            )
        if catalogue.sources == current.sources:
            return current
        catalogue = catalogue.model_copy(update={"version": current.version + 1})
    data = {
        "version": catalogue.version,
        "sources": [source.model_dump(exclude_defaults=True) for source in catalogue.sources],
    }
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return catalogue


def add_source(path: Path | str, source: Source) -> Catalogue:
    """Add ``source`` to the catalogue at ``path`` (created if missing) as a new version."""
    path = Path(path)
    catalogue = load_catalogue(path) if path.exists() else Catalogue()
    if any(known.id == source.id for known in catalogue.sources):
        raise ValueError(
            f"{path}: id: a source {source.id!r} is already catalogued (version "
            f"{catalogue.version}); choose another id"
        )
    catalogue = catalogue.model_copy(update={"sources": [*catalogue.sources, source]})
    return save_catalogue(catalogue, path)


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
