"""`bloomkit data tokenize` vs Megatron-LM's own ``tools/preprocess_data.py``: speed, same tokens.

    .venv/bin/python benchmarks/tokenize_vs_megatron.py ../shared/data \\
        --peer ../shared/peers/megatron_preprocess --repeat 8 --workers 2 --rounds 3

Same JSONL (SIB-200 ``train`` sentences of all 46 languages, 5 a document, repeated
``--repeat`` times), same tokenizer (a byte-level BPE trained here by bloomkit, ``--vocab``
tokens), same number of workers, each run as its own command (interpreter start and imports
included, as a user runs them), ``--rounds`` rounds alternating the order. bloomkit runs twice:
as configured by default (tiktoken's encoder, checked to give the same ids) and with
``encoder: tokenizers`` (the Rust encoder Megatron calls too), which shows what each part
of the speed-up comes from. Per
tool: best and median wall clock, CPU seconds (user + system of the command and its workers:
what a shared machine's load inflates least) and steady-state docs/s (documents over the
encoding phase, as each tool reports it). Megatron writes one dataset in input order;
bloomkit one per language, so the check compares, language by language, Megatron's documents
of that language in input order with bloomkit's dataset: every token of every document must
match.

Writes ``benchmarks/results/tokenize_vs_megatron.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
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


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, CPU seconds (with its children) and output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, check=True, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout


def steady_docs_per_s(output: str, pattern: str) -> float:
    """The last docs/s figure a tool printed: ``Processed N documents (X docs/s, ...)`` from
    preprocess_data.py, the ``docs_per_second`` row of `bloomkit data tokenize`."""
    rates = re.findall(pattern, output)
    if not rates:
        raise ValueError(f"no docs/s ({pattern}) in the output:\n{output[-2000:]}")
    return float(rates[-1].replace(",", ""))


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
    parser.add_argument("--rounds", type=int, default=3, help="Runs per tool, order alternating.")
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
    configs = {}
    for tool, encoder in (("bloomkit", "auto"), ("bloomkit-tokenizers", "tokenizers")):
        configs[tool] = work / f"{tool}.yaml"
        config_json = {"inputs": [str(corpus)], "tokenizer": str(tokenizer),
                       "workers": args.workers, "encoder": encoder}  # fmt: skip
        configs[tool].write_text(json.dumps(config_json))
    docs = len(languages)
    runs: dict[str, list[tuple[float, float, float]]] = {t: [] for t in ("megatron", *configs)}
    encoders: dict[str, str] = {}
    load_before = os.getloadavg()[0]
    for round_ in range(args.rounds):
        for tool in list(runs)[:: 1 if round_ % 2 == 0 else -1]:
            if tool == "megatron":
                wall, cpu, output = timed(["bash", *peer], env)
                steady = steady_docs_per_s(output, r"Processed \d+ documents \(([\d.]+) docs/s")
            else:
                run_dir = work / f"{tool}-{round_}"
                shutil.rmtree(run_dir, ignore_errors=True)  # a leftover run would be resumed
                argv = [str(BIN / "bloomkit"), "data", "tokenize", str(configs[tool]),
                        "--run-dir", str(run_dir)]  # fmt: skip
                wall, cpu, output = timed(argv)
                steady = steady_docs_per_s(output, r"docs_per_second\W+([\d,.]+(?:e[+-]?\d+)?)")
                encoders[tool] = re.findall(r"encoder\W+(\w+)", output)[-1]
                tokens = same_tokens(work / "megatron" / "out_text_document",
                                     run_dir / "datasets", languages)  # fmt: skip
            runs[tool].append((wall, cpu, steady))
            print(f"round {round_ + 1} {tool}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    load_after = os.getloadavg()[0]
    summary = json.loads((run_dir / "manifest.json").read_text())["steps"]["merge"]
    best = {tool: min(r[0] for r in rows) for tool, rows in runs.items()}
    median = {tool: statistics.median(r[0] for r in rows) for tool, rows in runs.items()}
    cpu = {tool: statistics.median(r[1] for r in rows) for tool, rows in runs.items()}
    steady = {tool: max(r[2] for r in rows) for tool, rows in runs.items()}
    lines = [
        "# bloomkit data tokenize vs Megatron-LM preprocess_data.py",
        "",
        f"`{' '.join(sys.argv)}`",
        "",
        f"- input: {docs:,} documents ({corpus.stat().st_size / 1e6:.1f} MB JSONL, 46 languages),"
        f" {tokens:,} tokens incl. EOD; tokenizer: byte-level BPE, {args.vocab} tokens",
        f"- workers: {args.workers} each; machine: {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} cores, 1-min load average {load_before:.1f} before and"
        f" {load_after:.1f} after; {args.rounds} rounds, order alternating",
        "- token streams: identical, every document of every bloomkit run compared"
        f" ({len(summary['summary']['datasets'])} bloomkit datasets vs 1 Megatron dataset)",
        "- encoders: " + ", ".join(f"{tool}: {name}" for tool, name in encoders.items()),
        "",
        "| tool | best s | median s | docs/s (best) | tokens/s (best) | CPU s (median) |"
        " steady docs/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"megatron": "Megatron-LM preprocess_data.py", "bloomkit": "bloomkit data tokenize",
             "bloomkit-tokenizers": "bloomkit data tokenize, `encoder: tokenizers`"}  # fmt: skip
    for tool, name in names.items():
        lines.append(
            f"| {name} | {best[tool]:.1f} | {median[tool]:.1f} | {docs / best[tool]:,.0f} |"
            f" {tokens / best[tool]:,.0f} | {cpu[tool]:.1f} | {steady[tool]:,.0f} |"
        )
    lines.append("")
    for tool in configs:
        ratio = {
            "best wall": best["megatron"] / best[tool],
            "median wall": median["megatron"] / median[tool],
            "CPU seconds": cpu["megatron"] / cpu[tool],
            "steady-state docs/s": steady[tool] / steady["megatron"],
        }
        lines += [f"Speed-up, {names[tool]} over Megatron: "
                  + ", ".join(f"{k} **{v:.2f}×**" for k, v in ratio.items()), ""]  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
