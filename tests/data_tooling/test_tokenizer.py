"""Tokenizer training: BLOOM special tokens, byte-exact round trip in 46 languages, balancing
by language and by script, and the fairness report (script-balanced vs language-balanced vs
unbalanced on the ROOTS-like skewed corpus of ``benchmarks/tokenizer_fairness.py``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

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
    script_of,
    script_weights,
)
from bloomkit.data_tooling.tokenizer.report import aligned_rows, measure, versus_baseline
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
    assert summary["balance"] == "script"  # the default: the demo config does not set it
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
    sample, stats = balanced_sample(grouped, 0.0, None, seed=0, balance="language")
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


def test_script_weights_balance_scripts_then_languages() -> None:
    """alpha 0.5: Latn (en 900 + fr 100 bytes) √1000, Hans (zhs 250) √250, code (python 250)
    √250, so 1/2, 1/4, 1/4; within Latn √900 : √100 = 3 : 1, so en 3/8 and fr 1/8."""
    sizes = {"en": 900, "fr": 100, "zhs": 250, "python": 250}
    expected = {"en": 3 / 8, "fr": 1 / 8, "python": 1 / 4, "zhs": 1 / 4}
    assert script_weights(sizes, 0.5) == pytest.approx(expected)
    assert script_weights(sizes, 1.0) == pytest.approx(alpha_weights(sizes, 1.0))  # natural
    grouped = {lang: ["x" * 50] * (n // 50) for lang, n in sizes.items()}
    sample, stats = balanced_sample(grouped, 0.5, budget_bytes=1600, seed=0, balance="script")
    assert {k: v["sampled_bytes"] for k, v in stats.items()} == {
        "en": 600, "fr": 200, "python": 400, "zhs": 400,
    }  # fmt: skip
    assert stats["fr"]["repeat"] == 2.0 and len(sample) == 32


def test_script_groups_come_from_the_tables() -> None:
    assert [script_of(c) for c in ("en", "sw", "zhs", "zht", "ur", "as")] == [
        "Latn", "Latn", "Hans", "Hant", "Arab", "Beng",
    ]  # fmt: skip
    assert script_of("python") == script_of("java") == "code"
    assert script_of("unknown") == "unknown"  # what the language identifier could not place
    with pytest.raises(CorpusError, match=r"'de'.*tables/languages\.tsv.*balance: language"):
        script_of("de")


def test_unknown_language_stops_script_balancing_only(tmp_path: Path) -> None:
    rows = [("a", "en", "the cat sat " * 20), ("b", "de", "die Katze " * 20)]
    shard = write_shard(tmp_path / "corpus" / "de.jsonl.zst", rows)
    config = TokenizerTrainConfig(inputs=[shard], vocab_size=300)
    with pytest.raises(CorpusError, match="language 'de' has no script"):
        train_tokenizer(config, RunDir(tmp_path / "script", "test", config))
    config = TokenizerTrainConfig(inputs=[shard], vocab_size=300, balance="language")
    summary = train_tokenizer(config, RunDir(tmp_path / "language", "test", config))
    assert set(summary["languages"]) == {"en", "de"}


@pytest.fixture(scope="module")
def fairness_bench() -> ModuleType:
    script = REPO / "benchmarks" / "tokenizer_fairness.py"
    spec = importlib.util.spec_from_file_location("tokenizer_fairness", script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))  # as `python benchmarks/tokenizer_fairness.py` has
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(script.parent))
    return module


def test_fairness_report_script_balancing_helps_every_language(
    shared_data: Path, tmp_path: Path, fairness_bench: ModuleType
) -> None:
    """The benchmark's ROOTS-like skew (English 701 sentences, zhs 379, … 7 for the rarest),
    vocabulary 4,000: balanced by script, the held-out aligned dev rows meet the goals (max
    premium ≤2×, median ≤1.3×) and every language's premium is lower than unbalanced; balanced
    by language (BLOOM's recipe), Chinese is left worse off, alone in its script."""
    sib200 = shared_data / "sib200"
    corpus = fairness_bench.write_corpus(
        fairness_bench.skewed_rows(sib200, floor=7), tmp_path / "corpus" / "skewed.jsonl.zst"
    )
    folders = {}
    for name, (balance, alpha) in fairness_bench.DESIGNS.items():
        config = TokenizerTrainConfig(
            inputs=[corpus], vocab_size=4000, alpha=alpha, balance=balance
        )
        train_tokenizer(config, RunDir(tmp_path / name, "test", config))
        folders[name] = tmp_path / name / "tokenizer"
    out = tmp_path / "report"
    printed = invoke("data", "tokenizer", "report", folders["script"], "--baseline",
                     folders["unbalanced"], "--sib200", sib200, "--run-dir", out)  # fmt: skip
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["sentences_per_language"] == 99
    assert report["summary"]["meets_max_goal"] and report["summary"]["meets_median_goal"]
    assert not report["baseline_summary"]["meets_max_goal"]
    assert not report["baseline_summary"]["meets_median_goal"]
    assert report["better_than_baseline"] == 45 and report["worse_or_equal"] == []
    english = report["languages"]["en"]
    assert english["premium"] == 1.0 and 0.2 < english["tokens_per_byte"] < 0.6
    assert english["tokens"] > report["baseline_languages"]["en"]["tokens"]  # the price
    assert report["languages"]["zhs"]["tokens_per_word"] is None  # no spaces between words
    assert report["languages"]["sw"]["tokens_per_word"] > 1.0
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 46 and "baseline premium" in table[0]
    assert (out / "premium.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dev = aligned_rows(sib200, "dev")
    by_language = versus_baseline(
        measure(folders["language"], dev), measure(folders["unbalanced"], dev)
    )
    assert by_language["worse_or_equal"] == ["zhs"]
