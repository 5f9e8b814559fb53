"""Wall time and scores: ``bloomkit eval run`` vs the plain ``lm_eval`` command it records.

Same model, same tasks, same data, one process each, alternated ``--repeats`` times; the
median wall time of each (process start to exit, model load and task indexing included) and
whether every score is identical. Writes ``benchmarks/results/eval_vs_lm_eval.md``::

    .venv/bin/python benchmarks/eval_vs_lm_eval.py --data-dir ../shared/data/sib200 \
        --suite bloom46 --limit 10 --repeats 3

Without ``--model`` it builds the tests' tiny random BLOOM (2 layers, hidden 64).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = REPO / "benchmarks" / "results" / "eval_vs_lm_eval.md"


def tiny_model(folder: Path, data_dir: Path) -> Path:
    spec = importlib.util.spec_from_file_location("eval_conftest", REPO / "tests/eval/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_bloom(folder, data_dir, seed=0)


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/sib200")
    parser.add_argument("--suite", default="bloom46")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    model = opts.model or tiny_model(work / "model", opts.data_dir)
    ours = [
        str(BIN / "bloomkit"), "-q", "eval", "run", "--model", str(model),
        "--suite", opts.suite, "--limit", str(opts.limit), "--data-dir", str(opts.data_dir),
    ]  # fmt: skip
    times: dict[str, list[float]] = {"bloomkit": [], "lm_eval": []}
    theirs: list[str] = []
    for i in range(opts.repeats):
        run_dir = work / f"run-{i}"  # a fresh run dir: no skipped step
        times["bloomkit"].append(timed([*ours, "--run-dir", str(run_dir)]))
        record = json.loads((run_dir / "results.json").read_text())
        theirs = [str(BIN / "lm_eval"), *shlex.split(record["provenance"]["reproduce"])[1:]]
        times["lm_eval"].append(timed([*theirs, "--output_path", str(work / f"lm-{i}")]))
    (lm_path,) = (work / f"lm-{opts.repeats - 1}").rglob("results_*.json")
    lm_results = json.loads(lm_path.read_text())["results"]
    mismatches = [
        (task, metric)
        for task, row in record["tasks"].items()
        for metric, score in row["metrics"].items()
        if lm_results[task][f"{metric},none"] != score["value"]
    ]
    compared = sum(len(row["metrics"]) for row in record["tasks"].values())
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["bloomkit"] / med["lm_eval"]
    command = shlex.join([sys.executable, *sys.argv]).replace(str(REPO) + "/", "")
    lines = [
        "# bloomkit eval run vs plain lm_eval",
        "",
        f"Same model, tasks and data; {opts.repeats} alternated runs each, median wall time of "
        "the whole process (imports, model load, task indexing, scoring, writing results).",
        "",
        "| | median s | runs (s) |",
        "|---|---:|---|",
        *(f"| {k} | {med[k]:.2f} | {', '.join(f'{t:.2f}' for t in v)} |" for k, v in times.items()),
        "",
        f"- wall-time ratio bloomkit / lm_eval: **{ratio:.3f}** (goal ≤ 1.05)",
        f"- scores compared: {compared} metric values over {len(record['tasks'])} tasks; "
        f"identical: **{not mismatches}** {mismatches[:5] if mismatches else ''}",
        f"- model: {'tiny random BLOOM (2 layers, hidden 64)' if not opts.model else model}; "
        f"suite {opts.suite}, limit {opts.limit}, data {opts.data_dir.name}",
        f"- machine: {platform.machine()}, {platform.processor() or '?'}, "
        f"{__import__('os').cpu_count()} CPUs, Python {platform.python_version()}, "
        f"lm-eval {record['provenance']['lm_eval_version']}",
        "- why bloomkit can be faster: for bloomkit-only tasks it builds lm-eval's TaskManager "
        "without lm-eval's ~15k built-in task index (`include_defaults=False`); scoring is the "
        "same `simple_evaluate` call. It also logs per-document values for paired tests.",
        "",
        "Reproduce:",
        "",
        f"    {command}",
        "",
        "The lm_eval command that was timed (from the record's provenance.reproduce):",
        "",
        f"    {shlex.join(theirs)} --output_path OUT".replace(str(work), "$WORK").replace(
            str(REPO) + "/", ""
        ),
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
