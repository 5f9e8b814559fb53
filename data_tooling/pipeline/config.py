"""``DataRunConfig``: what ``bloomkit data run CONFIG.yaml`` reads, and the steps it builds.

A run reads every input shard, passes its documents through the per-document steps in a
fixed order (normalise → optout → lid → lid_filter → quality → pii), then deduplicates
across all shards (unique_id → dedup_exact → dedup_minhash) and writes the corpus::

    catalogue: bloomkit/sample/catalogue.yaml
    input_root: runs/demo/raw          # relative input paths are resolved against it
    inputs:
      - {source: sib200-flores, paths: [sib200.jsonl]}
    steps:
      lid: {min_score: 0.0, languages: []}   # [] = every language
      dedup: {exact: true, minhash: {bands: 14, rows: 8}}
    output: {format: jsonl.zst, docs_per_shard: 10000}
    executor: {workers: 2, error_budget: 100}
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from bloomkit.config import Section
from bloomkit.data_tooling.dedup import MinHashConfig
from bloomkit.data_tooling.pii import PIIConfig
from bloomkit.data_tooling.pipeline.base import Document, Filter, Step


class InputConfig(Section):
    """One source's input files; each file (or txt folder, dataset) is one shard."""

    source: str
    """Catalogue source id; its licence is stamped on every document."""
    paths: list[str] = Field(min_length=1)
    """Files, folders, globs or ``hf://`` names (see ``readers.list_inputs``)."""
    text_field: str = "text"
    id_field: str = "id"
    max_chars: int = Field(10_000_000, gt=0)
    """Longer documents are quarantined, not read."""
    metadata: dict[str, str] = {}
    """Set on every document of this input, e.g. ``language_hint: python`` for code."""


class NormaliseConfig(Section):
    enabled: bool = True
    max_replacement_ratio: float = Field(0.01, ge=0.0, le=1.0)
    """Documents with a larger share of U+FFFD are quarantined as wrongly decoded."""


class LIDConfig(Section):
    enabled: bool = True
    drop_unknown: bool = False
    """Remove documents no detector can place (reason ``lid_unknown``)."""
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    """Remove documents whose language score is below this (reason ``lid_low_score``)."""
    languages: list[str] = []
    """Keep only these languages (codes as in ``tables/languages.tsv``, ``python`` for code);
    ``[]`` keeps every language. Others are removed (reason ``lid_language``)."""


class QualityConfig(Section):
    enabled: bool = True
    overrides: dict[str, float | int | None] = {}
    """Threshold name → bound for every language (``null`` turns a check off)."""


class DedupConfig(Section):
    exact: bool = True
    """Remove documents whose normalised text was seen before (across all shards)."""
    minhash: MinHashConfig | None = MinHashConfig()
    """Near-duplicate removal across all shards; ``null`` turns it off."""


class StepsConfig(Section):
    normalise: NormaliseConfig = NormaliseConfig()
    optout: Path | None = None
    """Opt-out list (document ids, URLs, domains) whose documents are removed."""

    @field_validator("optout")
    @classmethod
    def _optout_step_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not importlib.util.find_spec(
            "bloomkit.data_tooling.pipeline.optout"
        ):
            raise ValueError("the optout step is not installed in this bloomkit; set it to null")
        return value

    lid: LIDConfig = LIDConfig()
    quality: QualityConfig = QualityConfig()
    pii: PIIConfig = PIIConfig()
    dedup: DedupConfig = DedupConfig()


class OutputConfig(Section):
    format: Literal["jsonl.zst", "parquet"] = "jsonl.zst"
    docs_per_shard: int = Field(10_000, gt=0)
    """Documents per final corpus shard (the last one may hold fewer)."""


class ExecutorConfig(Section):
    workers: int = Field(1, ge=1)
    """Processes that run input shards at once (1: in this process)."""
    error_budget: int | None = Field(None, ge=0)
    """Most quarantined documents the run accepts; one more stops it. ``null``: no limit."""


class DataRunConfig(Section):
    """A corpus run: catalogue, inputs, steps, output and executor."""

    catalogue: Path
    input_root: Path = Path(".")
    """Relative input paths are resolved against this folder."""
    inputs: list[InputConfig] = Field(min_length=1)
    steps: StepsConfig = StepsConfig()
    output: OutputConfig = OutputConfig()
    executor: ExecutorConfig = ExecutorConfig()

    def output_fingerprint(self) -> dict[str, Any]:
        """Everything that decides the output bytes (the executor does not)."""
        return self.model_dump(mode="json", exclude={"executor"})


class LanguageFilter(Filter):
    """Remove documents outside the allowed languages or below a language score."""

    name: ClassVar[str] = "lid_filter"

    def __init__(self, min_score: float, languages: Iterable[str]) -> None:
        super().__init__()
        self.min_score = min_score
        self.languages = frozenset(languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self.languages and doc.language not in self.languages:
            return False, "lid_language"
        if (doc.language_score or 0.0) < self.min_score:
            return False, "lid_low_score"
        return True


def document_steps(steps: StepsConfig) -> list[Step]:
    """The per-document steps of a shard task, in pipeline order (fresh instances)."""
    from bloomkit.data_tooling.lid import LanguageID
    from bloomkit.data_tooling.pii import RedactPII
    from bloomkit.data_tooling.pipeline.normalise import Normalise
    from bloomkit.data_tooling.quality import QualityFilter

    out: list[Step] = []
    if steps.normalise.enabled:
        out.append(Normalise(steps.normalise.max_replacement_ratio))
    if steps.optout is not None:
        from bloomkit.data_tooling.pipeline.optout import OptOut, load_optouts

        out.append(OptOut(load_optouts(steps.optout)))
    if steps.lid.enabled:
        out.append(LanguageID(drop_unknown=steps.lid.drop_unknown))
        if steps.lid.min_score > 0 or steps.lid.languages:
            out.append(LanguageFilter(steps.lid.min_score, steps.lid.languages))
    if steps.quality.enabled:
        out.append(QualityFilter(steps.quality.overrides))
    if steps.pii.enabled:
        out.append(RedactPII(steps.pii))
    return out
