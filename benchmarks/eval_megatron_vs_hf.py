"""Scores and wall time: the megatron-core adapter (``--backend megatron``) vs the HF path.

The same tiny random BLOOM, once as a Hugging Face folder (lm-eval's ``hf`` model) and once
imported as a bloomkit checkpoint, scored by ``bloomkit eval run`` on the same tasks and data:
in the lm-eval process (TP1) and split over two tensor-parallel worker ranks (TP2). Reports
each run's wall time (process start to exit) and the largest score difference from the HF
path. Every run scores ``--batch-size`` requests per forward; the best wall time of
``--repeats`` rounds counts (the machine may be shared). Writes
``benchmarks/results/eval_megatron_vs_hf.md``::

    .venv/bin/python benchmarks/eval_megatron_vs_hf.py --suite bloom46 --limit 5 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval_vs_lm_eval import BIN, REPO, tiny_model

OUT = REPO / "benchmarks" / "results" / "eval_megatron_vs_hf.md"


def scored(argv: list[str], run_dir: Path) -> tuple[float, dict]:
    """Wall time of one ``bloomkit eval run`` and its results record."""
    start = time.perf_counter()
    subprocess.run([*argv, "--run-dir", str(run_dir)], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads((run_dir / "results.json").read_text())


def largest_difference(ours: dict, hf: dict) -> tuple[float, int, int]:
    """Max |Δ| over every metric value, and how many ``acc`` values are identical / compared."""
    worst, same, compared = 0.0, 0, 0
    for name, task in hf["tasks"].items():
        for metric, score in task["metrics"].items():
            mine = ours["tasks"][name]["metrics"][metric]["value"]
            worst = max(worst, abs(mine - score["value"]))
            if metric == "acc":
                same, compared = same + (mine == score["value"]), compared + 1
    return worst, same, compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/sib200")
    parser.add_argument("--suite", default="bloom46")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8, help="For all three runs.")
    parser.add_argument("--repeats", type=int, default=2, help="Rounds; the best wall counts.")
    opts = parser.parse_args()
    from bloomkit.pretraining.convert import import_hf
    from bloomkit.pretraining.parallel import ParallelConfig

    work = Path(tempfile.mkdtemp(prefix="eval-megatron-bench-"))
    model = tiny_model(work / "model", opts.data_dir)
    checkpoint = import_hf(str(model), work / "ckpt", ParallelConfig())
    common = [str(BIN / "bloomkit"), "-q", "eval", "run", "--suite", opts.suite,
              "--limit", str(opts.limit), "--data-dir", str(opts.data_dir),
              "--set", f"batch_size={opts.batch_size}"]  # fmt: skip
    megatron = [*common, "--backend", "megatron", "--model", str(checkpoint),
                "--tokenizer", str(model)]  # fmt: skip
    runs = {
        "hf": [*common, "--model", str(model)],
        "megatron TP1": megatron,
        "megatron TP2": [*megatron, "--set", "tensor_parallel=2"],
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    records = {}
    for round_ in range(opts.repeats):  # the three in turn: load drift hits each alike
        for name, argv in runs.items():  # a fresh run folder: a finished one is not rerun
            seconds, records[name] = scored(argv, work / f"{name.replace(' ', '-')}-{round_}")
            walls[name].append(seconds)
    hf_seconds = min(walls["hf"])
    rows = []
    for name, record in records.items():
        worst, same, compared = largest_difference(record, records["hf"])
        best, each = min(walls[name]), ", ".join(f"{w:.1f}" for w in walls[name])
        rows.append(f"| {name} | {best:.1f} | {each} | {best / hf_seconds:.2f} | {worst:.2e} | "
                    f"{same} / {compared} |")  # fmt: skip
    tasks = len(records["hf"]["tasks"])
    command = shlex.join([sys.executable, *sys.argv]).replace(str(REPO) + "/", "")
    lines = [
        "# megatron-core adapter vs the Hugging Face path (`bloomkit eval run`)",
        "",
        f"Same tiny random BLOOM (2 layers, hidden 64), suite {opts.suite}, limit {opts.limit} "
        f"({tasks} tasks), data {opts.data_dir.name}, batch size {opts.batch_size} in every run; "
        f"whole-process wall time, best of {opts.repeats} rounds of the three runs in turn.",
        "",
        "| backend | wall s (best) | each round | × HF | max abs score difference | "
        "identical acc |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        f"- both paths sort requests longest first and right-pad {opts.batch_size} per forward; "
        "at TP2 each batch is one round trip to the worker ranks through a queue.",
        "- wall time includes each process's fixed costs (imports, loading the model; at TP2 "
        "spawning two ranks that share the CPUs with lm-eval), a large share on a tiny model.",
        "",
        "Reproduce:",
        "",
        f"    {command}",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
