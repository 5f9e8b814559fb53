"""Bad input to ``import hf`` / ``export hf``: another architecture, a missing safetensors or
``.distcp`` shard, a tokenizer larger than the vocabulary. Each is a clear error naming the
file, raised before anything is written: the (empty) output folder stays empty."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.pretraining.checkpoint import CheckpointError
from bloomkit.pretraining.checks import tiny_hf_bloom
from bloomkit.pretraining.convert import export_hf, import_hf
from bloomkit.pretraining.hf import HFFolderError
from bloomkit.pretraining.parallel import ParallelConfig


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hf") / "tiny-bloom"
    tiny_hf_bloom(4, hidden=64, layers=2, vocab=256).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(hf_folder, tmp_path_factory) -> Path:
    return import_hf(str(hf_folder), tmp_path_factory.mktemp("ckpt") / "tp1", ParallelConfig())


@pytest.fixture
def out(tmp_path) -> Path:
    """An empty output folder, alone in its parent."""
    folder = tmp_path / "target" / "out"
    folder.mkdir(parents=True)
    return folder


def assert_nothing_written(out: Path) -> None:
    assert list(out.parent.iterdir()) == [out] and not any(out.iterdir())


def cli_fails(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_gpt2_folder_is_refused_by_its_config(tmp_path, out):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100)).save_pretrained(
        folder
    )
    message = f"{folder / 'config.json'}: model_type 'gpt2', expected 'bloom'"
    with pytest.raises(HFFolderError, match=re.escape(message)):
        import_hf(str(folder), out, ParallelConfig())
    cli_fails(["import", "hf", str(folder), str(out)], message)
    assert_nothing_written(out)


def test_config_that_is_not_json_names_its_line(hf_folder, tmp_path, out):
    folder = tmp_path / "broken"
    shutil.copytree(hf_folder, folder)
    (folder / "config.json").write_text('{\n  "model_type": "bloom",\n  oops\n}\n')
    with pytest.raises(HFFolderError, match=re.escape(f"{folder / 'config.json'}:3: not JSON")):
        import_hf(str(folder), out, ParallelConfig())
    assert_nothing_written(out)


def test_missing_safetensors_shard_is_named(tmp_path, out):
    folder = tmp_path / "sharded"
    tiny_hf_bloom(4, hidden=64, layers=2, vocab=256).save_pretrained(folder, max_shard_size="100KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1
    shards[-1].unlink()
    message = (
        f"{folder / 'model.safetensors.index.json'}: weight_map lists {shards[-1].name}, "
        f"missing from {folder}"
    )
    with pytest.raises(HFFolderError, match=re.escape(message)):
        import_hf(str(folder), out, ParallelConfig(tensor_parallel=2))
    cli_fails(["import", "hf", str(folder), str(out), "--tp", "2"], message)
    assert_nothing_written(out)


def test_export_of_a_checkpoint_missing_a_distcp_shard(checkpoint, tmp_path, out):
    damaged = tmp_path / "damaged"
    shutil.copytree(checkpoint, damaged)
    shard = sorted(damaged.glob("*.distcp"))[0]
    shard.unlink()
    message = f"{damaged}: missing file {shard.name}"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        export_hf(damaged, out)
    cli_fails(["export", "hf", str(damaged), str(out)], message)
    assert_nothing_written(out)


def test_tokenizer_larger_than_the_vocabulary_is_refused(checkpoint, tmp_path, out):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.add_tokens([chr(c) for c in range(0x100, 0x100 + 300)])
    tokenizer = tmp_path / "tokenizer"
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>").save_pretrained(tokenizer)
    message = (
        f"{tokenizer / 'tokenizer.json'}: 301 tokens, but the checkpoint's model.vocab_size is 256"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        export_hf(checkpoint, out, tokenizer=tokenizer)
    cli_fails(["export", "hf", str(checkpoint), str(out), "--tokenizer", str(tokenizer)], message)
    assert_nothing_written(out)
