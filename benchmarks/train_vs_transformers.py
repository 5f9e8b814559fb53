"""Pretraining throughput on CPU: the bloomkit trainer (1 process) vs a plain transformers loop.

Same tiny BLOOM (default 4 layers, hidden 256, 8 heads, byte vocabulary 256), same start
weights (one random ``BloomForCausalLM``, imported into bloomkit with ``import_hf``), same
samples (megatron-core's ``GPTDataset`` over the shipped sample as UTF-8 bytes, sample
``step × batch + k`` at every step), same batch, sequence length, LR schedule (warmup + cosine),
AdamW (β 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only), clipping 1.0, fp32 and CPU
threads, in one process:

- bloomkit: ``pretrain`` at TP1 × PP1 × DP1 (megatron-core ``GPTModel``, pipeline schedule,
  megatron DDP, ``torch.optim.AdamW``);
- transformers: ``BloomForCausalLM`` forward, cross entropy on the same labels, backward,
  ``clip_grad_norm_``, ``torch.optim.AdamW``; nothing else.

tokens/s = batch × seq_length × steps / seconds of those steps, the first step (warm-up) left
out for both. The losses of both runs are listed to show they did the same work. Writes
``benchmarks/results/train_vs_transformers.md``::

    .venv/bin/python benchmarks/train_vs_transformers.py --steps 30 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "train_vs_transformers.md"
LR, WARMUP = 1e-3, 3


def configs(opts: argparse.Namespace, prefix: Path, start: Path) -> Any:
    """The bloomkit config of the run (the transformers loop reads the same values)."""
    from bloomkit.config import validate
    from bloomkit.pretraining.train import PretrainConfig

    return validate(
        PretrainConfig,
        {
            "model": {"preset": "tiny", "num_layers": opts.layers, "hidden_size": opts.hidden,
                      "num_attention_heads": opts.heads, "seq_length": opts.seq},
            "data": {"blend": {str(prefix): 1.0}, "split": "99,1,0"},
            "optim": {"lr": LR, "warmup_steps": WARMUP},
            "train": {"steps": opts.steps, "micro_batch_size": opts.batch,
                      "global_batch_size": opts.batch, "eval_batches": 0, "tensorboard": False},
            "checkpoint": {"load": str(start)},
        },
    )  # fmt: skip


def start_weights(config: Any, work: Path) -> tuple[Path, Path]:
    """One random HF BLOOM saved to ``work/hf``, and the same weights as a bloomkit checkpoint."""
    from transformers import BloomForCausalLM

    from bloomkit.pretraining.convert import hf_config, import_hf

    torch.manual_seed(0)
    BloomForCausalLM(hf_config(config.model)).save_pretrained(work / "hf")
    return work / "hf", import_hf(str(work / "hf"), work / "start", config.parallel)


def run_bloomkit(config: Any, work: Path) -> dict[str, Any]:
    from bloomkit.pretraining.pretrain import pretrain
    from bloomkit.rundir import RunDir

    summary = pretrain(config, RunDir(work / "bloomkit", "bench pretrain", config))
    rows = [json.loads(x) for x in (work / "bloomkit" / "metrics.jsonl").read_text().splitlines()]
    return {"seconds": sum(r["step_s"] for r in rows[1:]), "losses": summary["losses"]}


def run_transformers(config: Any, hf: Path, work: Path) -> dict[str, Any]:
    """The plain loop over the samples bloomkit's trainer saw, in the same order (its dataset,
    rebuilt from the index cache the bloomkit run wrote)."""
    from transformers import BloomForCausalLM

    from bloomkit.pretraining.data import build_datasets
    from bloomkit.pretraining.optim import learning_rate

    m, t, o = config.model, config.train, config.optim
    train, _ = build_datasets(
        config.data, vocab_size=m.padded_vocab_size(1), seq_length=m.seq_length,
        train_samples=t.steps * t.global_batch_size, valid_samples=1,
        data_dir=work / "bloomkit" / "data",
    )  # fmt: skip
    model = BloomForCausalLM.from_pretrained(hf, dtype=torch.float32).train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
    )  # fmt: skip
    losses, seconds = [], 0.0
    for step in range(t.steps):
        start = time.perf_counter()
        samples = [train[step * t.global_batch_size + k] for k in range(t.global_batch_size)]
        tokens = torch.stack([s["tokens"] for s in samples])
        labels = torch.stack([s["labels"] for s in samples])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(o, step, t.steps)
        optimizer.zero_grad()
        logits = model(input_ids=tokens).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        optimizer.step()
        losses.append(loss.item())
        seconds += time.perf_counter() - start if step else 0.0
    return {"seconds": seconds, "losses": losses}


def byte_prefix(work: Path) -> Path:
    from bloomkit.pretraining.data import byte_corpus_texts, write_byte_dataset

    write_byte_dataset(byte_corpus_texts(REPO / "bloomkit" / "sample"), work / "data" / "bytes")
    return work / "data" / "bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    opts = parser.parse_args()
    import transformers

    torch.set_num_threads(opts.threads)
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    prefix = byte_prefix(work)
    config = configs(opts, prefix, work / "start")
    hf, _ = start_weights(config, work)
    load = [os.getloadavg()[0]]
    results = {"bloomkit trainer (1 process)": run_bloomkit(config, work)}
    load.append(os.getloadavg()[0])
    results["transformers loop"] = run_transformers(config, hf, work)
    load.append(os.getloadavg()[0])
    timed_tokens = (opts.steps - 1) * opts.batch * opts.seq
    for result in results.values():
        result["tokens_per_s"] = timed_tokens / result["seconds"]
    ours, peer = results.values()
    command = shlex.join([sys.executable, *sys.argv]).replace(str(REPO) + "/", "")
    params = config.model.num_parameters(1)
    lines = [
        "# bloomkit pretraining trainer vs a plain transformers training loop (CPU)",
        "",
        f"Random BLOOM ({opts.layers} layers, hidden {opts.hidden}, {opts.heads} heads, byte "
        f"vocabulary 256; {params:,} parameters), the same start weights and samples (the shipped "
        f"sample as UTF-8 bytes), {opts.steps} steps × {opts.batch} sequences × {opts.seq} "
        f"tokens, fp32, {opts.threads} CPU threads, one process each.",
        "",
        "| run | timed tokens | seconds | tokens/s | ÷ transformers | first loss | last loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        ratio = f"**{r['tokens_per_s'] / peer['tokens_per_s']:.2f}×**" if r is ours else ""
        cells = [f"{timed_tokens:,}", f"{r['seconds']:.2f}", f"{r['tokens_per_s']:,.0f}", ratio,
                 f"{r['losses'][0]:.4f}", f"{r['losses'][-1]:.4f}"]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} |")
    gap = max(abs(a - b) for a, b in zip(ours["losses"], peer["losses"], strict=True))
    lines += [
        "",
        f"- largest loss difference over the {opts.steps} steps: {gap:.2e} (same weights, same "
        "samples: the two runs do the same arithmetic, in different kernel orders)",
        "- seconds: every step but the first (warm-up), data loading included; bloomkit's "
        "`step_s` from `metrics.jsonl` (checkpoint save at the end not counted).",
        f"- same LR {LR:g} (warmup {WARMUP}, cosine to 10%), AdamW β 0.9/0.95, eps 1e-8, weight "
        "decay 0.1 on matrices, clip 1.0.",
        f"- 1-minute load average before / between / after the runs: "
        f"{' / '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} CPUs (anything above "
        f"{opts.threads} is other jobs sharing the machine: absolute tokens/s are then low, the "
        "ratio is what to compare)",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}",
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
