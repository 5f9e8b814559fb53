"""Corpus → megatron-core .bin/.idx per language: contents, blend, resume, bad input."""

from __future__ import annotations

import gzip
import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from bloomkit.data_tooling import indexed
from bloomkit.data_tooling.indexed import TokenizeConfig, token_dtype, tokenize_corpus
from bloomkit.data_tooling.megatron_format import check_index
from bloomkit.data_tooling.tokenizer.train import TokenizerTrainConfig, train_tokenizer
from bloomkit.rundir import RunDir, sha256_file

from .test_tokenizer import invoke, write_corpus, write_shard


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A tokenizer and 3 shards (.jsonl, .jsonl.gz, .jsonl.zst) of the shipped sample."""
    import zstandard

    root = tmp_path_factory.mktemp("idx")
    zst = write_corpus(root / "corpus", rows_per_lang=24)
    config = TokenizerTrainConfig(inputs=[zst], vocab_size=1000)
    train_tokenizer(config, RunDir(root / "tok", "test", config))
    body = zstandard.ZstdDecompressor().stream_reader(zst.read_bytes()).read().decode()
    lines = body.splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    third = len(lines) // 3
    (root / "shards").mkdir()
    (root / "shards" / "a.jsonl").write_text("".join(lines[:third]), encoding="utf-8")
    with gzip.open(root / "shards" / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(lines[third : 2 * third]))
    zstd = zstandard.ZstdCompressor().compress("".join(lines[2 * third :]).encode())
    (root / "shards" / "c.jsonl.zst").write_bytes(zstd)
    return root, records


def _config(root: Path, **kw) -> TokenizeConfig:
    defaults = {"inputs": [root / "shards"], "tokenizer": root / "tok" / "tokenizer"}
    return TokenizeConfig(**(defaults | kw))


def _outputs(run: Path) -> dict[str, bytes]:
    files = sorted((run / "datasets").iterdir())
    return {p.name: p.read_bytes() for p in files} | {"blend": (run / "blend.json").read_bytes()}


def test_datasets_hold_encoding_plus_eod(setup, tmp_path: Path) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    root, records = setup
    summary = tokenize_corpus(_config(root, workers=2, batch_docs=50), RunDir(tmp_path, "t"))
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer" / "tokenizer.json"))
    assert summary["eod_id"] == 2 and summary["dtype"] == "uint16"
    assert len(summary["datasets"]) == 46
    blend = json.loads((tmp_path / "blend.json").read_text())
    assert sum(blend.values()) == pytest.approx(1.0)
    for lang in ("en", "zhs", "hi", "yo"):
        docs = [r["text"] for r in records if r["language"] == lang]
        data = IndexedDataset(str(tmp_path / "datasets" / lang))
        assert len(data) == len(docs) and len(data.document_indices) == len(docs) + 1
        for i, text in enumerate(docs):
            assert data[i].dtype == np.uint16
            assert data[i].tolist() == [*tok.encode(text).ids, 2]
        tokens = summary["datasets"][lang]["tokens"]
        total = sum(row["tokens"] for row in summary["datasets"].values())
        assert blend[str(tmp_path / "datasets" / lang)] == pytest.approx(tokens / total)


def test_cli_output_read_by_gpt_dataset_decodes_to_documents(setup, tmp_path: Path) -> None:
    """`bloomkit data tokenize` → blend.json → pretraining's DataConfig and megatron-core's
    BlendedMegatronDatasetBuilder/GPTDataset: every whole document inside a sample is the
    encoding of an input document and decodes to its text byte for byte."""
    import torch.distributed as dist
    import yaml
    from tokenizers import Tokenizer

    from bloomkit.pretraining.data import DataConfig, build_datasets

    root, records = setup
    config = tmp_path / "tokenize.yaml"
    config.write_text(yaml.safe_dump({"inputs": [str(root / "shards")], "workers": 2,
                                      "tokenizer": str(root / "tok" / "tokenizer")}))  # fmt: skip
    run = tmp_path / "run"
    invoke("data", "tokenize", config, "--set", "alpha=0.5", "--run-dir", run)
    blend = json.loads((run / "blend.json").read_text())
    data = DataConfig(blend=blend, eod_id=2, split="100,0,0")
    data.check_files()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        train, _ = build_datasets(
            data, vocab_size=1024, seq_length=512, train_samples=32, valid_samples=0,
            data_dir=tmp_path,
        )  # fmt: skip
    finally:
        dist.destroy_process_group()
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer" / "tokenizer.json"))
    documents = {tuple(tok.encode(r["text"]).ids): r for r in records}
    languages, whole = set(), 0
    for i in range(32):
        sample = train[i]
        ids = np.append(sample["tokens"].numpy(), sample["labels"].numpy()[-1])
        ends = np.flatnonzero(ids == 2)  # EOD id 2 ends every document
        for start, end in pairwise(ends.tolist()):  # whole documents between two EODs
            piece = ids[start + 1 : end].tolist()
            doc = documents[tuple(piece)]
            assert tok.decode(piece) == doc["text"]
            languages.add(doc["language"])
            whole += 1
    assert whole >= 32 and len(languages) >= 10


def test_resume_after_crash_is_byte_identical(setup, tmp_path: Path, monkeypatch) -> None:
    root, _ = setup
    fresh = tmp_path / "fresh"
    tokenize_corpus(_config(root, workers=1), RunDir(fresh, "t"))
    real, calls = indexed._write_shard, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(indexed, "_write_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus(_config(root, workers=1), RunDir(resumed, "t"))
    monkeypatch.setattr(indexed, "_write_shard", real)
    assert len(list((resumed / "partial").iterdir())) == 1  # no half-written shard
    assert not (resumed / "datasets").exists()
    summary = tokenize_corpus(_config(root, workers=2), RunDir(resumed, "t"))
    assert summary["shards_skipped"] == 1
    fresh_out, resumed_out = _outputs(fresh), _outputs(resumed)
    fresh_out["blend"] = fresh_out["blend"].replace(b"/fresh/", b"/resumed/")
    assert fresh_out == resumed_out


def test_both_encoders_write_identical_datasets(setup, tmp_path: Path) -> None:
    """The default (tiktoken, checked to match) and ``encoder: tokenizers``: the same bytes."""
    root, _ = setup
    fast = tokenize_corpus(_config(root, workers=2), RunDir(tmp_path / "fast", "t"))
    slow = tokenize_corpus(_config(root, encoder="tokenizers"), RunDir(tmp_path / "slow", "t"))
    assert fast["encoder"] == "tiktoken (same ids, checked)"
    assert slow["encoder"] == "tokenizers (asked for)"
    fast_out, slow_out = _outputs(tmp_path / "fast"), _outputs(tmp_path / "slow")
    fast_out["blend"] = fast_out["blend"].replace(b"/fast/", b"/slow/")
    assert fast_out == slow_out


def test_lone_surrogate_is_named_with_its_line(setup, tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair (\\ud800); no encoder can take that text."""
    root, _ = setup
    shard = tmp_path / "bad.jsonl"
    shard.write_text('{"text": "ok", "language": "en"}\n{"text": "a\\ud800b", "language": "en"}\n')
    message = r"bad\.jsonl:2: 'text' holds a lone surrogate U\+D800"
    for encoder in ("auto", "tokenizers"):
        with pytest.raises(ValueError, match=message):
            tokenize_corpus(_config(root, inputs=[shard], workers=1, encoder=encoder),
                            RunDir(tmp_path / encoder, "t"))  # fmt: skip
        assert not (tmp_path / encoder / "datasets").exists()


def test_plain_jsonl_with_another_text_field_makes_one_dataset(setup, tmp_path: Path) -> None:
    """As Megatron-LM's preprocess_data.py takes it: ``{"content": ...}`` lines, no language;
    ``text_field: content`` and ``group_by: null`` give one dataset, ``all``, in input order."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    root, records = setup
    shard = tmp_path / "plain.jsonl"
    texts = [r["text"] for r in records[:40]]
    shard.write_text("".join(json.dumps({"content": t}) + "\n" for t in texts), encoding="utf-8")
    config = _config(root, inputs=[shard], text_field="content", group_by=None)
    summary = tokenize_corpus(config, RunDir(tmp_path / "run", "t"))
    assert list(summary["datasets"]) == ["all"]
    blend = json.loads((tmp_path / "run" / "blend.json").read_text())
    assert blend == {str(tmp_path / "run" / "datasets" / "all"): 1.0}
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer" / "tokenizer.json"))
    data = IndexedDataset(str(tmp_path / "run" / "datasets" / "all"))
    assert [data[i].tolist() for i in range(len(data))] == [[*tok.encode(t).ids, 2] for t in texts]
    shard.write_text(json.dumps({"content": "ok"}) + "\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"plain\.jsonl:2: missing or empty 'content'"):
        tokenize_corpus(config, RunDir(tmp_path / "bad", "t"))


def test_large_vocabulary_is_stored_as_int32(setup, tmp_path: Path) -> None:
    """A 70,260-token vocabulary whose 256 byte tokens sit above id 65,535: stored as int32,
    read back exactly (uint16 would wrap every id)."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import models, pre_tokenizers

    from bloomkit.data_tooling.tokenizer.train import (
        SPECIAL_TOKENS,
        build_trainer_pair,
        save_hf_tokenizer,
    )

    assert token_dtype(65_535) is np.uint16 and token_dtype(250_680) is np.int32
    root, records = setup
    fillers = [f"filler{i}" for i in range(70_000)]  # never produced: no merges lead to them
    vocab = [*SPECIAL_TOKENS, *fillers, *pre_tokenizers.ByteLevel.alphabet()]
    tokenizer, _ = build_trainer_pair(len(vocab), 2)
    tokenizer.model = models.BPE({token: i for i, token in enumerate(vocab)}, [])
    save_hf_tokenizer(tokenizer, tmp_path / "big", {})
    shard = root / "shards" / "a.jsonl"
    config = TokenizeConfig(inputs=[shard], tokenizer=tmp_path / "big", workers=1)
    summary = tokenize_corpus(config, RunDir(tmp_path / "run", "t"))
    assert summary["dtype"] == "int32" and summary["vocab_size"] == 70_260
    texts = [json.loads(line)["text"] for line in shard.read_text(encoding="utf-8").splitlines()]
    en = [text for text, r in zip(texts, records, strict=False) if r["language"] == "en"]
    data = IndexedDataset(str(tmp_path / "run" / "datasets" / "en"))
    assert len(data) == len(en) and data[0].dtype == np.int32
    for i, text in enumerate(en):
        ids = data[i].tolist()
        assert ids[-1] == 2 and min(ids[:-1]) > 65_535
        assert tokenizer.decode(ids[:-1]) == text


def test_bad_inputs_name_the_file(setup, tmp_path: Path) -> None:
    root, _ = setup
    with pytest.raises(FileNotFoundError, match="nope: not a tokenizer folder"):
        tokenize_corpus(TokenizeConfig(inputs=[root / "shards"], tokenizer=tmp_path / "nope"),
                        RunDir(tmp_path / "r1", "t"))  # fmt: skip
    for model_vocab in (512, 2048):  # too small for the ids, or built for another tokenizer
        message = r"tokenizer\.json: 1000 tokens pad to 1024 at tensor_parallel=1, but "
        with pytest.raises(ValueError, match=rf"{message}model_vocab_size is {model_vocab}:"):
            tokenize_corpus(
                _config(root, model_vocab_size=model_vocab), RunDir(tmp_path / "r2", "t")
            )
    empty = tmp_path / "yo.jsonl.zst"
    write_shard(empty, [])
    with pytest.raises(ValueError, match=r"yo\.jsonl\.zst: empty shard"):
        tokenize_corpus(
            _config(root, inputs=[root / "shards", empty]), RunDir(tmp_path / "r3", "t")
        )
    assert not (tmp_path / "r3" / "datasets").exists()  # nothing half-written
    assert not (tmp_path / "r3" / "blend.json").exists()
    run = tmp_path / "r4"
    config = _config(root, workers=1, model_vocab_size=2048, tensor_parallel=16)
    tokenize_corpus(config, RunDir(run, "t"))
    assert json.loads((run / "vocab.json").read_text()) == {
        "tokenizer": str((root / "tok" / "tokenizer").resolve()), "vocab_size": 1000,
        "padded_vocab_size": 2048, "tensor_parallel": 16, "dtype": "uint16", "eod_id": 2,
        "tokenizer_sha256": sha256_file(root / "tok" / "tokenizer" / "tokenizer.json"),
    }  # fmt: skip
    idx = next((run / "partial").glob("*/en.idx"))
    idx.write_bytes(b"garbage")
    (run / "manifest.json").unlink()
    (run / "blend.json").unlink()
    before = sorted((run / "datasets").iterdir())
    with pytest.raises(ValueError, match=r"corrupt partial dataset: .*en\.idx: not a megatron"):
        tokenize_corpus(config, RunDir(run, "t"))
    assert sorted((run / "datasets").iterdir()) == before  # the old datasets left as they were
    assert not (run / "blend.json").exists()
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]  # no half-written merge


def test_corrupt_merged_dataset_is_named_and_merged_again(setup, tmp_path: Path) -> None:
    root, records = setup
    run = tmp_path / "run"
    tokenize_corpus(_config(root, workers=1), RunDir(run, "t"))
    good = _outputs(run)
    en = run / "datasets" / "en"
    docs = sum(r["language"] == "en" for r in records)
    assert check_index(en, np.uint16) == (docs, docs)  # one sequence per document
    with pytest.raises(ValueError, match=r"en\.idx: tokens are uint16, expected int32"):
        check_index(en, np.int32)
    idx, data = en.with_suffix(".idx"), en.with_suffix(".bin")
    idx.write_bytes(idx.read_bytes()[:-8])  # a partly written index
    header = rf"its header \({docs} sequences, {docs} documents\)"
    with pytest.raises(ValueError, match=rf"en\.idx: \d+ bytes, {header} needs \d+: truncated"):
        check_index(en)
    summary = tokenize_corpus(_config(root, workers=1), RunDir(run, "t"))
    assert summary["shards_skipped"] == 3 and _outputs(run) == good  # merged again, same bytes
    data.write_bytes(data.read_bytes()[:-2])  # one token short
    with pytest.raises(ValueError, match=r"en\.bin: \d+ bytes, en\.idx indexes \d+ uint16"):
        check_index(en)
    tokenize_corpus(_config(root, workers=1), RunDir(run, "t"))
    assert _outputs(run) == good
    idx.unlink()
    with pytest.raises(FileNotFoundError, match=r"en\.idx: dataset file missing"):
        check_index(en)
    tokenize_corpus(_config(root, workers=1), RunDir(run, "t"))
    assert _outputs(run) == good


def test_group_by_source_with_flattened_weights(setup, tmp_path: Path) -> None:
    """One dataset per ``source``, documents in input order; weights ``∝ tokens^alpha``."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    root, records = setup
    sources = ("web", "web", "web", "books", "books", "wiki")  # shares 1/2, 1/3, 1/6
    shard = tmp_path / "mixed.jsonl"
    rows = [r | {"source": sources[i % 6]} for i, r in enumerate(records)]
    shard.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = _config(root, inputs=[shard], group_by="source", alpha=0.3, batch_docs=64)
    summary = tokenize_corpus(config, RunDir(tmp_path / "run", "t"))
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer" / "tokenizer.json"))
    assert sorted(summary["datasets"]) == ["books", "web", "wiki"]
    blend = json.loads((tmp_path / "run" / "blend.json").read_text())
    tokens = {key: row["tokens"] for key, row in summary["datasets"].items()}
    scale = sum(n**0.3 for n in tokens.values())
    for source, n in tokens.items():
        texts = [r["text"] for r in rows if r["source"] == source]
        data = IndexedDataset(str(tmp_path / "run" / "datasets" / source))
        assert [data[i].tolist() for i in range(len(data))] == [
            [*tok.encode(text).ids, 2] for text in texts
        ]
        assert n == sum(len(tok.encode(text).ids) + 1 for text in texts)
        assert blend[str(tmp_path / "run" / "datasets" / source)] == pytest.approx(n**0.3 / scale)
    share = tokens["wiki"] / sum(tokens.values())
    assert share < blend[str(tmp_path / "run" / "datasets" / "wiki")] < 1 / 3  # towards uniform


def test_cli_reports_bad_input_by_name(setup, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bloomkit.cli import app

    root, _ = setup
    config = tmp_path / "tokenize.yaml"
    config.write_text(f"inputs: [{root / 'shards'}]\ntokenizer: {tmp_path / 'missing'}\n")
    result = CliRunner().invoke(app, ["data", "tokenize", str(config), "--run-dir",
                                      str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'missing'}: not a tokenizer folder" in result.output


def test_array_tasks_then_merge_equal_one_run(setup, tmp_path: Path) -> None:
    root, _ = setup
    whole = tmp_path / "whole"
    tokenize_corpus(_config(root, workers=1), RunDir(whole, "t"))
    split = RunDir(tmp_path / "split", "t")
    first = tokenize_corpus(_config(root, workers=1), split, task=(0, 2))
    assert first["shards"] == [0, 2] and not (split.path / "blend.json").exists()
    with pytest.raises(ValueError, match=r"1 shard\(s\) not tokenized yet"):
        tokenize_corpus(_config(root, workers=1), split, merge=True)
    assert tokenize_corpus(_config(root, workers=1), split, task=(1, 2))["encoded"] == 1
    tokenize_corpus(_config(root, workers=1), split, merge=True)
    ours, theirs = _outputs(split.path), _outputs(whole)
    assert ours.pop("blend").replace(b"/split/", b"/") == theirs.pop("blend").replace(
        b"/whole/", b"/"
    )
    assert ours == theirs  # every .bin/.idx byte-identical
