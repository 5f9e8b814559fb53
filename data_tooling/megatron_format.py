"""megatron-core's ``.bin``/``.idx`` format: its own builder module, loaded lightly, and a check
that a dataset is whole before anything reads it."""

from __future__ import annotations

import importlib
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_INDEXED = "megatron.core.datasets.indexed_dataset"
_IDX_MAGIC, _IDX_VERSION = b"MMIDIDX\x00\x00", 1


def megatron_indexed() -> ModuleType:
    """megatron-core's own ``indexed_dataset`` module, without all of ``megatron.core``.

    A plain import runs ``megatron/core/__init__.py`` first: parallel_state, the optimizer and
    torch's compiler stack, ~2/3 of the CPU of a small run. The module itself (0.16.1) needs
    only torch, numpy, ``megatron.core.{msc_utils,datasets.object_storage_utils}`` and
    ``log_single_rank`` from ``megatron.core.utils``, defined in ``megatron.core._rank_utils``.
    So, unless ``megatron.core`` is already imported, the unchanged file is imported with its
    two parent packages present but not run and ``_rank_utils`` standing in for ``utils``;
    the stand-ins are removed afterwards, so a later ``import megatron.core`` runs normally and
    finds this same module. Should a megatron-core release need more, the plain import is used.
    """
    if "megatron.core" in sys.modules or _INDEXED in sys.modules:
        return importlib.import_module(_INDEXED)
    stand_ins: list[str] = []
    try:
        for package in ("megatron.core", "megatron.core.datasets"):
            spec = importlib.util.find_spec(package)
            if spec is None:
                raise ImportError(f"no module named {package!r}")
            sys.modules[package] = importlib.util.module_from_spec(spec)
            stand_ins.append(package)
        sys.modules["megatron.core.utils"] = importlib.import_module("megatron.core._rank_utils")
        stand_ins.append("megatron.core.utils")
        return importlib.import_module(_INDEXED)
    except (ImportError, AttributeError):
        sys.modules.pop(_INDEXED, None)
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return importlib.import_module(_INDEXED)


def check_index(prefix: Path | str, dtype: Any = None) -> tuple[int, int]:
    """Refuse a ``prefix.idx``/``prefix.bin`` pair that megatron-core cannot read whole.

    Checks the header (magic, version, dtype code, and ``dtype`` when given), that the index
    holds exactly its sequence and document tables, and that ``.bin`` is as long as the
    sequence lengths say. Returns ``(sequences, documents)``; errors name the file.
    """
    idx, data = Path(f"{prefix}.idx"), Path(f"{prefix}.bin")
    for path in (idx, data):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: dataset file missing")
    with open(idx, "rb") as handle:
        header = handle.read(34)
        if len(header) < 34 or header[:9] != _IDX_MAGIC:
            raise ValueError(f"{idx}: not a megatron-core index (bad header)")
        version, code, sequences, documents = struct.unpack("<QBQQ", header[9:])
        if version != _IDX_VERSION:
            raise ValueError(f"{idx}: index version {version}, expected {_IDX_VERSION}")
        try:
            stored = megatron_indexed().DType.dtype_from_code(code)
        except ValueError:
            raise ValueError(f"{idx}: unknown token dtype code {code}") from None
        if dtype is not None and np.dtype(stored) != np.dtype(dtype):
            raise ValueError(f"{idx}: tokens are {np.dtype(stored)}, expected {np.dtype(dtype)}")
        expected = 34 + 12 * sequences + 8 * documents
        if idx.stat().st_size != expected:
            raise ValueError(
                f"{idx}: {idx.stat().st_size} bytes, its header ({sequences} sequences, "
                f"{documents - 1} documents) needs {expected}: truncated or corrupt"
            )
        lengths = np.fromfile(handle, np.int32, sequences)
    tokens = int(lengths.sum(dtype=np.int64))
    if data.stat().st_size != tokens * np.dtype(stored).itemsize:
        raise ValueError(
            f"{data}: {data.stat().st_size} bytes, {idx.name} indexes {tokens} "
            f"{np.dtype(stored)} tokens: truncated or corrupt"
        )
    return sequences, documents - 1
