"""Peak memory of ``bloomkit data run`` on 1× vs 10× input: does it stay flat?

    .venv/bin/python benchmarks/corpus_memory.py ../shared/data

Input: SIB-200 ``train`` sentences of all 46 languages grouped into 5-sentence documents. The
1× corpus is one grouping; the 10× corpus is 10 different random groupings of the same
sentences (new ids, different documents, so exact and MinHash dedup do not collapse them).
Each grouping is written as 2 JSONL shards of equal size, so the per-shard work is the same
at both scales and only the number of shards grows.

``bloomkit data run`` runs as a subprocess (2 workers) with the sample catalogue. Its process
tree is sampled every ``--interval`` seconds with psutil: peak RSS of the whole tree (main
process + shard workers) and of the main process alone, split by phase (shards, then the
dedup stage, which starts when ``RUN/dedup/`` appears). With ``--no-minhash`` a third run
(10×, ``steps.dedup.minhash=null``) shows how much of the growth is MinHash's.
Writes ``benchmarks/results/corpus_memory.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.sib200 import documents

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "corpus_memory.md"
BLOOMKIT = Path(sys.executable).with_name("bloomkit")
MIB = 1 << 20


def build_input(shared_data: Path, folder: Path, scale: int) -> tuple[int, int]:
    """``scale`` groupings × 2 shards of JSONL; return (documents, characters)."""
    folder.mkdir(parents=True)
    docs = chars = 0
    by_lang = {
        lang: documents(shared_data, lang, "train", shuffles=scale - 1, seed=7)
        for lang in language_codes()
    }
    for k in range(scale):
        rows = []
        for lang, texts in by_lang.items():
            per = len(texts) // scale
            rows += [
                {"id": f"{lang}/g{k}/{n}", "text": t}
                for n, t in enumerate(texts[k * per : (k + 1) * per])
            ]
        half = len(rows) // 2
        for part, chunk in enumerate((rows[:half], rows[half:])):
            with open(folder / f"g{k:02d}-{part}.jsonl", "w", encoding="utf-8") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk)
        docs += len(rows)
        chars += sum(len(r["text"]) for r in rows)
    return docs, chars


def write_config(path: Path, inputs: Path, minhash: bool) -> None:
    lines = [
        f"catalogue: {ROOT / 'bloomkit' / 'sample' / 'catalogue.yaml'}",
        f"input_root: {inputs}",
        "inputs:",
        "  - {source: sib200-flores, paths: ['*.jsonl']}",
        "steps:",
        "  dedup: {exact: true" + ("}" if minhash else ", minhash: null}"),
        "output: {format: jsonl.zst, docs_per_shard: 10000}",
        "executor: {workers: 2}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(RSS of the process and all its descendants, RSS of the process alone), bytes."""
    try:
        own = proc.memory_info().rss
    except psutil.Error:
        return 0, 0
    total = own
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total, own


def measure(config: Path, run_dir: Path, interval: float) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BLOOMKIT), "data", "run", str(config), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    ps = psutil.Process(proc.pid)
    peak = {"shards": [0, 0], "dedup": [0, 0]}
    dedup_started = None
    while proc.poll() is None:
        total, own = tree_rss(ps)
        if dedup_started is None and (run_dir / "dedup").exists():
            dedup_started = time.perf_counter() - start
        phase = peak["dedup" if dedup_started is not None else "shards"]
        phase[0], phase[1] = max(phase[0], total), max(phase[1], own)
        time.sleep(interval)
    output = proc.stdout.read().decode("utf-8", errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"bloomkit data run failed ({proc.returncode}):\n{output[-3000:]}")
    seconds = time.perf_counter() - start
    return {"peak": peak, "seconds": seconds, "dedup_at": dedup_started}


def run(shared_data: Path, args: argparse.Namespace) -> str:
    work = Path(tempfile.mkdtemp(prefix="corpus_memory_"))
    cases = [(1, True), (10, True)] + ([(10, False)] if args.no_minhash else [])
    rows = []
    try:
        sizes = {s: build_input(shared_data, work / f"in{s}", s) for s in (1, 10)}
        for scale, minhash in cases:
            config = work / f"x{scale}-{minhash}.yaml"
            write_config(config, work / f"in{scale}", minhash)
            result = measure(config, work / f"run{scale}-{minhash}", args.interval)
            rows.append((scale, minhash, *sizes[scale], result))
            print(scale, minhash, result, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][4]["peak"]
    command = f"{Path(sys.executable).name} benchmarks/corpus_memory.py {shared_data}" + (
        " --no-minhash" if args.no_minhash else ""
    )
    out = [
        "# Peak memory of `bloomkit data run`, 1× vs 10× input",
        "",
        f"Command: `.venv/bin/{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs,"
        f" {psutil.virtual_memory().total / (1 << 30):.0f} GiB, Python"
        f" {platform.python_version()}; `executor.workers: 2`, output jsonl.zst, default steps"
        f" (normalise, LID, quality, PII, exact + MinHash dedup). RSS sampled every"
        f" {args.interval} s with psutil.  ",
        "Input: SIB-200 train sentences, 46 languages, 5-sentence documents; 10× = 10 different"
        " random groupings of the sentences (new ids and different documents, so dedup keeps"
        " them), 2 shards per grouping.",
        "",
        "| input | MinHash | documents | characters | wall s | dedup stage s"
        " | peak RSS, tree, shard phase | peak RSS, main process, dedup phase | tree peak / 1× |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, minhash, docs, chars, r in rows:
        peak = r["peak"]
        tree = max(peak["shards"][0], peak["dedup"][0])
        ratio = tree / max(base["shards"][0], base["dedup"][0])
        out.append(
            f"| {scale}× | {'on' if minhash else 'off'} | {docs:,} | {chars:,} |"
            f" {r['seconds']:.1f} | {r['seconds'] - r['dedup_at']:.1f} |"
            f" {peak['shards'][0] / MIB:,.0f} MiB | {peak['dedup'][1] / MIB:,.0f} MiB |"
            f" {ratio:.2f} |"
        )
    (_, _, docs1, _, r1), (_, _, docs10, _, r10) = rows[:2]
    growth = (r10["peak"]["dedup"][1] - r1["peak"]["dedup"][1]) / (docs10 - docs1)
    out += [
        "",
        f"Dedup phase, main process, 1× → 10×: {growth:,.0f} bytes per extra document.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path, help="folder holding sib200/<lang>/train.tsv")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period, s")
    parser.add_argument("--no-minhash", action="store_true", help="also 10× without MinHash")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args.shared_data.resolve(), args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
