"""Exact deduplication: the first document of each id, and of each normalised text, is kept.

Streaming, as :mod:`.minhash`: pass 1 (:meth:`FirstOccurrence.add`) writes one ``(key,
position)`` record per document to sorted runs on disk (:class:`.runs.SortedRuns`), pass 2
(:meth:`FirstOccurrence.finish`) merges them and marks, for each key, every position after
the first in a :class:`.runs.Bitmap`, pass 3 (:meth:`FirstOccurrence.select`) streams the
documents again and drops the marked ones. Memory: one bit per document, not one entry.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import unicodedata
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import regex

from bloomkit.data_tooling.dedup.runs import Bitmap, SortedRuns
from bloomkit.data_tooling.pipeline.base import Document, Step

_SPACE = regex.compile(r"\s+")


def exact_key(text: str) -> str:
    """SHA-1 of ``text`` after NFKC, casefolding and collapsing whitespace (hex digest)."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return hashlib.sha1(norm.encode("utf-8"), usedforsecurity=False).hexdigest()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # one-to-one, even for lone surrogates


class FirstOccurrence(Step):
    """Keep the first document of each :meth:`key` in stream order; drop later ones.

    Positions number the documents given to :meth:`add` from 0. ``skip`` (:meth:`finish`)
    holds the positions an earlier step removes: they are no candidates and are not given to
    :meth:`select`. Work files live in ``folder`` (a new temporary folder by default) and
    are removed once :meth:`select` is exhausted.
    """

    reason: ClassVar[str]
    names_first: ClassVar[bool] = False
    """Whether a dropped document gets ``metadata["duplicate_of"]``, the id of the one kept."""

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.count = 0
        """Documents added so far."""
        self._keys: SortedRuns | None = None
        self._firsts: SortedRuns | None = None
        self._skip, self._removed = Bitmap(), Bitmap()

    @abstractmethod
    def key(self, doc: Document) -> bytes:
        """What two duplicates have in common."""

    def add(self, doc: Document) -> None:
        """Pass 1: record the key of ``doc`` at the next position."""
        if self._keys is None:
            self.folder = self.folder or Path(tempfile.mkdtemp(prefix=f"bloomkit-{self.name}-"))
            self.folder.mkdir(parents=True, exist_ok=True)
            self._keys = SortedRuns(self.folder / "keys.bin")
        self._keys.add(self.key(doc), self.count, _utf8(doc.id) if self.names_first else b"")
        self.count += 1

    def finish(self, skip: Bitmap | None = None) -> Bitmap:
        """Pass 2: mark the later occurrences of each key, not counting positions in ``skip``;
        return the positions removed so far (``skip`` and those)."""
        self._skip = skip or Bitmap()
        if self._keys is None:
            return self._skip
        if self.names_first:
            self._firsts = SortedRuns(self._keys.path.with_name("firsts.bin"))
        last, first = None, b""
        for key, i, payload in self._keys:
            if i in self._skip:
                continue
            if key != last:
                last, first = key, payload
                continue
            self._removed.add(i)
            if self._firsts is not None:
                self._firsts.add(b"", i, first)
        self._keys.path.unlink()
        return self._skip | self._removed

    def select(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Pass 3: the documents given to :meth:`add`, less ``skip``, again; yield those kept."""
        positions = (i for i in range(self.count) if i not in self._skip)
        firsts = iter(self._firsts or ())
        try:
            for doc in docs:
                i = next(positions, -1)
                if i < 0:
                    raise RuntimeError(f"{self.name}: got more than the {self.count} added")
                self.stats.add("seen", doc.language)
                if i not in self._removed:
                    self.stats.add("kept", doc.language)
                    yield doc
                    continue
                if self._firsts is not None:
                    _, at, first = next(firsts)
                    assert at == i, "firsts are in position order"
                    doc.metadata["duplicate_of"] = first.decode("utf-8", "surrogatepass")
                self.drop(doc, self.reason)
            if next(positions, -1) >= 0:
                raise RuntimeError(f"{self.name}: got fewer than the {self.count} added")
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        items = docs if isinstance(docs, Sequence) else list(docs)  # two passes over it
        for doc in items:
            self.add(doc)
        self.finish()
        yield from self.select(items)


class UniqueIds(FirstOccurrence):
    """Remove a document whose id an earlier document already has (reason ``duplicate_id``)."""

    name: ClassVar[str] = "unique_id"
    reason: ClassVar[str] = "duplicate_id"

    def key(self, doc: Document) -> bytes:
        return _utf8(doc.id)


class ExactDedup(FirstOccurrence):
    """Keep the first document of each normalised text (:func:`exact_key`); drop later ones
    as ``exact_duplicate``, with ``metadata["duplicate_of"]``, the id of the one kept."""

    name: ClassVar[str] = "dedup_exact"
    reason: ClassVar[str] = "exact_duplicate"
    names_first: ClassVar[bool] = True

    def key(self, doc: Document) -> bytes:
        return bytes.fromhex(exact_key(doc.text))
