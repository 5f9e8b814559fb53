"""`bloomkit data tokenize` vs Megatron-LM's own ``tools/preprocess_data.py``: speed, same tokens.

    .venv/bin/python benchmarks/tokenize_vs_megatron.py ../shared/data \\
        --peer ../shared/peers/megatron_preprocess --repeat 8 --workers 2

Same JSONL (SIB-200 ``train`` sentences of all 46 languages, 5 a document, repeated
``--repeat`` times), same tokenizer (a byte-level BPE trained here by bloomkit, ``--vocab``
tokens), same number of workers, one run each, each as its own command (interpreter start and
imports included, as a user runs them). Megatron writes one dataset in input order; bloomkit
one per language, so the check compares, language by language, Megatron's documents of that
language in input order with bloomkit's dataset: every token of every document must match.

Writes ``benchmarks/results/tokenize_vs_megatron.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from megatron.core.datasets.indexed_dataset import IndexedDataset

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.sample import read_tsv
from bloomkit.data_tooling.tokenizer.train import TokenizerTrainConfig, train_tokenizer
from bloomkit.rundir import RunDir

RESULTS = Path(__file__).parent / "results" / "tokenize_vs_megatron.md"
BIN = Path(sys.executable).parent


def write_corpus(sib200: Path, out: Path, repeat: int) -> list[str]:
    """Pipeline-style JSONL of 5-sentence documents; returns each line's language."""
    docs = []
    for lang in language_codes():
        rows = read_tsv(sib200 / lang / "train.tsv")
        for i in range(0, len(rows), 5):
            docs.append((lang, " ".join(r["text"] for r in rows[i : i + 5])))
    languages = []
    with open(out, "w", encoding="utf-8") as handle:
        for copy in range(repeat):
            for n, (lang, text) in enumerate(docs):
                record = {"id": f"{copy}-{n}", "text": text, "source": "sib200",
                          "language": lang, "metadata": {}}  # fmt: skip
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                languages.append(lang)
    return languages


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def same_tokens(megatron: Path, bloomkit: Path, languages: list[str]) -> int:
    """Compare every document; return the number of tokens compared."""
    ref = IndexedDataset(str(megatron))
    assert len(ref) == len(languages), (len(ref), len(languages))
    tokens = 0
    for lang in sorted(set(languages)):
        ours = IndexedDataset(str(bloomkit / lang))
        theirs = [i for i, code in enumerate(languages) if code == lang]
        assert len(ours) == len(theirs), (lang, len(ours), len(theirs))
        for mine, index in enumerate(theirs):
            a, b = ours[mine], ref[index]
            assert a.dtype == b.dtype and np.array_equal(a, b), (lang, index)
            tokens += len(a)
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--peer", type=Path, default=Path("../shared/peers/megatron_preprocess"))
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: tmp).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tokenize-bench-"))
    sib200 = args.shared_data.resolve() / "sib200"
    corpus = work / "corpus.jsonl"
    languages = write_corpus(sib200, corpus, args.repeat)
    config = TokenizerTrainConfig(inputs=[corpus], vocab_size=args.vocab, alpha=0.3)
    train_tokenizer(config, RunDir(work / "tok", "bench", config))
    tokenizer = work / "tok" / "tokenizer"

    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{BIN}:{os.environ['PATH']}"}
    peer = [str(args.peer.resolve() / "run.sh"), str(corpus), str(work / "megatron" / "out"),
            str(tokenizer), str(args.workers)]  # fmt: skip
    megatron_s = timed(["bash", *peer], env)

    cfg = work / "tokenize.yaml"
    cfg.write_text(json.dumps({"inputs": [str(corpus)], "tokenizer": str(tokenizer),
                               "workers": args.workers}))  # fmt: skip
    bloomkit_s = timed([str(BIN / "bloomkit"), "data", "tokenize", str(cfg), "--run-dir",
                        str(work / "bloomkit")])  # fmt: skip
    summary = json.loads((work / "bloomkit" / "manifest.json").read_text())["steps"]["merge"]

    tokens = same_tokens(work / "megatron" / "out_text_document", work / "bloomkit" / "datasets",
                         languages)  # fmt: skip
    docs = len(languages)
    rows = [
        ("Megatron-LM preprocess_data.py", megatron_s),
        ("bloomkit data tokenize", bloomkit_s),
    ]
    lines = [
        "# bloomkit data tokenize vs Megatron-LM preprocess_data.py",
        "",
        f"`{' '.join(sys.argv)}`",
        "",
        f"- input: {docs:,} documents ({corpus.stat().st_size / 1e6:.1f} MB JSONL, 46 languages),"
        f" {tokens:,} tokens incl. EOD; tokenizer: byte-level BPE, {args.vocab} tokens",
        f"- workers: {args.workers} each; machine: {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} cores; wall clock of the whole command",
        "- token streams: identical, every document compared"
        f" ({len(summary['summary']['datasets'])} bloomkit datasets vs 1 Megatron dataset)",
        "",
        "| tool | seconds | docs/s | tokens/s |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(
            f"| {name} | {seconds:.1f} | {docs / seconds:,.0f} | {tokens / seconds:,.0f} |"
        )
    lines += ["", f"Speed-up (docs/s, tokens/s): **{megatron_s / bloomkit_s:.2f}×**", ""]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
