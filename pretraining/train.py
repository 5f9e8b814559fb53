"""The pretraining loop: BLOOM on megatron-core, TP × PP × DP, one visible loop.

Launch (see :mod:`.launch`): ``bloomkit pretrain run CONFIG`` runs one process, or spawns
``tp × pp × dp`` local processes; under ``torchrun`` every rank runs the loop itself.

Each step: ``global_batch / (micro_batch × dp)`` micro-batches per DP rank go through
megatron-core's pipeline schedule (forward + backward, 1F1B when PP > 1); megatron-core's DDP
all-reduces gradients over DP and the tied embedding over the first/last stage
(``finalize_model_grads``); the global gradient norm is clipped; Adam steps at the scheduled
LR. Logged every ``log_interval`` steps (console, ``metrics.jsonl``): loss, lr, grad_norm,
tokens_per_s, tflops (per device), mfu, step_s, data_wait_pct, memory_gib (GPU).

TFLOPs and MFU: ``tflops = flops_per_token × tokens_per_s / world_size / 1e12`` with
``flops_per_token = 6·N + 12·L·h·s`` (PaLM appendix B; :meth:`BloomModelConfig.flops_per_token`)
and ``mfu = tflops / peak_tflops`` of one device (bf16 dense peak from :data:`PEAK_TFLOPS` by GPU
name, or ``train.peak_tflops``; not reported on CPU unless given).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.pretraining.checkpoint import CheckpointConfig, Checkpointer, CheckpointError
from bloomkit.pretraining.data import DataConfig, build_datasets, micro_batches
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.optim import OptimConfig, clip_grad_norm_, learning_rate, param_groups
from bloomkit.pretraining.parallel import ParallelConfig
from bloomkit.rundir import atomic_write_json

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 peak TFLOPs per GPU (vendor data sheets, SXM parts), matched in the device name."""


class TrainConfig(Section):
    """Batch, length and logging of the loop."""

    steps: Annotated[int, Field(ge=1)] = 50
    micro_batch_size: Annotated[int, Field(ge=1)] = 2
    """Sequences per forward/backward on one rank."""
    global_batch_size: Annotated[int, Field(ge=1)] = 8
    """Sequences per optimizer step, over all DP ranks (tokens/step = this × seq_length)."""
    log_interval: Annotated[int, Field(ge=1)] = 1
    eval_batches: Annotated[int, Field(ge=0)] = 1
    """Global batches of the validation split scored after the last step (0 = none)."""
    bf16: bool | None = None
    """``null``: bf16 on GPU, fp32 on CPU."""
    peak_tflops: Annotated[float, Field(gt=0)] | None = None
    """Peak TFLOPs of one device for MFU; ``null`` = the GPU's entry in ``PEAK_TFLOPS``."""
    seed: int = 1234
    init: Literal["portable", "megatron"] = "portable"
    """``portable``: every weight from a generator seeded by its global name, so all TP × PP
    layouts start from the same model (``model/init.py``); ``megatron``: megatron-core's own
    per-rank init (less start-up work at scale, but the model then depends on the layout)."""


class PretrainConfig(Section):
    """``bloomkit pretrain run`` config: architecture, layout, data, optimizer, loop."""

    model: BloomModelConfig = BloomModelConfig(preset="tiny")
    parallel: ParallelConfig = ParallelConfig()
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    @model_validator(mode="after")
    def _divides(self) -> PretrainConfig:
        m, p, t = self.model, self.parallel, self.train
        problems = []
        if m.num_attention_heads % p.tensor_parallel:
            problems.append(
                f"model.num_attention_heads {m.num_attention_heads} % parallel.tensor_parallel "
                f"{p.tensor_parallel} != 0"
            )
        if m.num_layers % p.pipeline_parallel:
            problems.append(
                f"model.num_layers {m.num_layers} % parallel.pipeline_parallel "
                f"{p.pipeline_parallel} != 0"
            )
        if t.global_batch_size % (t.micro_batch_size * p.data_parallel):
            problems.append(
                f"train.global_batch_size {t.global_batch_size} % (micro_batch_size "
                f"{t.micro_batch_size} × data_parallel {p.data_parallel}) != 0"
            )
        if self.data.byte_corpus is not None and m.vocab_size < 256:
            problems.append(
                f"model.vocab_size {m.vocab_size} < 256 byte tokens of data.byte_corpus"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _rank_loss(losses: list[dict[str, torch.Tensor]], dp_size: int) -> float:
    """Mean loss of the step, known on every rank (only last-stage TP-rank-0 ranks have it)."""
    from megatron.core import parallel_state as ps

    value = torch.zeros((), dtype=torch.float64)
    if ps.is_pipeline_last_stage() and ps.get_tensor_model_parallel_rank() == 0 and losses:
        value += sum(float(item["loss"]) for item in losses) / len(losses)
    dist.all_reduce(value)
    return value.item() / dp_size


def _peak_tflops(config: TrainConfig) -> float | None:
    if config.peak_tflops is not None:
        return config.peak_tflops
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    return None


def _build(config: PretrainConfig, cuda: bool, bf16: bool) -> tuple[Any, Any]:
    """This rank's model stage wrapped in megatron-core DDP, and its optimizer."""
    from megatron.core.distributed import (
        DistributedDataParallel,
        DistributedDataParallelConfig,
        finalize_model_grads,
    )

    from bloomkit.pretraining.model.init import portable_init_
    from bloomkit.pretraining.model.spec import build_model

    t, p, m, o = config.train, config.parallel, config.model, config.optim
    model = build_model(m, p, bf16=bf16)
    if t.init == "portable":
        portable_init_(model, m, t.seed)
    ddp = DistributedDataParallel(
        config=model.config,
        ddp_config=DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=cuda
        ),
        module=model,
    )
    model.config.finalize_model_grads_func = finalize_model_grads
    model.config.no_sync_func = ddp.no_sync
    if cuda:  # megatron-core's distributed optimizer: Adam state sharded over DP, clips inside
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

        optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="adam", lr=o.lr, min_lr=o.lr * o.min_lr_ratio,
                weight_decay=o.weight_decay, adam_beta1=o.beta1, adam_beta2=o.beta2,
                adam_eps=o.eps, clip_grad=o.clip_grad or 0.0, bf16=bf16,
                params_dtype=torch.bfloat16 if bf16 else torch.float32,
                use_distributed_optimizer=True,
            ),
            [ddp],
        )  # fmt: skip
    else:
        optimizer = torch.optim.AdamW(
            param_groups(ddp, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps
        )
    return ddp, optimizer


def checkpoint_meta(config: PretrainConfig, step: int) -> dict[str, Any]:
    """What ``bloomkit.json`` records besides the files: step, data position, model, layout."""
    m, p, t = config.model, config.parallel, config.train
    return {
        "kind": "train",
        "step": step,
        "consumed_samples": step * t.global_batch_size,
        "global_batch_size": t.global_batch_size,
        "model": {**m.model_dump(mode="json"), "ffn_size": m.ffn_size},
        "padded_vocab_size": m.padded_vocab_size(p.tensor_parallel),
        "parallel": layout_of(p),
        "config": config.model_dump(mode="json"),
    }


def layout_of(parallel: ParallelConfig) -> dict[str, int]:
    return {
        "tensor_parallel": parallel.tensor_parallel,
        "pipeline_parallel": parallel.pipeline_parallel,
        "data_parallel": parallel.data_parallel,
    }


def _history(metrics_path: Path, start: int, rank0: bool) -> list[dict[str, Any]]:
    """Rows of steps ``1..start`` from an earlier job; rank 0 drops any later ones from the file
    (steps trained after the checkpoint that is resumed)."""
    rows = []
    if start and metrics_path.is_file():
        lines = metrics_path.read_text(encoding="utf-8").splitlines()
        rows = [row for row in map(json.loads, lines) if row["step"] <= start]
    dist.barrier()
    if rank0:
        text = "".join(json.dumps(row) + "\n" for row in rows)
        metrics_path.write_text(text, encoding="utf-8")
    return rows


def _resume(config: PretrainConfig, ckpt: Checkpointer, ddp: Any, optimizer: Any) -> int:
    """Load the run's newest intact checkpoint (or ``checkpoint.load``); the step to start at."""
    meta = ckpt.resume(ddp.module, optimizer, config.model, layout_of(config.parallel))
    if meta is None:
        return 0
    gbs = config.train.global_batch_size
    if meta["kind"] == "train" and meta["global_batch_size"] != gbs:
        raise CheckpointError(
            f"checkpoint step {meta['step']} consumed {meta['consumed_samples']} samples at "
            f"train.global_batch_size {meta['global_batch_size']}; resume with that batch size "
            f"(got {gbs}) or start a new run directory"
        )
    return int(meta["step"])


def train_rank(config: PretrainConfig, out: Path) -> dict[str, Any]:
    """The loop, run by every rank; rank 0 writes ``metrics.jsonl`` and ``summary.json``.

    Resumes from the newest intact checkpoint in ``out/checkpoints`` (bit-exact: same losses as
    an uninterrupted run), saves every ``checkpoint.interval`` steps, at the end, and when
    :class:`StopGuard` says stop; after the last step writes ``out/finished.json``.
    """
    from megatron.core import parallel_state as ps

    from bloomkit.pretraining.parallel import init_parallel
    from bloomkit.pretraining.step import run_schedule
    from bloomkit.pretraining.stopping import StopGuard

    t, p, m, o = config.train, config.parallel, config.model, config.optim
    cuda = torch.cuda.is_available()
    bf16 = cuda if t.bf16 is None else t.bf16
    init_parallel(p, seed=t.seed)
    rank0 = dist.get_rank() == 0
    ddp, optimizer = _build(config, cuda, bf16)
    params = [q for q in ddp.parameters() if q.requires_grad]
    ckpt = Checkpointer(config.checkpoint, out / "checkpoints")
    start = _resume(config, ckpt, ddp, optimizer)
    dp_rank, dp_size = ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()
    train_data, valid_data = build_datasets(
        config.data,
        vocab_size=m.padded_vocab_size(p.tensor_parallel),
        seq_length=m.seq_length,
        train_samples=t.steps * t.global_batch_size,
        valid_samples=max(1, t.eval_batches * t.global_batch_size),
        data_dir=out / "data",
    )
    tokens_per_step = t.global_batch_size * m.seq_length
    flops_per_step = m.flops_per_token() * tokens_per_step
    peak = _peak_tflops(t)
    metrics_path = out / "metrics.jsonl"
    history = _history(metrics_path, start, rank0)
    stopped, saved, done = None, start, start
    guard = StopGuard(config.checkpoint, out)
    if start < t.steps and guard.kill_switch_on():
        stopped = f"kill switch {guard.kill_switch}"
    ddp.train()
    with guard:
        for step in range(start, t.steps if stopped is None else start):
            start_s = time.perf_counter()
            batches = micro_batches(
                train_data, step, global_batch=t.global_batch_size,
                micro_batch=t.micro_batch_size, dp_rank=dp_rank, dp_size=dp_size,
            )  # fmt: skip
            data_s = time.perf_counter() - start_s
            ddp.zero_grad_buffer()
            optimizer.zero_grad()
            losses = run_schedule(ddp, batches, seq_length=m.seq_length, forward_only=False)
            lr = learning_rate(o, step, t.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if cuda:
                _, grad_norm, _ = optimizer.step()
            else:
                for q in params:
                    q.grad = q.main_grad
                grad_norm = clip_grad_norm_(params, o.clip_grad)
                optimizer.step()
            loss = _rank_loss(losses, dp_size)
            step_s = time.perf_counter() - start_s
            tflops = flops_per_step / step_s / dist.get_world_size() / 1e12
            row = {
                "step": step + 1, "loss": loss, "lr": lr, "grad_norm": float(grad_norm or 0.0),
                "tokens_per_s": tokens_per_step / step_s, "tflops": tflops,
                "mfu": tflops / peak if peak else None, "step_s": step_s,
                "data_wait_pct": 100.0 * data_s / step_s,
                "memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            }  # fmt: skip
            history.append(row)
            done = step + 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"step {done}: loss is {loss}; lower optim.lr")
            if rank0:
                with open(metrics_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
                if done % t.log_interval == 0 or done == t.steps:
                    log.info(
                        "step %d/%d loss %.4f lr %.2e grad_norm %.3f tokens/s %.0f TFLOPs %.3f%s",
                        done, t.steps, loss, lr, row["grad_norm"], row["tokens_per_s"], tflops,
                        f" MFU {100 * row['mfu']:.1f}%" if row["mfu"] is not None else "",
                    )  # fmt: skip
            stopped = guard.check(done) if done < t.steps else None
            interval = config.checkpoint.interval
            if stopped or done == t.steps or (interval and done % interval == 0):
                ckpt.save(done, ddp.module, optimizer, checkpoint_meta(config, done))
                saved = done
            if stopped:
                break
    if stopped and rank0:
        log.warning("stopping after step %d (%s); checkpoint step-%d", done, stopped, saved)
    valid_loss = None
    if stopped is None and t.eval_batches and valid_data is not None:
        valid_loss = _evaluate(config, ddp, valid_data, dp_rank, dp_size, run_schedule)
    summary = _summary(config, history, peak, bf16, cuda, done)
    summary.update(valid_loss=valid_loss, stopped=stopped, resumed_from=start or None)
    summary["checkpoint"] = str(out / "checkpoints" / f"step-{saved}") if saved else None
    if rank0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if done == t.steps:
            atomic_write_json(out / "finished.json", {"steps": done, "checkpoint": f"step-{saved}"})
    return summary


def _evaluate(
    config: PretrainConfig, ddp: Any, valid_data: Any, dp_rank: int, dp_size: int, run: Any
) -> float:
    """Mean loss over ``train.eval_batches`` global batches of the validation split."""
    t = config.train
    ddp.eval()
    batches = [
        micro
        for i in range(t.eval_batches)
        for micro in micro_batches(
            valid_data,
            i,
            global_batch=t.global_batch_size,
            micro_batch=t.micro_batch_size,
            dp_rank=dp_rank,
            dp_size=dp_size,
        )
    ]
    with torch.no_grad():
        loss = _rank_loss(
            run(ddp, batches, seq_length=config.model.seq_length, forward_only=True), dp_size
        )
    ddp.train()
    return loss


def _summary(
    config: PretrainConfig, history: list[dict[str, Any]], peak: float | None, bf16: bool,
    cuda: bool, done: int,
) -> dict[str, Any]:  # fmt: skip
    p, m, t = config.parallel, config.model, config.train
    timed = history[1:] or history  # the first step pays for warm-up
    mean_tflops = sum(r["tflops"] for r in timed) / len(timed) if timed else 0.0
    return {
        "layout": f"tp{p.tensor_parallel}×pp{p.pipeline_parallel}×dp{p.data_parallel}",
        "parameters": m.num_parameters(p.tensor_parallel),
        "steps": done,
        "tokens": done * t.global_batch_size * m.seq_length,
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "valid_loss": None,
        "losses": [row["loss"] for row in history],
        "tokens_per_s": sum(r["tokens_per_s"] for r in timed) / len(timed) if timed else 0.0,
        "tflops": mean_tflops,
        "mfu": mean_tflops / peak if peak else None,
        "precision": "bf16" if bf16 else "fp32",
        "device": torch.cuda.get_device_name() if cuda else "cpu",
    }
