"""Near-duplicate detection with MinHash and LSH banding (Broder, 1997; datatrove's defaults).

Each document's shingles (:mod:`.shingles`, word or character 5-grams) are hashed by
``bands × rows`` permutations ``(a·h + b) mod (2^61 - 1)`` with wrapping ``uint64``
arithmetic, as datatrove and datasketch do, and the minimum of each permutation is the
signature. Documents whose signatures agree on all ``rows`` values of any band are candidates;
candidates are joined with union-find into clusters. With 14 bands × 8 rows a pair is a
candidate with probability ``1 - (1 - J^8)^14``: 50 % at Jaccard 0.72, 93 % at 0.8.
Signatures are computed in numpy over batches of documents: ~12k sentences/s, 6x datasketch's
``MinHash.update_batch`` per document (sib200, one CPU core).

Streaming, as datatrove's four MinHash stages: pass 1 (:meth:`MinHashIndex.add`) writes each
batch's band values to sorted runs on disk (:class:`.buckets.BandBuckets`), pass 2
(:meth:`MinHashIndex.clusters`) merges them into candidate pairs and a union-find over document
indices, pass 3 (:meth:`MinHashDedup.select`) streams the documents again and drops all but
the first of each cluster. Memory depends on the number of near-duplicates, not of documents.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from bloomkit.config import Section
from bloomkit.data_tooling.dedup.buckets import BandBuckets, UnionFind
from bloomkit.data_tooling.dedup.report import example_clusters, summarise
from bloomkit.data_tooling.dedup.shingles import shingle_hashes
from bloomkit.data_tooling.pipeline.base import Document, Step

MERSENNE = np.uint64((1 << 61) - 1)
BATCH_SHINGLES = 1 << 15
"""Shingles hashed at once: a (BATCH_SHINGLES, bands·rows) uint64 block, 28 MiB at 112."""
BATCH_DOCS = 4096
"""At most this many documents per batch (texts with few or no shingles)."""


class MinHashConfig(Section):
    """MinHash-LSH parameters (defaults: datatrove's ``MinhashConfig``)."""

    n_gram: int = Field(5, ge=1)
    """Shingle size: words, or characters for scripts without spaces."""
    bands: int = Field(14, ge=1)
    rows: int = Field(8, ge=1)
    """Hashes per band; ``bands × rows`` permutations in all."""
    seed: int = 1
    verify: float | None = Field(None, ge=0.0, le=1.0)
    """When set, keep only candidate pairs whose estimated Jaccard reaches this value."""

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


def _permutations(config: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(config.seed)
    a = rng.integers(1, MERSENNE, size=config.num_perm, dtype=np.uint64)
    b = rng.integers(0, MERSENNE, size=config.num_perm, dtype=np.uint64)
    return a, b


def signatures(sets: Sequence[np.ndarray], config: MinHashConfig) -> np.ndarray:
    """``(len(sets), bands·rows)`` uint64 signatures; a row of an empty set is all ``MERSENNE``."""
    a, b = _permutations(config)
    out = np.full((len(sets), config.num_perm), MERSENNE, dtype=np.uint64)
    todo = [i for i, s in enumerate(sets) if len(s)]
    start = 0
    while start < len(todo):
        stop, total = start, 0
        while stop < len(todo) and (total == 0 or total + len(sets[todo[stop]]) <= BATCH_SHINGLES):
            total += len(sets[todo[stop]])
            stop += 1
        rows = todo[start:stop]
        hashes = np.concatenate([sets[i] for i in rows])
        offsets = np.cumsum([0] + [len(sets[i]) for i in rows[:-1]])
        values = (hashes[:, None] * a + b) % MERSENNE
        out[rows] = np.minimum.reduceat(values, offsets, axis=0)
        start = stop
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of the permutations on which two signatures agree."""
    return float(np.mean(sig_a == sig_b))


class MinHashIndex:
    """Passes 1 and 2 over a stream of texts numbered 0, 1, … in the order they are added.

    Work files (band runs; full signatures only when ``config.verify`` is set) live in
    ``folder`` (a new temporary folder by default) and are removed by :meth:`clusters`.
    """

    def __init__(self, config: MinHashConfig, folder: Path | None = None) -> None:
        self.config = config
        self.folder = folder or Path(tempfile.mkdtemp(prefix="bloomkit-minhash-"))
        self.buckets = BandBuckets(self.folder, config.bands, config.rows)
        self.count = 0
        """Texts added so far."""
        self._sets: list[np.ndarray] = []
        self._shingles = 0
        self._signatures = self.folder / "signatures.bin"
        self._signatures.write_bytes(b"")

    def add(self, text: str, language: str | None) -> None:
        """Pass 1: shingle ``text``; its signature is written with the next batch."""
        hashes = shingle_hashes(text, language, self.config.n_gram)
        self._sets.append(hashes)
        self._shingles += len(hashes)
        self.count += 1
        if self._shingles >= BATCH_SHINGLES or len(self._sets) >= BATCH_DOCS:
            self._flush()

    def _flush(self) -> None:
        if not self._sets:
            return
        sigs = signatures(self._sets, self.config)
        if self.config.verify is not None:
            with open(self._signatures, "ab") as handle:
                handle.write(sigs.tobytes())
        live = np.flatnonzero(sigs[:, 0] != MERSENNE)  # no shingles: never a candidate
        self.buckets.add(sigs[live], live + (self.count - len(self._sets)))
        self._sets, self._shingles = [], 0

    def clusters(self) -> list[list[int]]:
        """Pass 2: clusters of two or more near-duplicate texts, as sorted indices, ordered by
        their first index; then the work files are removed."""
        self._flush()
        forest, verify, size = UnionFind(), self.config.verify, self.config.num_perm * 8
        try:
            with open(self._signatures, "rb") as handle:  # empty unless verify is set

                def signature(i: int) -> np.ndarray:
                    return np.frombuffer(os.pread(handle.fileno(), size, i * size), np.uint64)

                for i, j in self.buckets.pairs():
                    if verify is None or estimated_jaccard(signature(i), signature(j)) >= verify:
                        forest.union(i, j)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return forest.groups()


def near_duplicate_clusters(
    docs: Iterable[Document], config: MinHashConfig | None = None
) -> list[list[str]]:
    """Clusters of near-duplicate documents as ids, each in input order (the first is kept)."""
    index, ids = MinHashIndex(config or MinHashConfig()), []
    for doc in docs:
        index.add(doc.text, doc.language)
        ids.append(doc.id)
    return [[ids[i] for i in g] for g in index.clusters()]


class MinHashDedup(Step):
    """Keep the first document of each near-duplicate cluster, drop the rest as ``near_duplicate``.

    Three passes over the same documents in the same order: :meth:`cluster` (passes 1 and 2,
    work files in ``folder``), then :meth:`select` yields the kept ones; :meth:`run` does both
    over a sequence. Dropped documents get ``metadata["duplicate_of"]``; after :meth:`select`,
    the clusters (ids) are in :attr:`clusters` and :meth:`report` describes them, with the
    ``examples`` largest clusters' first two documents (the only texts held).
    """

    name: ClassVar[str] = "dedup_minhash"

    def __init__(
        self, config: MinHashConfig | None = None, folder: Path | None = None, examples: int = 5
    ) -> None:
        super().__init__()
        self.config = config or MinHashConfig()
        self.folder = folder
        self.examples = examples
        self.clusters: list[list[str]] = []
        self._groups: list[list[int]] = []
        self._indexed = 0
        self._samples: dict[str, Document] = {}

    def cluster(self, docs: Iterable[Document]) -> None:
        """Passes 1 and 2: find the clusters of ``docs`` (indices in stream order)."""
        index = MinHashIndex(self.config, self.folder)
        for doc in docs:
            index.add(doc.text, doc.language)
        self._groups, self._indexed = index.clusters(), index.count

    def select(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Pass 3: the documents given to :meth:`cluster`, again; yield those kept."""
        groups = self._groups
        member = {i: c for c, g in enumerate(groups) for i in g}
        wanted = {i for c in example_clusters(groups, self.examples) for i in groups[c][:2]}
        self.clusters, self._samples = [[] for _ in groups], {}
        count = 0
        for i, doc in enumerate(docs):
            count += 1
            self.stats.add("seen", doc.language)
            if i in wanted:
                self._samples[doc.id] = doc
            c = member.get(i)
            if c is not None:
                self.clusters[c].append(doc.id)
            if c is not None and groups[c][0] != i:
                doc.metadata["duplicate_of"] = self.clusters[c][0]
                self.drop(doc, "near_duplicate")
            else:
                self.stats.add("kept", doc.language)
                yield doc
        if count != self._indexed:
            raise RuntimeError(f"{self.name}: clustered {self._indexed} documents, got {count}")

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        items = docs if isinstance(docs, Sequence) else list(docs)  # two passes over it
        self.cluster(items)
        yield from self.select(items)

    def report(self, n_gram: int = 5, width: int = 160) -> dict[str, Any]:
        """:func:`.report.cluster_report` of the last :meth:`select`, from its counts."""
        removed = {
            lang: counts["removed"]
            for lang, counts in self.stats.by_language.items()
            if counts["removed"]
        }
        return summarise(
            self.clusters, self.stats.counts["seen"], removed, self._samples,
            self.examples, n_gram, width,
        )  # fmt: skip
