"""Fixtures of the pretraining tests: a tiny .bin/.idx written with megatron-core's builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def token_prefix(tmp_path_factory) -> Path:
    """``tokens.{bin,idx}``: 200 documents of a learnable pattern (counting mod 50, random
    start and stride 1–3), vocab < 256, end-of-document 0."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = tmp_path_factory.mktemp("tokens") / "tokens"
    rng = np.random.default_rng(0)
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=np.uint16)
    for _ in range(200):
        start, stride, length = rng.integers(1, 50), rng.integers(1, 4), rng.integers(40, 120)
        ids = [1 + (start + stride * i) % 50 for i in range(length)] + [0]
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(f"{prefix}.idx")
    return prefix


@pytest.fixture(scope="session")
def language_blend(tmp_path_factory) -> Path:
    """``blend.json`` of two "languages", as ``bloomkit data tokenize`` writes it: ``count``
    (counting patterns, learnable) and ``noise`` (uniform random tokens, not learnable), 60
    documents each, in ``datasets/<language>.{bin,idx}``."""
    import json

    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    root = tmp_path_factory.mktemp("blend")
    rng = np.random.default_rng(1)
    for language in ("count", "noise"):
        prefix = root / "datasets" / language
        prefix.parent.mkdir(exist_ok=True)
        builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=np.uint16)
        for _ in range(60):
            length = int(rng.integers(40, 120))
            if language == "count":
                start, stride = rng.integers(1, 50), rng.integers(1, 4)
                ids = [1 + (start + stride * i) % 50 for i in range(length)]
            else:
                ids = rng.integers(1, 200, size=length).tolist()
            builder.add_document(torch.tensor([*ids, 0]), [length + 1])
        builder.finalize(f"{prefix}.idx")
    blend = {str(root / "datasets" / "count"): 0.7, str(root / "datasets" / "noise"): 0.3}
    (root / "blend.json").write_text(json.dumps(blend), encoding="utf-8")
    return root / "blend.json"
