"""Sorted on-disk runs of ``(key, index, payload)`` records, and a bitmap of indices.

The memory-flat core of ``unique_id`` and ``dedup_exact``, as :mod:`.buckets` is MinHash's.
:class:`SortedRuns` holds at most :data:`RUN_RECORDS` records in memory; each full buffer is
sorted and appended to one file as a run, and iterating merges the runs (``heapq.merge``,
:data:`BLOCK_BYTES` read at a time per run). A record on disk is a big-endian header (key
length, payload length, index: 16 bytes) followed by the key and the payload bytes. Memory:
the buffer (constant) and one block per run while merging (:data:`BLOCK_BYTES` per
:data:`RUN_RECORDS` documents: 0.5 byte per document). :class:`Bitmap` marks indices in one
bit each.
"""

from __future__ import annotations

import heapq
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RUN_RECORDS = 1 << 15
"""Records sorted in memory, then written as one run."""
BLOCK_BYTES = 1 << 14
"""Bytes read at once from each run while merging."""
_HEAD = struct.Struct(">IIQ")

Record = tuple[bytes, int, bytes]
"""``(key, index, payload)``."""


class SortedRuns:
    """Records in sorted runs in the file ``path``; iterate for them in ``(key, index)`` order.

    Each ``(key, index)`` must be added once: payloads are never compared.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(b"")
        self._buffer: list[Record] = []
        self._runs: list[tuple[int, int]] = []
        """``(offset, length)`` in bytes of each run, in file order."""

    def add(self, key: bytes, index: int, payload: bytes = b"") -> None:
        self._buffer.append((key, index, payload))
        if len(self._buffer) >= RUN_RECORDS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        data = b"".join(
            _HEAD.pack(len(key), len(payload), index) + key + payload
            for key, index, payload in self._buffer
        )
        with open(self.path, "ab") as handle:
            offset = handle.tell()
            handle.write(data)
        self._runs.append((offset, len(data)))
        self._buffer = []

    def __iter__(self) -> Iterator[Record]:
        self._flush()
        with open(self.path, "rb") as handle:
            yield from heapq.merge(*(_read(handle.fileno(), *run) for run in self._runs))


def _read(fd: int, offset: int, length: int) -> Iterator[Record]:
    end, buf, at = offset + length, b"", 0
    while True:
        head = _HEAD.unpack_from(buf, at) if len(buf) - at >= _HEAD.size else None
        if head is None or len(buf) - at < _HEAD.size + head[0] + head[1]:
            if offset == end:
                return
            more = os.pread(fd, min(BLOCK_BYTES, end - offset), offset)
            offset += len(more)
            buf, at = buf[at:] + more, 0
            continue
        keys, payloads, index = head
        start = at + _HEAD.size
        at = start + keys + payloads
        yield buf[start : start + keys], index, buf[start + keys : at]


class Bitmap:
    """A set of non-negative integers, one bit each, grown as needed."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, i: int) -> None:
        byte = i >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits)))
        self.bits[byte] |= 1 << (i & 7)

    def __contains__(self, i: int) -> bool:
        byte = i >> 3
        return byte < len(self.bits) and bool(self.bits[byte] >> (i & 7) & 1)

    def __or__(self, other: Bitmap) -> Bitmap:
        short, long = sorted((self.bits, other.bits), key=len)
        out = Bitmap()
        out.bits = bytearray(long)
        out.bits[: len(short)] = np.bitwise_or(
            np.frombuffer(short, np.uint8), np.frombuffer(long[: len(short)], np.uint8)
        ).tobytes()
        return out
