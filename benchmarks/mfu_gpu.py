"""Model FLOPs utilisation of the bloomkit trainer at the bloom-1b7 and bloom-7b1 shapes, one node.

Each shape trains ``--steps`` steps in bf16 on every GPU of this machine (TP from ``--tp``,
DP = GPUs / TP; megatron-core's distributed optimizer), on tiny data (the shipped sample as
UTF-8 bytes; the model keeps BLOOM's 250,880-token vocabulary), saving no checkpoint, and
reports the steps after ``--warmup``:

    tokens_per_s = global_batch × seq_length × timed steps / their seconds
    flops_per_token = 6·N + 12·L·h·s      (PaLM appendix B; N = matmul weights, LM head included)
    MFU = flops_per_token × tokens_per_s / (GPUs × peak bf16 dense FLOP/s of one GPU)

Goal: ≥ 45% on H100 at bloom-1b7 (Megatron-LM reaches about 41% there). Writes
``benchmarks/results/mfu_gpu.md`` only after a real measurement; refuses without CUDA::

    .venv/bin/python benchmarks/mfu_gpu.py --steps 8 --warmup 3
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "mfu_gpu.md"
SHAPES = {"bloom-1b7": {"tp": 1, "micro_batch": 4}, "bloom-7b1": {"tp": 2, "micro_batch": 2}}
"""Default layout per shape on one node of 80 GB GPUs (``--tp``/``--micro-batch`` override)."""


def _per_shape(parser: argparse.ArgumentParser, values: list[str], flag: str) -> dict[str, int]:
    """``["bloom-7b1=4", …]`` → ``{"bloom-7b1": 4}``, refusing unknown shapes."""
    parsed = {}
    for item in values:
        shape, _, number = item.partition("=")
        if shape not in SHAPES or not number.isdigit() or int(number) < 1:
            parser.error(f"{flag} {item!r}: expected SHAPE=N with SHAPE in {list(SHAPES)}")
        parsed[shape] = int(number)
    return parsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--steps", type=int, default=8, help="training steps per shape")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of timing")
    parser.add_argument("--seq-length", type=int, default=2048)
    parser.add_argument("--global-batch", type=int, default=256, help="sequences per step")
    parser.add_argument("--tp", action="append", default=[], metavar="SHAPE=N")
    parser.add_argument("--micro-batch", action="append", default=[], metavar="SHAPE=N")
    parser.add_argument("--gpus", type=int, default=None, help="default: every visible GPU")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="bf16 dense peak of one GPU (default: by device name)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args(argv)
    if opts.warmup >= opts.steps:
        parser.error(f"--warmup {opts.warmup} leaves none of --steps {opts.steps} to time")
    tp = _per_shape(parser, opts.tp, "--tp")
    micro = _per_shape(parser, opts.micro_batch, "--micro-batch")
    opts.layouts = {
        shape: {"tp": tp.get(shape, d["tp"]), "micro_batch": micro.get(shape, d["micro_batch"])}
        for shape, d in SHAPES.items()
    }
    return opts


def flops_per_token(shape: str, seq_length: int) -> float:
    """Training FLOPs per token of a preset (:meth:`BloomModelConfig.flops_per_token`)."""
    from bloomkit.pretraining.model.config import BloomModelConfig

    return BloomModelConfig(preset=shape).flops_per_token(seq_length)


def mfu(tokens_per_s: float, flops: float, gpus: int, peak_tflops: float) -> float:
    """Model FLOPs utilisation, 0–1 (see the module doc)."""
    return flops * tokens_per_s / (gpus * peak_tflops * 1e12)


def require_cuda() -> tuple[str, int]:
    """The GPU's name and count; without CUDA, exit (status 1) saying why nothing ran."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            "mfu_gpu.py measures GPU MFU and needs CUDA, but torch "
            f"{torch.__version__} sees no CUDA device here; nothing measured, "
            f"{OUT.relative_to(REPO)} left as it is"
        )
    return torch.cuda.get_device_name(), torch.cuda.device_count()


def peak_of(device: str, given: float | None) -> float:
    """``--peak-tflops``, else the device's bf16 dense peak from the trainer's table."""
    from bloomkit.pretraining.metrics import PEAK_TFLOPS

    peak = given or next((v for k, v in PEAK_TFLOPS.items() if k in device), None)
    if peak is None:
        raise SystemExit(f"no bf16 peak known for {device!r}: give --peak-tflops")
    return peak


def train_config(shape: str, opts: argparse.Namespace, gpus: int) -> Any:
    """The bloomkit config of one measurement."""
    from bloomkit.config import validate
    from bloomkit.pretraining.train import PretrainConfig

    layout = opts.layouts[shape]
    if gpus % layout["tp"]:
        raise SystemExit(f"{shape}: {gpus} GPUs do not split into tensor_parallel {layout['tp']}")
    return validate(
        PretrainConfig,
        {
            "model": {"preset": shape, "seq_length": opts.seq_length},
            "parallel": {"tensor_parallel": layout["tp"], "data_parallel": gpus // layout["tp"]},
            "data": {"byte_corpus": str(REPO / "bloomkit" / "sample")},
            "optim": {"lr": 1e-4, "warmup_steps": 1},
            "train": {"steps": opts.steps, "micro_batch_size": layout["micro_batch"],
                      "global_batch_size": opts.global_batch, "bf16": True, "eval_batches": 0,
                      "tensorboard": False, "log_interval": 1},
            "checkpoint": {"save": False},
        },
    )  # fmt: skip


def timed(rows: list[dict[str, Any]], warmup: int, tokens_per_step: int) -> dict[str, float]:
    """Tokens/s and step time over the rows after the first ``warmup`` steps."""
    kept = rows[warmup:]
    seconds = sum(r["step_s"] for r in kept)
    return {
        "tokens_per_s": tokens_per_step * len(kept) / seconds,
        "step_s": seconds / len(kept),
        "memory_gib": max(r["memory_gib"] or 0.0 for r in kept),
    }


def measure(shape: str, opts: argparse.Namespace, gpus: int, peak: float) -> dict[str, Any]:
    from bloomkit.pretraining.pretrain import pretrain
    from bloomkit.rundir import RunDir

    config = train_config(shape, opts, gpus)
    run = RunDir(Path(tempfile.mkdtemp(prefix=f"mfu-{shape}-")), "bench mfu", config)
    summary = pretrain(config, run)
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    result = timed(rows, opts.warmup, opts.global_batch * opts.seq_length)
    flops = flops_per_token(shape, opts.seq_length)
    result.update(
        shape=shape, layout=summary["layout"], micro_batch=opts.layouts[shape]["micro_batch"],
        parameters=summary["parameters"], flops_per_token=flops,
        tflops_per_gpu=flops * result["tokens_per_s"] / gpus / 1e12,
        mfu=mfu(result["tokens_per_s"], flops, gpus, peak), final_loss=summary["final_loss"],
    )  # fmt: skip
    return result


def results_markdown(
    results: list[dict[str, Any]], *, device: str, gpus: int, peak: float, opts: argparse.Namespace,
    command: str, versions: str,
) -> str:  # fmt: skip
    lines = [
        "# GPU MFU of the bloomkit trainer (one node)",
        "",
        f"{gpus} × {device} (bf16 dense peak {peak:g} TFLOPs each), bf16, sequence length "
        f"{opts.seq_length}, global batch {opts.global_batch}, {opts.steps} steps of which the "
        f"first {opts.warmup} are not timed; tiny data (the shipped sample as bytes), no "
        "checkpoint saved.",
        "",
        "| shape | layout | micro-batch | parameters | tokens/s | step s | TFLOPs/GPU | MFU "
        "| peak memory GiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['shape']} | {r['layout']} | {r['micro_batch']} | {r['parameters']:,} | "
            f"{r['tokens_per_s']:,.0f} | {r['step_s']:.2f} | {r['tflops_per_gpu']:.1f} | "
            f"**{100 * r['mfu']:.1f}%** | {r['memory_gib']:.1f} |"
        )
    lines += [
        "",
        "- MFU = flops_per_token × tokens/s ÷ (GPUs × peak); flops_per_token = 6·N + 12·L·h·s "
        "(PaLM appendix B, N = matmul weights with the LM head, causal mask not discounted).",
        "- goal: ≥ 45% at bloom-1b7 on H100 (Megatron-LM: about 41%).",
        f"- {versions}",
        "",
        "Reproduce:",
        "",
        f"    {command}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    device, visible = require_cuda()
    import torch

    gpus = opts.gpus or visible
    peak = peak_of(device, opts.peak_tflops)
    results = [measure(shape, opts, gpus, peak) for shape in opts.shapes]
    command = shlex.join([sys.executable, *sys.argv]).replace(str(REPO) + "/", "")
    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    text = results_markdown(results, device=device, gpus=gpus, peak=peak, opts=opts,
                            command=command, versions=versions)  # fmt: skip
    opts.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
