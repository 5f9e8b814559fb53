"""The one record type and the one step interface of the corpus pipeline (datatrove style).

A step takes an iterator of :class:`Document` and yields the documents it keeps. Every
document a step does not yield must be handed to :meth:`Step.drop` (removed, with a reason)
or :meth:`Step.quarantine` (unusable input, with a reason), so that at the end of a run
``kept + removed + quarantined == read`` holds per source and per language.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(slots=True)
class Document:
    """One document and everything the governed corpus keeps about it."""

    id: str
    text: str
    source: str = ""
    licence: str = ""
    language: str | None = None
    language_score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    """Names of the steps that changed the document, in order (e.g. ``pii:email``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "licence": self.licence,
            "language": self.language,
            "language_score": self.language_score,
            "metadata": self.metadata,
            "history": self.history,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})  # type: ignore[attr-defined]


Sink = Callable[[Document, str, str], None]
"""``sink(document, step_name, reason)``: where removed or quarantined documents go."""


@dataclass
class StepStats:
    """What one step saw: counters, also per language; merge shards with ``+``."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)
    by_language: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, key: str, language: str | None, value: int = 1) -> None:
        self.counts[key] += value
        self.by_language.setdefault(language or "unknown", Counter())[key] += value

    def __add__(self, other: StepStats) -> StepStats:
        merged = StepStats(self.name, self.counts + other.counts, {})
        for part in (self.by_language, other.by_language):
            for lang, counter in part.items():
                merged.by_language.setdefault(lang, Counter()).update(counter)
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counts": dict(self.counts),
            "by_language": {k: dict(v) for k, v in sorted(self.by_language.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepStats:
        return cls(
            data["name"],
            Counter(data["counts"]),
            {k: Counter(v) for k, v in data["by_language"].items()},
        )


class Step(ABC):
    """One pipeline step. Subclasses set ``name`` and implement :meth:`run`."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.stats = StepStats(self.name)
        self.removed_sink: Sink | None = None
        self.quarantine_sink: Sink | None = None

    @abstractmethod
    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Yield the documents this step keeps (possibly changed)."""

    def drop(self, doc: Document, reason: str) -> None:
        """Remove ``doc`` for ``reason`` (counted as ``removed`` and ``removed_<reason>``)."""
        self.stats.add("removed", doc.language)
        self.stats.add(f"removed_{reason}", doc.language)
        if self.removed_sink is not None:
            self.removed_sink(doc, self.name, reason)

    def quarantine(self, doc: Document, reason: str) -> None:
        """Set aside unusable input (bad encoding, wrong type) with a reason that names it."""
        self.stats.add("quarantined", doc.language)
        if self.quarantine_sink is not None:
            self.quarantine_sink(doc, self.name, reason)


class Filter(Step):
    """A step that keeps or removes whole documents: implement :meth:`filter` only."""

    @abstractmethod
    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """``True`` to keep, ``(False, reason)`` to remove."""

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            self.stats.add("seen", doc.language)
            verdict = self.filter(doc)
            keep, reason = (verdict, self.name) if isinstance(verdict, bool) else verdict
            if keep:
                self.stats.add("kept", doc.language)
                yield doc
            else:
                self.drop(doc, reason)
