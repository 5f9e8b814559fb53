"""Exact deduplication on a normalised-text hash, optionally across shards via a state file."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import regex

from bloomkit.data_tooling.pipeline.base import Document, Step

_SPACE = regex.compile(r"\s+")


def exact_key(text: str) -> str:
    """SHA-1 of ``text`` after NFKC, casefolding and collapsing whitespace (hex digest)."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return hashlib.sha1(norm.encode("utf-8"), usedforsecurity=False).hexdigest()


class ExactDedup(Step):
    """Keep the first document of each normalised text; drop later ones as ``exact_duplicate``.

    A dropped document gets ``metadata["duplicate_of"]``, the id of the one kept. With
    ``state``, hashes seen by earlier runs (shards) are read from that file at start and the
    file is rewritten (``<sha1>\\t<id>`` lines) once :meth:`run` is exhausted, so shards run
    one after another dedup against each other; a document whose id is the one recorded is
    kept, so rerunning a shard is idempotent.
    """

    name: ClassVar[str] = "dedup_exact"

    def __init__(self, state: Path | None = None) -> None:
        super().__init__()
        self.state = state
        self.seen: dict[str, str] = {}
        if state is not None and state.exists():
            with open(state, encoding="utf-8") as handle:
                for line in handle:
                    key, _, doc_id = line.rstrip("\n").partition("\t")
                    self.seen[key] = doc_id

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            self.stats.add("seen", doc.language)
            key = exact_key(doc.text)
            first = self.seen.setdefault(key, doc.id)
            if first == doc.id:
                self.stats.add("kept", doc.language)
                yield doc
            else:
                doc.metadata["duplicate_of"] = first
                self.drop(doc, "exact_duplicate")
        self.save()

    def save(self) -> None:
        """Write the seen hashes to ``state`` (atomically; no-op without a state file)."""
        if self.state is None:
            return
        tmp = self.state.with_name(self.state.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(f"{key}\t{doc_id}\n" for key, doc_id in self.seen.items())
        os.replace(tmp, self.state)
