"""Tiny pretraining runs for the trainer tests: a config builder, a runner, and a worker that
loads training checkpoints at any layout and gathers what they hold."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from bloomkit.config import to_yaml, validate
from bloomkit.pretraining.launch import free_port, single_process_env, spawn
from bloomkit.pretraining.parallel import destroy_parallel
from bloomkit.pretraining.pretrain import pretrain
from bloomkit.pretraining.stopping import JOB_START_ENV
from bloomkit.pretraining.train import PretrainConfig, train_rank
from bloomkit.rundir import RunDir


def tiny_config(
    data: dict[str, Any] | Path,
    *,
    steps: int,
    optim: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
    parallel: dict[str, Any] | None = None,
    **train: Any,
) -> PretrainConfig:
    """The tiny preset (sequence 32), micro-batch 2, global batch 4, one eval batch, split
    90/10/0; ``data`` is a token prefix (a blend of one) or the data section; ``train``
    overrides the train section."""
    section = {"blend": {str(data): 1.0}} if isinstance(data, Path) else data
    return validate(
        PretrainConfig,
        {
            "model": {"preset": "tiny", "seq_length": 32},
            "parallel": parallel or {},
            "data": {**section, "split": "90,10,0"},
            "optim": {"lr": 3e-3, "warmup_steps": 1, **(optim or {})},
            "train": {"steps": steps, "micro_batch_size": 2, "global_batch_size": 4,
                      "eval_batches": 1, **train},
            "checkpoint": checkpoint or {},
        },
    )  # fmt: skip


def run(config: PretrainConfig, out: Path) -> dict[str, Any]:
    """Pretrain into ``out`` in this process (a free rendezvous port, a job starting now); the
    run's summary."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MASTER_PORT", str(free_port()))
        patch.setenv(JOB_START_ENV, repr(time.time()))
        return pretrain(config, RunDir(out, "test", None))


def spawn_workers(fn: Callable[..., None], world_size: int, *args: Any) -> None:
    """:func:`spawn` a worker of this module: the ranks import it from the repository root."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
        spawn(fn, world_size, *args)


def write_config(config: PretrainConfig, path: Path) -> Path:
    """``config`` as the YAML file ``bloomkit pretrain run`` reads."""
    path.write_text(to_yaml(config), encoding="utf-8")
    return path


def _sharded_pieces(state: Any, out: list[tuple]) -> None:
    """``(key, global shape, global slice, data, main replica)`` of every sharded tensor."""
    from megatron.core.dist_checkpointing.mapping import ShardedTensor

    if isinstance(state, ShardedTensor):
        replica = state.replica_id if isinstance(state.replica_id, tuple) else (state.replica_id,)
        out.append((state.key, state.global_shape, state.global_slice(),
                    state.data.detach().clone(), all(r == 0 for r in replica)))  # fmt: skip
    elif isinstance(state, dict):
        for value in state.values():
            _sharded_pieces(value, out)
    elif isinstance(state, list | tuple):
        for value in state:
            _sharded_pieces(value, out)


def _assemble(pieces: list[tuple]) -> dict[str, torch.Tensor]:
    """Global tensors from every rank's pieces; replicas must equal the main copy."""
    full: dict[str, torch.Tensor] = {}
    for key, shape, where, data, main in pieces:
        if main:
            full.setdefault(key, torch.full(shape, float("nan"), dtype=data.dtype))[where] = data
    for key, _, where, data, main in pieces:
        assert main or torch.equal(full[key][where], data), f"replica of {key} differs"
    missing = [k for k, v in full.items() if v.is_floating_point() and v.isnan().any()]
    assert not missing, f"no rank holds part of {missing}"
    return full


def inspect_worker(config_json: dict, checkpoints: list[str], tokens: Any, out: str) -> None:
    """Every rank: load each training checkpoint (model and AdamW) at the config's layout;
    rank 0 saves ``[{"state": {global key: tensor}, "logits": [b, s, vocab]}]`` to ``out``,
    the state holding every parameter and its ``exp_avg``/``exp_avg_sq``, gathered."""
    import torch.distributed as dist

    from bloomkit.pretraining.checkpoint import _sharded_state, load_checkpoint, read_meta
    from bloomkit.pretraining.parallel import init_parallel
    from bloomkit.pretraining.step import forward_logits
    from bloomkit.pretraining.train import _build, layout_of

    config = PretrainConfig.model_validate(config_json)
    init_parallel(config.parallel, seed=config.train.seed)
    results = []
    for path in map(Path, checkpoints):
        ddp, optimizer = _build(config, cuda=False, bf16=False)
        load_checkpoint(path, ddp.module, optimizer, read_meta(path), layout_of(config.parallel))
        pieces: list[tuple] = []
        _sharded_pieces(_sharded_state(ddp.module, optimizer, loading=False, rng=False), pieces)
        logits = forward_logits(ddp.module, tokens)
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, (pieces, logits))
        everything = [piece for part, _ in parts for piece in part]
        found = next(x for _, x in parts if x is not None)
        results.append({"state": _assemble(everything), "logits": found})
    if dist.get_rank() == 0:
        torch.save(results, out)
    dist.barrier()
    destroy_parallel(process_group=True)


def inspect_checkpoints(
    config: PretrainConfig, checkpoints: list[Path], tokens: torch.Tensor, scratch: Path
) -> list[dict[str, Any]]:
    """:func:`inspect_worker` at ``config.parallel``: in this process for one rank, else
    spawned ranks."""
    out = scratch / f"inspect-{config.parallel.world_size}.pt"
    args = (config.model_dump(mode="json"), [str(c) for c in checkpoints], tokens, str(out))
    if config.parallel.world_size == 1:
        with pytest.MonkeyPatch.context() as patch, single_process_env():
            patch.setenv("MASTER_PORT", str(free_port()))
            inspect_worker(*args)
    else:
        spawn_workers(inspect_worker, config.parallel.world_size, *args)
    return torch.load(out)


def skewed_clock_worker(config_json: dict, out: str, minutes_ago: list[float]) -> None:
    """Every rank: train as ``pretrain`` does, but with the job started ``minutes_ago[rank]``
    minutes ago (ranks whose clocks disagree); each writes its summary to ``out/rank-R.json``."""
    rank = int(os.environ["RANK"])
    os.environ[JOB_START_ENV] = repr(time.time() - 60 * minutes_ago[rank])
    summary = train_rank(PretrainConfig.model_validate(config_json), Path(out))
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(summary), encoding="utf-8")
    destroy_parallel(process_group=True)
