"""megatron-core's own .bin/.idx builder, loaded without all of megatron-core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_builder_loads_without_all_of_megatron_core(tmp_path: Path) -> None:
    """megatron-core's own builder module, loaded without ``megatron/core/__init__.py``, writes
    a dataset; a later full ``import megatron.core`` works, shares that module, reads it."""
    script = """
import sys
from bloomkit.data_tooling.megatron_format import megatron_indexed
module = megatron_indexed()
assert module.__name__ == "megatron.core.datasets.indexed_dataset", module.__name__
assert "megatron.core" not in sys.modules and "megatron.core.parallel_state" not in sys.modules
import numpy as np
builder = module.IndexedDatasetBuilder("d.bin", dtype=np.uint16)
builder.add_document(np.array([5, 6, 2]), [3])
builder.finalize("d.idx")
import megatron.core
from megatron.core.datasets.gpt_dataset import GPTDataset
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder
assert IndexedDatasetBuilder is module.IndexedDatasetBuilder
data = IndexedDataset("d")  # kept: its tokens are views of its memory map
assert data[0].tolist() == [5, 6, 2]
assert megatron.core.parallel_state.get_tensor_model_parallel_world_size
print(module.__file__)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("megatron/core/datasets/indexed_dataset.py")
