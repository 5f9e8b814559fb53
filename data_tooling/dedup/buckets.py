"""On-disk LSH buckets and a union-find over document indices: the memory-flat core of MinHash.

:class:`BandBuckets` keeps, per band, one file of fixed-size records ``(band values, index)``
as big-endian ``uint64`` (so byte order is numeric order), written in runs of at most
:data:`RUN_DOCS` documents, each run sorted. :meth:`BandBuckets.pairs` merges the runs of a
band (``heapq.merge``, :data:`BLOCK_RECORDS` records read at a time per run) and yields, for
each document, the first (lowest-index) document of its bucket. Memory: the signatures of one
run (``RUN_DOCS × bands·rows × 8`` bytes, 14 MiB at 14 × 8) while writing, and one read block
per run (``BLOCK_RECORDS × (rows + 1) × 8`` bytes, 18 KiB) while merging: constant but for
that last term, which grows by 18 KiB per 16k documents (~1 byte per document). Disk:
``bands × (rows + 1) × 8`` bytes per document (1 KiB at 14 × 8), until the files are deleted.
Full band values are kept, not a hash of them, so candidates are exactly the in-memory ones.
This is datatrove's MinHash stage 2 (sorted signature files per bucket, merged with a heap).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RUN_DOCS = 1 << 14
"""Documents per sorted run."""
BLOCK_RECORDS = 256
"""Records read at once from each run while merging."""


class BandBuckets:
    """Band records of many documents in sorted runs under ``folder`` (one file per band)."""

    def __init__(self, folder: Path, bands: int, rows: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.rows = rows
        self.paths = [folder / f"band-{band:03d}.bin" for band in range(bands)]
        for path in self.paths:
            path.write_bytes(b"")
        self.runs: list[int] = []
        """Records in each run, in file order (the same for every band)."""
        self._sigs: list[np.ndarray] = []
        self._index: list[np.ndarray] = []

    def add(self, sigs: np.ndarray, index: np.ndarray) -> None:
        """Add documents ``index`` (int array) with signatures ``sigs`` (``(n, bands·rows)``)."""
        self._sigs.append(sigs)
        self._index.append(index)
        if sum(len(i) for i in self._index) >= RUN_DOCS:
            self.flush()

    def flush(self) -> None:
        """Write the documents added since the last flush as one sorted run per band."""
        if not self._index:
            return
        sigs, index = np.concatenate(self._sigs), np.concatenate(self._index)
        self._sigs, self._index = [], []
        record = np.dtype((np.void, (self.rows + 1) * 8))
        for band, path in enumerate(self.paths):
            block = np.empty((len(index), self.rows + 1), dtype=">u8")
            block[:, : self.rows] = sigs[:, band * self.rows : (band + 1) * self.rows]
            block[:, self.rows] = index
            with open(path, "ab") as handle:
                handle.write(np.sort(block.view(record).ravel()).tobytes())
        self.runs.append(len(index))

    def pairs(self) -> Iterator[tuple[int, int]]:
        """``(i, j)``, ``j < i``: the first document sharing a bucket with ``i``, band by band."""
        self.flush()
        size, key = (self.rows + 1) * 8, self.rows * 8
        for path in self.paths:
            with open(path, "rb") as handle:
                runs, offset = [], 0
                for n in self.runs:
                    runs.append(_records(handle.fileno(), offset * size, n, size))
                    offset += n
                bucket, first = b"", -1
                for record in heapq.merge(*runs):
                    index = int.from_bytes(record[key:], "big")
                    if record[:key] == bucket:
                        yield index, first
                    else:
                        bucket, first = record[:key], index


def _records(fd: int, offset: int, count: int, size: int) -> Iterator[bytes]:
    for start in range(0, count, BLOCK_RECORDS):
        n = min(BLOCK_RECORDS, count - start)
        buf = os.pread(fd, n * size, offset + start * size)
        yield from (buf[i : i + size] for i in range(0, n * size, size))


class UnionFind:
    """Disjoint sets of the document indices ever joined (a dict: untouched ones cost nothing)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        root = i
        while (up := self.parent.get(root, root)) != root:
            root = up
        while i != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, i: int, j: int) -> None:
        """Join the sets of ``i`` and ``j``; the lower index stays the root."""
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def groups(self) -> list[list[int]]:
        """Sets of two or more indices, each sorted, ordered by their lowest index."""
        members = sorted(set(self.parent) | set(self.parent.values()))
        groups: dict[int, list[int]] = {}
        for i in members:
            groups.setdefault(self.find(i), []).append(i)
        return list(groups.values())
