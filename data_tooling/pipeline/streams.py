"""Lines of plain, gzip and zstd files, streamed without holding a file in memory.

A stream that ends or breaks inside its compression (a truncated download, a corrupt block)
raises :class:`Truncated` with what is wrong and the unfinished last line, so that a reader can
quarantine that line and keep what came before.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

_CHUNK = 1 << 20


class Truncated(Exception):
    """The input ended (or broke) inside a compressed stream; ``partial`` is the unfinished line."""

    def __init__(self, what: str, partial: bytes = b""):
        super().__init__(what)
        self.what = what
        self.partial = partial


def lines(path: Path) -> Iterator[bytes]:
    """Stream the lines of a (possibly compressed) file without holding the file in memory."""
    pieces: list[bytes] = []
    try:
        for block in _chunks(path):
            parts = block.split(b"\n")
            if len(parts) > 1:
                yield b"".join([*pieces, parts[0]])
                yield from parts[1:-1]
                pieces = []
            if parts[-1]:
                pieces.append(parts[-1])
    except Truncated as err:
        err.partial = b"".join(pieces)
        raise
    if pieces:
        yield b"".join(pieces)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        if path.name.endswith(".gz"):
            yield from _gzip_chunks(handle)
        elif path.name.endswith(".zst"):
            yield from _zstd_chunks(handle)
        else:
            while block := handle.read(_CHUNK):
                yield block


def _gzip_chunks(handle: Any) -> Iterator[bytes]:
    stream = gzip.GzipFile(fileobj=handle)
    try:
        while block := stream.read1(_CHUNK):
            yield block
    except EOFError:
        raise Truncated("truncated gzip stream (ends before its end marker)") from None
    except (OSError, zlib.error) as err:
        raise Truncated(f"corrupt gzip stream ({err})") from None


def _zstd_chunks(handle: Any) -> Iterator[bytes]:
    """Decompress every frame of a zstd file; a file ending inside a frame is truncated."""
    decompressor = zstandard.ZstdDecompressor()
    stream = decompressor.decompressobj()
    in_frame = False
    try:
        while block := handle.read(_CHUNK):
            while block:
                in_frame = True
                if out := stream.decompress(block):
                    yield out
                block = b""
                if stream.eof:
                    in_frame = False
                    block = stream.unused_data
                    stream = decompressor.decompressobj()
    except zstandard.ZstdError as err:
        raise Truncated(f"corrupt zstd stream ({err})") from None
    if in_frame:
        raise Truncated("truncated zstd stream (ends inside a frame)")
