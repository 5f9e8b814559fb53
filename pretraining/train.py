"""The pretraining loop: BLOOM on megatron-core, TP × PP × DP, one visible loop.

Launch (see :mod:`.launch`): ``bloomkit pretrain run CONFIG`` runs one process, or spawns
``tp × pp × dp`` local processes; under ``torchrun`` every rank runs the loop itself.

Each step: ``global_batch / (micro_batch × dp)`` micro-batches per DP rank go through
megatron-core's pipeline schedule (forward + backward, 1F1B when PP > 1); megatron-core's DDP
all-reduces gradients over DP and the tied embedding over the first/last stage
(``finalize_model_grads``); the global gradient norm is clipped; Adam steps at the scheduled
LR. The global batch may ramp up (:mod:`.rampup`); the LR follows steps or, as in Megatron-LM,
the samples consumed (:mod:`.optim`). Every step is logged (:mod:`.metrics`: console,
``metrics.jsonl``, TensorBoard); the validation loss, overall and per language of the blend
(:mod:`.validation`), after the last step and every ``eval_interval`` steps, optionally
stopping once it stops falling (:mod:`.early_stopping`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.console import log, progress
from bloomkit.pretraining.checkpoint import CheckpointConfig, Checkpointer, CheckpointError
from bloomkit.pretraining.data import (
    DataConfig,
    build_datasets,
    language_valid_datasets,
    micro_batches,
)
from bloomkit.pretraining.early_stopping import EarlyStopping, EarlyStoppingConfig
from bloomkit.pretraining.metrics import MetricsLog, peak_tflops, summarize
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.optim import OptimConfig, clip_grad_norm_, param_groups, scheduled_lr
from bloomkit.pretraining.parallel import ParallelConfig
from bloomkit.pretraining.rampup import BatchSchedule, rampup_problems
from bloomkit.rundir import atomic_write_json


class TrainConfig(Section):
    """Batch, length and logging of the loop."""

    steps: Annotated[int, Field(ge=1)] = 50
    micro_batch_size: Annotated[int, Field(ge=1)] = 2
    """Sequences per forward/backward on one rank."""
    global_batch_size: Annotated[int, Field(ge=1)] = 8
    """Sequences per optimizer step, over all DP ranks (tokens/step = this × seq_length)."""
    rampup_batch_size: tuple[int, int, int] | None = None
    """``[START, INCREMENT, SAMPLES]``: the global batch grows from START by INCREMENT over the
    first SAMPLES samples (Megatron-LM's ``--rampup-batch-size``; :mod:`.rampup`)."""
    log_interval: Annotated[int, Field(ge=1)] = 1
    """Print every this many steps (``metrics.jsonl`` and TensorBoard get every step)."""
    eval_batches: Annotated[int, Field(ge=0)] = 1
    """Global batches of validation scored after the last step, overall and for each language
    of a blend (0 = none)."""
    eval_interval: Annotated[int, Field(ge=1)] | None = None
    """Also score validation every this many steps (``null`` = after the last step only)."""
    early_stopping: EarlyStoppingConfig | None = None
    """Stop when the validation loss stops falling (:mod:`.early_stopping`; needs
    ``eval_interval``); the run then saves a checkpoint and ends as finished."""
    tensorboard: bool = True
    """Write the logged values to ``RUN/tensorboard`` (rank 0) besides ``metrics.jsonl``."""
    bf16: bool | None = None
    """``null``: bf16 on GPU, fp32 on CPU."""
    peak_tflops: Annotated[float, Field(gt=0)] | None = None
    """Peak TFLOPs of one device for MFU; ``null`` = the GPU's entry in ``PEAK_TFLOPS``."""
    seed: int = 1234
    init: Literal["portable", "megatron"] = "portable"
    """``portable``: every weight from a generator seeded by its global name, so all TP × PP
    layouts start from the same model (``model/init.py``); ``megatron``: megatron-core's own
    per-rank init (less start-up work at scale, but the model then depends on the layout)."""

    @model_validator(mode="after")
    def _early_stopping_evaluates(self) -> TrainConfig:
        if self.early_stopping is not None and (not self.eval_interval or not self.eval_batches):
            raise ValueError(
                "train.early_stopping acts on the validation loss: set train.eval_interval "
                f"(now {self.eval_interval}) and train.eval_batches >= 1 (now {self.eval_batches})"
            )
        return self


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
        problems += rampup_problems(
            t.rampup_batch_size, t.global_batch_size, t.micro_batch_size, p.data_parallel
        )
        if self.data.byte_corpus is not None and m.vocab_size < 256:
            problems.append(
                f"model.vocab_size {m.vocab_size} < 256 byte tokens of data.byte_corpus"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


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
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=config.parallel.overlap_grad_reduce,
            use_distributed_optimizer=cuda,
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


def checkpoint_meta(config: PretrainConfig, step: int, consumed_samples: int) -> dict[str, Any]:
    """What ``bloomkit.json`` records besides the files: step, data position, model, layout."""
    m, p, t = config.model, config.parallel, config.train
    return {
        "kind": "train",
        "step": step,
        "consumed_samples": consumed_samples,
        "global_batch_size": t.global_batch_size,
        "rampup_batch_size": t.rampup_batch_size,
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


def _resume(
    config: PretrainConfig, schedule: BatchSchedule, ckpt: Checkpointer, ddp: Any, optimizer: Any
) -> int:
    """Load the run's newest intact checkpoint (or ``checkpoint.load``); the step to start at."""
    meta = ckpt.resume(ddp.module, optimizer, config.model, layout_of(config.parallel))
    if meta is None:
        return 0
    t, step = config.train, int(meta["step"])
    if meta["kind"] == "train" and meta["consumed_samples"] != schedule.consumed(step):
        raise CheckpointError(
            f"checkpoint step {step} consumed {meta['consumed_samples']} samples at "
            f"train.global_batch_size {meta['global_batch_size']}, rampup_batch_size "
            f"{meta.get('rampup_batch_size')}; this config would have consumed "
            f"{schedule.consumed(step)} (global_batch_size {t.global_batch_size}, "
            f"rampup_batch_size {t.rampup_batch_size}): resume with the batch settings of the "
            "checkpoint or start a new run directory"
        )
    return step


def train_rank(config: PretrainConfig, out: Path) -> dict[str, Any]:
    """The loop, run by every rank; rank 0 writes ``metrics.jsonl``, TensorBoard and
    ``summary.json``.

    Resumes from the newest intact checkpoint in ``out/checkpoints`` (bit-exact: same losses as
    an uninterrupted run, the batch ramp-up continued), saves every ``checkpoint.interval``
    steps, at the end, and when :class:`StopGuard` or :class:`EarlyStopping` says stop; after
    the last step or an early stop writes ``out/finished.json``.
    """
    from megatron.core import parallel_state as ps

    from bloomkit.pretraining.parallel import init_parallel
    from bloomkit.pretraining.step import run_schedule
    from bloomkit.pretraining.stopping import StopGuard
    from bloomkit.pretraining.validation import evaluate, rank_loss

    t, p, m, o = config.train, config.parallel, config.model, config.optim
    cuda = torch.cuda.is_available()
    bf16 = cuda if t.bf16 is None else t.bf16
    init_parallel(p, seed=t.seed)
    rank0 = dist.get_rank() == 0
    ddp, optimizer = _build(config, cuda, bf16)
    params = [q for q in ddp.parameters() if q.requires_grad]
    schedule = BatchSchedule(
        t.steps, t.global_batch_size, t.micro_batch_size, p.data_parallel, t.rampup_batch_size
    )
    ckpt = Checkpointer(config.checkpoint, out / "checkpoints")
    start = _resume(config, schedule, ckpt, ddp, optimizer)
    dp_rank, dp_size = ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()
    data_args = {"vocab_size": m.padded_vocab_size(p.tensor_parallel),
                 "seq_length": m.seq_length, "data_dir": out / "data"}  # fmt: skip
    valid_samples = max(1, t.eval_batches * t.global_batch_size)
    train_data, valid_data = build_datasets(
        config.data, train_samples=schedule.total, valid_samples=valid_samples, **data_args
    )
    languages = (
        language_valid_datasets(config.data, valid_samples=valid_samples, **data_args)
        if t.eval_batches
        else {}
    )
    peak = peak_tflops(t.peak_tflops)
    stopped, saved, done = None, start, start
    guard = StopGuard(config.checkpoint, out)
    if start < t.steps and guard.kill_switch_on():
        stopped = f"kill switch {guard.kill_switch}"
    metrics = MetricsLog(
        out, start, steps=t.steps, log_interval=t.log_interval, tensorboard=t.tensorboard
    )
    early = EarlyStopping(t.early_stopping) if t.early_stopping else None
    ended = early.replay(metrics.rows) if early and start < t.steps else None
    if early and valid_data is None:
        raise ValueError("train.early_stopping needs a validation split: give data.split one")
    stopped = stopped or ended
    ddp.train()
    with metrics, guard:
        steps = range(start, t.steps if stopped is None else start)
        for step in progress(steps, "train steps", enabled=rank0):
            start_s = time.perf_counter()
            gbs = schedule.sizes[step]
            batches = micro_batches(
                train_data, schedule.consumed(step), global_batch=gbs,
                micro_batch=t.micro_batch_size, dp_rank=dp_rank, dp_size=dp_size,
            )  # fmt: skip
            data_s = time.perf_counter() - start_s
            ddp.zero_grad_buffer()
            optimizer.zero_grad()
            losses = run_schedule(ddp, batches, seq_length=m.seq_length, forward_only=False)
            lr = scheduled_lr(o, schedule, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if cuda:
                _, grad_norm, _ = optimizer.step()
            else:
                for q in params:
                    q.grad = q.main_grad
                grad_norm = clip_grad_norm_(params, o.clip_grad)
                optimizer.step()
            loss = rank_loss(losses, dp_size)
            step_s = time.perf_counter() - start_s
            tokens = gbs * m.seq_length
            tflops = m.flops_per_token() * tokens / step_s / dist.get_world_size() / 1e12
            done = step + 1
            row = {
                "step": done, "loss": loss, "lr": lr, "grad_norm": float(grad_norm or 0.0),
                "global_batch_size": gbs, "tokens_per_s": tokens / step_s, "tflops": tflops,
                "mfu": tflops / peak if peak else None, "step_s": step_s,
                "data_wait_pct": 100.0 * data_s / step_s,
                "memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            }  # fmt: skip
            if not math.isfinite(loss):
                raise FloatingPointError(f"step {done}: loss is {loss}; lower optim.lr")
            score = done == t.steps or (t.eval_interval and done % t.eval_interval == 0)
            if score and t.eval_batches and valid_data is not None:
                row |= evaluate(ddp, valid_data, languages, t, m.seq_length, dp_rank, dp_size)
            metrics.add(row)
            if early and "valid_loss" in row:
                ended = early.check(done, row["valid_loss"]) if done < t.steps else None
            stopped = (guard.check(done) or ended) if done < t.steps else None
            interval = config.checkpoint.interval
            save = stopped or done == t.steps or (interval and done % interval == 0)
            if save and config.checkpoint.save:
                meta = checkpoint_meta(config, done, schedule.consumed(done))
                ckpt.save(done, ddp.module, optimizer, meta)
                saved = done
            if stopped:
                break
    if stopped and rank0:
        log.warning("stopping after step %d (%s); checkpoint step-%d", done, stopped, saved)
    layout = f"tp{p.tensor_parallel}×pp{p.pipeline_parallel}×dp{p.data_parallel}"
    summary = summarize(
        layout, m.num_parameters(p.tensor_parallel), metrics.rows, steps=done,
        tokens=schedule.consumed(done) * m.seq_length, peak=peak, bf16=bf16, cuda=cuda,
    )  # fmt: skip
    finished = done == t.steps or ended is not None
    last = metrics.rows[-1] if metrics.rows and finished else {}
    summary.update(
        valid_loss=last.get("valid_loss"),
        valid_loss_per_language=last.get("valid_loss_per_language"),
        stopped=stopped,
        finished=finished,
        resumed_from=start or None,
    )
    summary["checkpoint"] = str(out / "checkpoints" / f"step-{saved}") if saved else None
    if rank0:
        atomic_write_json(out / "summary.json", summary)
        if finished:  # an early stop is done too: a Slurm chain must not requeue it
            marker = {"steps": done, "checkpoint": f"step-{saved}", "early_stopped": ended}
            atomic_write_json(out / "finished.json", marker)
    return summary
