"""What the loop reports: one row per step (console, ``metrics.jsonl``, TensorBoard), the summary.

A row holds ``step, loss, lr, grad_norm, global_batch_size, tokens_per_s, tflops, mfu, step_s,
data_wait_pct, memory_gib``; a step after which the validation sets were scored also holds
``valid_loss`` and, for a blend of several datasets (one per language, as ``bloomkit data
tokenize`` writes), ``valid_loss_per_language`` (``{language: loss}``, the language being the
file name of the prefix). Rank 0 writes; every rank keeps the rows, so any rank can summarise.

TensorBoard (``train.tensorboard``, rank 0, ``RUN/tensorboard``): the same values as scalars
``train/<key>``, ``valid/loss`` and ``valid/loss/<language>``, at the row's step. A resumed run
drops the steps after its checkpoint from both logs (JSONL rewritten atomically, TensorBoard
``purge_step``), so each step appears once.

TFLOPs and MFU: ``tflops = flops_per_token × tokens_per_s / world_size / 1e12`` with
``flops_per_token = 6·N + 12·L·h·s`` (PaLM appendix B; :meth:`BloomModelConfig.flops_per_token`)
and ``mfu = tflops / peak_tflops`` of one device (bf16 dense peak from :data:`PEAK_TFLOPS` by GPU
name, or ``train.peak_tflops``; not reported on CPU unless given).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from bloomkit.console import log
from bloomkit.rundir import atomic_write_text

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 peak TFLOPs per GPU (vendor data sheets, SXM parts), matched in the device name."""

TENSORBOARD_KEYS = ("loss", "lr", "grad_norm", "global_batch_size", "tokens_per_s", "tflops", "mfu")
"""Row keys written as ``train/<key>`` scalars."""


def peak_tflops(configured: float | None) -> float | None:
    """``train.peak_tflops``, else the current GPU's entry in :data:`PEAK_TFLOPS`, else None."""
    if configured is not None:
        return configured
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    return None


class MetricsLog:
    """The rows of a run: those of earlier jobs up to ``start`` (the resumed step), then one
    per step of this job, written by rank 0 as they come (see the module doc)."""

    def __init__(self, out: Path, start: int, *, steps: int, log_interval: int, tensorboard: bool):
        self.path = out / "metrics.jsonl"
        self.steps, self.log_interval = steps, log_interval
        self.rank0 = dist.get_rank() == 0
        self.rows: list[dict[str, Any]] = []
        if start and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            self.rows = [row for row in map(json.loads, lines) if row["step"] <= start]
        dist.barrier()  # every rank has read the file before rank 0 rewrites it
        self.writer = None
        if self.rank0:
            text = "".join(json.dumps(row) + "\n" for row in self.rows)
            atomic_write_text(self.path, text)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1)

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    def add(self, row: dict[str, Any]) -> None:
        """Keep ``row``; on rank 0 append it to the JSONL log and TensorBoard, and print it
        every ``log_interval`` steps and at the last."""
        self.rows.append(row)
        if not self.rank0:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        step = row["step"]
        if self.writer is not None:
            for key in TENSORBOARD_KEYS:
                if row.get(key) is not None:
                    self.writer.add_scalar(f"train/{key}", row[key], step)
            if row.get("valid_loss") is not None:
                self.writer.add_scalar("valid/loss", row["valid_loss"], step)
            for language, loss in row.get("valid_loss_per_language", {}).items():
                self.writer.add_scalar(f"valid/loss/{language}", loss, step)
            self.writer.flush()
        if step % self.log_interval == 0 or step == self.steps or "valid_loss" in row:
            mfu = f" MFU {100 * row['mfu']:.1f}%" if row["mfu"] is not None else ""
            valid = f" valid {row['valid_loss']:.4f}" if row.get("valid_loss") is not None else ""
            log.info(
                "step %d/%d loss %.4f lr %.2e grad_norm %.3f batch %d tokens/s %.0f TFLOPs %.3f"
                "%s%s",
                step, self.steps, row["loss"], row["lr"], row["grad_norm"],
                row["global_batch_size"], row["tokens_per_s"], row["tflops"], mfu, valid,
            )  # fmt: skip


def summarize(
    layout: str, parameters: int, rows: list[dict[str, Any]], *, steps: int, tokens: int,
    peak: float | None, bf16: bool, cuda: bool,
) -> dict[str, Any]:  # fmt: skip
    """``summary.json`` of the steps in ``rows`` (throughput averaged without the first step,
    which pays for warm-up); validation keys are added by the loop."""
    timed = rows[1:] or rows
    mean = {k: sum(r[k] for r in timed) / len(timed) if timed else 0.0 for k in
            ("tokens_per_s", "tflops")}  # fmt: skip
    return {
        "layout": layout,
        "parameters": parameters,
        "steps": steps,
        "tokens": tokens,
        "first_loss": rows[0]["loss"] if rows else None,
        "final_loss": rows[-1]["loss"] if rows else None,
        "valid_loss": None,
        "valid_loss_per_language": None,
        "losses": [row["loss"] for row in rows],
        "global_batch_sizes": [row.get("global_batch_size") for row in rows],
        "tokens_per_s": mean["tokens_per_s"],
        "tflops": mean["tflops"],
        "mfu": mean["tflops"] / peak if peak else None,
        "precision": "bf16" if bf16 else "fp32",
        "device": torch.cuda.get_device_name() if cuda else "cpu",
    }
