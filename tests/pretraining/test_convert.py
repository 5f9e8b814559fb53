"""HF round trip: HF → bloomkit checkpoint (TP2×PP2) → HF, logits equal to 1e-4 at each step
(the checkpoint run at TP2×PP2 in 4 gloo processes) and identical tensors at the end."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer, BloomForCausalLM

from bloomkit.pretraining.checkpoint import CheckpointError, read_meta
from bloomkit.pretraining.checks import tiny_hf_bloom
from bloomkit.pretraining.convert import checkpoint_logits, export_hf, import_hf
from bloomkit.pretraining.parallel import ParallelConfig

ATOL = 1e-4
TOKENS = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "tiny-bloom"
    tiny_hf_bloom(heads=4, hidden=64, layers=4, vocab=256).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_tokens([chr(c) for c in range(32, 200)])
    tok = PreTrainedTokenizerFast(  # special tokens after the 168 characters: not BLOOM's 1/2/3
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (168, 169, 170)
    folder = tmp_path_factory.mktemp("tok") / "tokenizer"
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def imported(hf_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "tp2-pp2"
    return import_hf(str(hf_folder), out, ParallelConfig(tensor_parallel=2, pipeline_parallel=2))


def test_import_writes_a_sharded_weights_checkpoint(imported):
    meta = read_meta(imported)
    assert meta["kind"] == "weights" and meta["step"] == 0
    assert meta["parallel"] == {"tensor_parallel": 2, "pipeline_parallel": 2, "data_parallel": 1}
    assert meta["model"]["num_layers"] == 4 and meta["model"]["vocab_size"] == 256


def test_imported_checkpoint_at_tp2_pp2_gives_the_hf_logits(hf_folder, imported):
    original = BloomForCausalLM.from_pretrained(hf_folder).eval()
    with torch.no_grad():
        expected = original(TOKENS).logits
    logits = checkpoint_logits(
        imported, TOKENS, ParallelConfig(tensor_parallel=2, pipeline_parallel=2)
    )
    assert logits.shape == expected.shape == (2, 16, 256)
    assert (logits - expected).abs().max().item() < ATOL


def test_round_trip_is_exact_and_generates(hf_folder, imported, tokenizer_folder, tmp_path):
    out = export_hf(imported, tmp_path / "exported", tokenizer=tokenizer_folder)
    original = BloomForCausalLM.from_pretrained(hf_folder).eval()
    exported = BloomForCausalLM.from_pretrained(out).eval()
    theirs, ours = original.state_dict(), exported.state_dict()
    assert sorted(theirs) == sorted(ours)
    for name, tensor in theirs.items():
        assert torch.equal(tensor, ours[name]), name
    with torch.no_grad():
        assert torch.allclose(original(TOKENS).logits, exported(TOKENS).logits, atol=ATOL)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("hello", return_tensors="pt").input_ids
    generated = exported.generate(ids, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] == ids.shape[1] + 5
    for name in ("model.safetensors", "config.json", "generation_config.json",
                 "tokenizer.json", "README.md", "LICENSE-RAIL"):  # fmt: skip
        assert (out / name).is_file(), name
    assert "Responsible AI" in (out / "LICENSE-RAIL").read_text()
    card = (out / "README.md").read_text()
    assert "license_link: LICENSE-RAIL" in card and "| steps | 0 |" in card
    assert json.loads((out / "config.json").read_text())["n_layer"] == 4


def special_ids(folder):
    config = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    names = ("bos_token_id", "eos_token_id", "pad_token_id")
    return [config[n] for n in names], [generation[n] for n in names]


def test_special_token_ids_come_from_the_tokenizer(imported, tokenizer_folder, tmp_path):
    out = export_hf(imported, tmp_path / "exported", tokenizer=tokenizer_folder)
    assert special_ids(out) == ([168, 169, 170], [168, 169, 170])
    model = BloomForCausalLM.from_pretrained(out)
    assert (model.generation_config.eos_token_id, model.config.pad_token_id) == (169, 170)
    card = (out / "README.md").read_text()
    assert "| bos | `<s>` | 168 |" in card and "| eos | `</s>` | 169 |" in card
    assert "| pad | `<pad>` | 170 |" in card and f"from `{tokenizer_folder}`" in card


def test_export_without_a_tokenizer_says_which_ids_it_assumed(imported, tmp_path, caplog):
    from bloomkit.console import log

    log.addHandler(caplog.handler)  # the bloomkit logger may not propagate to the root
    try:
        out = export_hf(imported, tmp_path / "bare")
    finally:
        log.removeHandler(caplog.handler)
    assert special_ids(out) == ([1, 2, 3], [1, 2, 3])
    assert not (out / "tokenizer.json").exists()
    assert "no tokenizer given (--tokenizer)" in caplog.text
    card = (out / "README.md").read_text()
    assert "No tokenizer was given at export (`--tokenizer`)" in card
    assert "special token ids: bos 1, eos 2, pad 3." in card


def test_export_refuses_to_overwrite_and_bad_inputs(imported, hf_folder, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="nothing was overwritten"):
        export_hf(imported, taken)
    assert (taken / "keep.txt").read_text() == "mine"
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        export_hf(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        import_hf(str(tmp_path), tmp_path / "ckpt", ParallelConfig())
    with pytest.raises(FileNotFoundError, match=r"no tokenizer\.json"):
        export_hf(imported, tmp_path / "out", tokenizer=hf_folder)
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


def test_cli_import_then_export(hf_folder, tokenizer_folder, tmp_path):
    from typer.testing import CliRunner

    from bloomkit.cli import app

    runner = CliRunner()
    ckpt, out = tmp_path / "ckpt", tmp_path / "hf"
    result = runner.invoke(app, ["import", "hf", str(hf_folder), str(ckpt)])
    assert result.exit_code == 0, result.output
    assert read_meta(ckpt)["parallel"]["tensor_parallel"] == 1
    args = ["export", "hf", str(ckpt), str(out), "--tokenizer", str(tokenizer_folder)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert BloomForCausalLM.from_pretrained(out).config.n_layer == 4
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "not empty" in again.output
