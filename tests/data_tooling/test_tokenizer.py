"""Tokenizer training: BLOOM special tokens, byte-exact round trip in 46 languages, balancing,
and the fairness report (balanced vs unbalanced on a ROOTS-like skewed corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.writers import ShardWriter
from bloomkit.data_tooling.sample import read_tsv, sample_dir
from bloomkit.data_tooling.tokenizer.corpus import (
    CorpusError,
    alpha_weights,
    balanced_sample,
    read_records,
)
from bloomkit.data_tooling.tokenizer.train import (
    TokenizerTrainConfig,
    padded_vocab_size,
    train_tokenizer,
)
from bloomkit.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*argv: str | Path) -> str:
    result = runner.invoke(app, [str(a) for a in argv])
    assert result.exit_code == 0, result.output
    return result.output


def write_shard(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """``(id, language, text)`` rows as a corpus-pipeline ``.jsonl.zst`` shard (ShardWriter)."""
    with ShardWriter(path, "jsonl.zst") as out:
        for doc_id, lang, text in rows:
            out.write(Document(id=doc_id, text=text, source="sib200", licence="CC-BY-SA-4.0",
                               language=lang, language_score=1.0, history=["sib200"]))  # fmt: skip
    return path


def write_corpus(out: Path, rows_per_lang: int = 120) -> Path:
    """The shipped SIB-200 sample as one pipeline shard, 2 sentences a document."""
    docs = []
    for lang in language_codes():
        rows = read_tsv(sample_dir() / "sib200" / lang / "train.tsv")[:rows_per_lang]
        for i in range(0, len(rows), 2):
            docs.append((f"{lang}-{i}", lang, " ".join(r["text"] for r in rows[i : i + 2])))
    return write_shard(out / "sib200.jsonl.zst", docs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``bloomkit data tokenizer train`` with the demo config on the shipped sample."""
    root = tmp_path_factory.mktemp("tok")
    write_corpus(root / "corpus")
    invoke("data", "tokenizer", "train", REPO / "configs" / "data" / "tokenizer-demo.yaml",
           "--set", f"inputs=[{root / 'corpus'}]", "--set", "vocab_size=2000",
           "--run-dir", root / "run")  # fmt: skip
    manifest = json.loads((root / "run" / "manifest.json").read_text(encoding="utf-8"))
    return root / "run" / "tokenizer", manifest["steps"]["tokenizer"]["summary"]


def test_autotokenizer_roundtrips_all_46_languages(trained, shared_data: Path) -> None:
    from transformers import AutoTokenizer

    folder, summary = trained
    tok = AutoTokenizer.from_pretrained(folder)
    assert [tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id] == [0, 1, 2, 3]
    assert summary["vocab_size"] == len(tok) == 2000
    assert summary["padded_vocab_size"] == 2048
    assert len(summary["languages"]) == 46
    for lang in language_codes():
        texts = [r["text"] for r in read_tsv(shared_data / "sib200" / lang / "dev.tsv")]
        assert len(texts) == 99
        for text in texts:
            ids = tok(text)["input_ids"]
            assert tok.decode(ids) == text, (lang, text)
    tricky = "  two  spaces\tand tab\n\nनमस्ते 你好，世界 «ok» 123"
    assert tok.decode(tok(tricky)["input_ids"]) == tricky


def test_rerun_skips_finished_training(trained, tmp_path: Path) -> None:
    folder, summary = trained
    run = RunDir(folder.parent, "test")
    config = TokenizerTrainConfig(
        inputs=[folder.parent.parent / "corpus"], vocab_size=2000, tensor_parallel=2
    )
    assert train_tokenizer(config, run) == summary
    assert run.manifest["steps"]["tokenizer"]["skipped"] is True


def test_padded_vocab_size() -> None:
    assert padded_vocab_size(250_680, tensor_parallel=4) == 250_880  # BLOOM's embedding
    assert padded_vocab_size(250_680) == 250_752
    assert padded_vocab_size(8000, 2) == 8192


def test_alpha_sampling_flattens_language_shares() -> None:
    assert alpha_weights({"en": 900, "yo": 100}, 1.0) == pytest.approx({"en": 0.9, "yo": 0.1})
    assert alpha_weights({"en": 900, "yo": 100}, 0.0) == pytest.approx({"en": 0.5, "yo": 0.5})
    grouped = {"en": ["a" * 100] * 9, "yo": ["b" * 100]}
    sample, stats = balanced_sample(grouped, alpha=0.0, budget_bytes=None, seed=0)
    assert stats["yo"]["sampled_bytes"] == stats["en"]["sampled_bytes"] == 500
    assert stats["yo"]["repeat"] == 5.0 and sample.count("b" * 100) == 5


@pytest.mark.parametrize(
    ("line", "problem"),
    [('{"text": "hi"}', "'language'"), ('["x"]', "JSON object"), ("{bad", "not valid JSON")],
)
def test_bad_record_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    shard = tmp_path / "bad.jsonl"
    shard.write_text('{"text": "ok", "language": "en"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"bad\.jsonl:2: .*{problem}"):
        list(read_records(shard))


def test_missing_corpus_is_named(tmp_path: Path) -> None:
    config = TokenizerTrainConfig(inputs=[tmp_path / "nowhere"], vocab_size=1000)
    with pytest.raises(CorpusError, match="nowhere: corpus input not found"):
        train_tokenizer(config, RunDir(tmp_path / "run", "test", config))


def test_fairness_report_balanced_beats_unbalanced(shared_data: Path, tmp_path: Path) -> None:
    """A ROOTS-like skew (English 701 sentences … the last language 22) trained with alpha=0.3
    and alpha=1.0: on the held-out, aligned dev rows balancing meets the goals (max premium
    ≤2×, median ≤1.3×) and lowers the premium of every language."""
    sib200 = shared_data / "sib200"
    rows = []
    for rank, lang in enumerate(language_codes()):
        for row in read_tsv(sib200 / lang / "train.tsv")[: int(701 / (rank + 1))]:
            rows.append((f"{lang}-{row['index_id']}", lang, row["text"]))
    write_shard(tmp_path / "corpus" / "skewed.jsonl.zst", rows)
    folders = {}
    for alpha in (0.3, 1.0):
        config = TokenizerTrainConfig(inputs=[tmp_path / "corpus"], vocab_size=4000, alpha=alpha)
        train_tokenizer(config, RunDir(tmp_path / f"alpha{alpha}", "test", config))
        folders[alpha] = tmp_path / f"alpha{alpha}" / "tokenizer"
    out = tmp_path / "report"
    printed = invoke("data", "tokenizer", "report", folders[0.3], "--baseline", folders[1.0],
                     "--sib200", sib200, "--run-dir", out)  # fmt: skip
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["sentences_per_language"] == 99
    assert report["summary"]["meets_max_goal"] and report["summary"]["meets_median_goal"]
    assert not report["baseline_summary"]["meets_median_goal"]
    assert report["better_than_baseline"] == 45 and report["worse_or_equal"] == []
    english = report["languages"]["en"]
    assert english["premium"] == 1.0 and 0.2 < english["tokens_per_byte"] < 0.5
    assert report["languages"]["zhs"]["tokens_per_word"] is None  # no spaces between words
    assert report["languages"]["sw"]["tokens_per_word"] > 1.0
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 46 and "baseline premium" in table[0]
    assert (out / "premium.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
