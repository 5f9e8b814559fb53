"""The data section: one source of tokens, blend files as `bloomkit data tokenize` writes them."""

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from bloomkit.pretraining.data import DataConfig, check_splits


def test_blend_file_is_read_and_checked(token_prefix, tmp_path):
    blend = tmp_path / "blend.json"
    blend.write_text(json.dumps({str(token_prefix): 0.7}))
    data = DataConfig(blend_file=blend)
    assert data.resolved_blend() == {str(token_prefix): 0.7}
    data.check_files()
    blend.write_text(json.dumps({str(tmp_path / "gone"): 1.0}))
    with pytest.raises(FileNotFoundError, match=r"gone\.bin"):
        data.check_files()
    blend.write_text(json.dumps({str(token_prefix): 0}))
    with pytest.raises(ValueError, match="expected a weight > 0"):
        data.resolved_blend()
    blend.write_text("{not json")
    with pytest.raises(ValueError, match=r"blend\.json:1: not JSON"):
        data.resolved_blend()


def test_damaged_dataset_and_another_tokenizer_are_refused(token_prefix, tmp_path):
    import shutil

    for ext in (".bin", ".idx"):
        shutil.copy(f"{token_prefix}{ext}", tmp_path / f"tokens{ext}")
    (tmp_path / "blend.json").write_text(json.dumps({str(tmp_path / "tokens"): 1.0}))
    record = {"tokenizer": "/tok", "vocab_size": 250, "dtype": "uint16", "eod_id": 0}
    (tmp_path / "vocab.json").write_text(json.dumps(record))
    data = DataConfig(blend_file=tmp_path / "blend.json")
    data.check_files(model_vocab_size=256)  # as `bloomkit data tokenize` wrote it: accepted

    (tmp_path / "vocab.json").write_text(json.dumps(record | {"vocab_size": 300, "eod_id": 2}))
    with pytest.raises(
        ValueError,
        match=r"vocab\.json: the tokenizer \(/tok\) has 300 tokens, "
        r"more than model\.vocab_size 256; .* id 2, data\.eod_id is 0",
    ):
        data.check_files(model_vocab_size=256)
    (tmp_path / "vocab.json").write_text(json.dumps(record | {"dtype": "int32"}))
    with pytest.raises(ValueError, match=r"data\.blend: .*tokens\.idx"):
        data.check_files(model_vocab_size=256)

    (tmp_path / "vocab.json").write_text(json.dumps(record))
    data_file = tmp_path / "tokens.bin"
    data_file.write_bytes(data_file.read_bytes()[:-2])  # a truncated copy
    with pytest.raises(ValueError, match=r"data\.blend: .*tokens\.bin"):
        data.check_files(model_vocab_size=256)


def test_exactly_one_source(token_prefix, tmp_path):
    with pytest.raises(ValidationError, match="exactly one of"):
        DataConfig(blend={str(token_prefix): 1.0}, blend_file=tmp_path / "blend.json")
    with pytest.raises(ValidationError, match="exactly one of"):
        DataConfig()


def test_an_empty_validation_share_is_refused_not_a_hang(tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = tmp_path / "python"
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=np.uint16)
    for _ in range(8):  # 8 documents: 2 % of them is no document at all
        builder.add_document(torch.tensor([5, 6, 7, 0]), [4])
    builder.finalize(f"{prefix}.idx")
    with pytest.raises(ValueError, match=r"python: 8 documents leave its validation share"):
        check_splits([str(prefix)], "98,2,0", {"train": 10, "validation": 2})
    check_splits([str(prefix)], "98,2,0", {"train": 10, "validation": 0})
    check_splits([str(prefix)], "80,20,0", {"train": 10, "validation": 2})
