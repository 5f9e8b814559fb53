"""Distributed checkpoints: megatron-core ``torch_dist`` format, one ``step-N`` folder per save.

Layout of ``RUN/checkpoints/``::

    step-100/            megatron-core dist checkpoint (``*.distcp``, ``.metadata``, ``common.pt``)
      bloomkit.json      written last, by rank 0, after every rank finished: step, consumed
                         samples, config, layout, and every file's size and sha256
    step-200/
    latest               "step-200", replaced atomically after ``bloomkit.json`` exists

What is saved: the model (sharded tensors with global shapes, so any TP × PP layout loads it),
the optimizer (torch AdamW on CPU: ``exp_avg``/``exp_avg_sq`` sharded like their parameters;
megatron's distributed optimizer on GPU: ``fully_reshardable``), the step and consumed samples
(the loop's data and LR schedule are functions of the step), and the RNG states of every rank
(python, numpy, torch, megatron's tensor-parallel tracker; restored only at the same layout).

A checkpoint counts only when ``bloomkit.json`` exists and every file it lists has its size (and,
with ``verify: sha256``, its hash): resuming walks back from ``latest`` to the newest checkpoint
that passes, with a warning for each one skipped; when ``latest`` exists but none passes, resuming
is an error (``checkpoint.restart_if_damaged: true`` restarts from step 0). Files are hashed in
parallel (rank ``r`` of ``w`` hashes files ``r, r + w, …``).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.rundir import atomic_write_json, atomic_write_text, sha256_file

META = "bloomkit.json"
FORMAT = "bloomkit-megatron-dist-v1"
_STEP_DIR = re.compile(r"^step-(\d+)$")
ARCHITECTURE = ("num_layers", "hidden_size", "num_attention_heads", "ffn_size", "vocab_size")


class CheckpointConfig(Section):
    """When to save, what to keep, and when to stop (time limit, signals, kill switch)."""

    save: bool = True
    """``false``: save nothing, not even at the end (throughput benchmarks; a run stopped
    early then starts over)."""
    interval: Annotated[int, Field(ge=0)] = 0
    """Save every this many steps (0 = only at the end and when stopping early)."""
    keep_last: Annotated[int, Field(ge=1)] = 2
    """Keep the newest this many checkpoints …"""
    keep_every: Annotated[int, Field(ge=0)] = 0
    """… plus every checkpoint whose step is a multiple of this (0 = none)."""
    verify: Literal["sha256", "size"] = "sha256"
    """How a checkpoint is checked before loading: file sizes and hashes, or sizes only."""
    exit_duration_minutes: Annotated[float, Field(gt=0)] | None = None
    """Save and exit 0 once this many minutes passed since the job started (the maximum over
    ranks, so all stop at the same step); leave room for one step and one save."""
    exit_interval: Annotated[int, Field(ge=1)] | None = None
    """Save and exit 0 after a step that is a multiple of this (Megatron's --exit-interval)."""
    exit_signals: list[Literal["SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT"]] = ["SIGTERM", "SIGUSR1"]
    """Signals that mean "save at the next step boundary and exit 0" (Slurm: ``--signal``)."""
    kill_switch: Path = Path("STOP")
    """A file (relative to the run directory) whose presence stops the run cleanly."""
    restart_if_damaged: bool = False
    """``true``: when ``latest`` exists but no checkpoint at or before it is intact, train from
    step 0 (with a warning) instead of stopping with :class:`CheckpointError`."""
    load: Path | None = None
    """When the run has no checkpoint yet, start from this one (weights only: e.g. the output of
    ``bloomkit import hf``); the optimizer and step start afresh."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here: incomplete, corrupt, or another model."""


def step_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step-N`` folder under ``root``, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return sorted(found, reverse=True)


def read_meta(path: Path) -> dict[str, Any]:
    """The ``bloomkit.json`` of a checkpoint folder, or :class:`CheckpointError`."""
    file = path / META
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint folder (no such directory)")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no {META}: not a bloomkit checkpoint, or its save never finished"
        ) from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}:{err.lineno}: corrupt ({err.msg})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{file}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def _share(names: list[str]) -> list[str]:
    """This rank's part of a file list (all of it outside a process group)."""
    if not dist.is_initialized():
        return names
    rank, world = dist.get_rank(), dist.get_world_size()
    return names[rank::world]


def _gather(value: Any) -> list[Any]:
    if not dist.is_initialized():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def file_problems(path: Path, files: dict[str, dict[str, Any]], verify: str) -> list[str]:
    """This rank's share of the size/hash check of ``files``; a list of problems (collective)."""
    problems = []
    for name in _share(sorted(files)):
        file, expected = path / name, files[name]
        if not file.is_file():
            problems.append(f"missing file {name}")
        elif file.stat().st_size != expected["size"]:
            problems.append(f"{name}: {file.stat().st_size} bytes, expected {expected['size']}")
        elif verify == "sha256" and sha256_file(file) != expected["sha256"]:
            problems.append(f"{name}: sha256 mismatch (corrupted)")
    return sorted(p for part in _gather(problems) for p in part)


def verify_checkpoint(path: Path, verify: str = "sha256") -> dict[str, Any]:
    """The metadata of a complete, intact checkpoint, or :class:`CheckpointError` (collective)."""
    meta = read_meta(path)
    problems = file_problems(path, meta["files"], verify)
    if problems:
        raise CheckpointError(f"{path}: {'; '.join(problems[:5])}")
    return meta


def check_compatible(meta: dict[str, Any], model: Any, where: Path) -> None:
    """Refuse a checkpoint of another architecture or vocabulary, naming every difference."""
    saved = meta["model"]
    wanted = {k: getattr(model, k) for k in ARCHITECTURE}
    diffs = [f"{k} {saved.get(k)} in the checkpoint, {v} here" for k, v in wanted.items()]
    diffs = [d for d, k in zip(diffs, ARCHITECTURE, strict=True) if saved.get(k) != wanted[k]]
    if diffs:
        raise CheckpointError(
            f"{where}: checkpoint of another model: {'; '.join(diffs)}; set model.* to match "
            "it or start a new run directory"
        )


# --------------------------------------------------------------------------- state dicts


def _rng_state() -> dict[str, Any]:
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "tracker": get_cuda_rng_tracker().get_states(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    get_cuda_rng_tracker().set_states(state["tracker"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _optimizer_sharded(optimizer: Any, model_sd: dict, *, loading: bool) -> dict:
    """The optimizer's sharded state dict: megatron's own, or torch Adam(W) sharded by param."""
    if hasattr(optimizer, "sharded_state_dict"):  # megatron (GPU): reshards over TP, PP, DP
        return optimizer.sharded_state_dict(
            model_sd,
            is_loading=loading,
            metadata={"distrib_optim_sharding_type": "fully_reshardable"},
        )
    from megatron.core.dist_checkpointing.optimizer import (
        get_param_id_to_sharded_param_map,
        optim_state_to_sharding_state,
    )

    params = [p for group in optimizer.param_groups for p in group["params"]]
    if loading:  # zero state of the right shapes for the load to fill
        for p in params:
            optimizer.state[p] = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
    state = optimizer.state_dict()
    id_map = get_param_id_to_sharded_param_map(model_sd, params)
    # "step" is a scalar per parameter, equal to the loop's step: restored from it
    optim_state_to_sharding_state(state, id_map, exclude_keys=("step",))
    return state


def _sharded_state(model: Any, optimizer: Any, *, loading: bool, rng: bool) -> dict:
    from megatron.core import parallel_state as ps
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    state: dict[str, Any] = {"model": model.sharded_state_dict()}
    if optimizer is not None:
        state["optimizer"] = _optimizer_sharded(
            optimizer, model.sharded_state_dict(), loading=loading
        )
    if rng:
        pp, tp, dp = (
            (ps.get_pipeline_model_parallel_rank(), ps.get_pipeline_model_parallel_world_size()),
            (ps.get_tensor_model_parallel_rank(), ps.get_tensor_model_parallel_world_size()),
            (ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()),
        )
        state["rng_state"] = ShardedObject(
            "rng_state", _rng_state(), (pp[1], tp[1], dp[1]), (pp[0], tp[0], dp[0]), replica_id=0
        )
    return state


# --------------------------------------------------------------------------- save and load


def save_checkpoint(
    path: Path, model: Any, optimizer: Any, meta: dict[str, Any], verify: str = "sha256"
) -> None:
    """Save this rank's part into ``path`` (collective); rank 0 then writes ``bloomkit.json``."""
    from megatron.core import dist_checkpointing

    rank0 = dist.get_rank() == 0
    if rank0:
        if path.exists():
            shutil.rmtree(path)  # a save of this step that never finished
        path.mkdir(parents=True)
    dist.barrier()
    state = _sharded_state(model, optimizer, loading=False, rng=True)
    dist_checkpointing.save(state, str(path))
    dist.barrier()
    names = sorted(p.name for p in path.iterdir() if p.is_file() and p.name != META)
    files = {
        name: {
            "size": (path / name).stat().st_size,
            "sha256": sha256_file(path / name) if verify == "sha256" else None,
        }
        for name in _share(names)
    }
    merged = {k: v for part in _gather(files) for k, v in part.items()}
    if rank0:
        saved = datetime.now(UTC).isoformat(timespec="seconds")
        atomic_write_json(path / META, {"format": FORMAT, **meta, "saved": saved, "files": merged})
    dist.barrier()


def load_checkpoint(
    path: Path, model: Any, optimizer: Any, meta: dict[str, Any], layout: dict[str, int]
) -> None:
    """Load ``path`` into this rank's model (and optimizer; RNG when the layout is the same)."""
    from megatron.core import dist_checkpointing

    has_optimizer = optimizer is not None and meta.get("kind") == "train"
    same_layout = meta.get("parallel") == layout
    state = _sharded_state(
        model, optimizer if has_optimizer else None, loading=True, rng=same_layout
    )
    loaded = dist_checkpointing.load(state, str(path))
    model.load_state_dict(loaded["model"])
    if has_optimizer:
        if hasattr(optimizer, "sharded_state_dict"):
            optimizer.load_state_dict(loaded["optimizer"])
        else:
            state_dict = loaded["optimizer"]
            for param_state in state_dict["state"].values():
                param_state["step"] = torch.tensor(float(meta["step"]))
            optimizer.load_state_dict(state_dict)
    if same_layout:
        _set_rng_state(loaded["rng_state"])
    elif dist.get_rank() == 0:
        log.info("layout changed (%s → %s): RNG states start afresh", meta.get("parallel"), layout)


class Checkpointer:
    """The checkpoints of one run: resume, save, prune (every method is collective)."""

    def __init__(self, config: CheckpointConfig, root: Path):
        self.config = config
        self.root = root

    def latest(self) -> Path | None:
        """The newest intact checkpoint at or before ``latest`` (warning for each one skipped).

        None when the run has none. ``latest`` is the commit record (as Megatron-LM's tracker
        file): without it, folders are saves that never finished and training starts at step 0;
        with it, finding no intact checkpoint is a :class:`CheckpointError` (unless
        ``restart_if_damaged``), since restarting would silently throw the run away.
        """
        marker = self.root / "latest"
        candidates = step_dirs(self.root)
        named = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
        if named and (match := _STEP_DIR.match(named)):
            candidates = [(s, p) for s, p in candidates if s <= int(match[1])]
        problems = []
        for _, path in candidates:
            try:
                verify_checkpoint(path, self.config.verify)
                return path
            except CheckpointError as err:
                problems.append(str(err))
                if dist.get_rank() == 0:
                    log.warning("skipping checkpoint %s: %s", path.name, err)
        if named is None:
            return None
        if self.config.restart_if_damaged:
            if dist.get_rank() == 0:
                log.warning("%s: no intact checkpoint: training restarts from step 0", self.root)
            return None
        raise CheckpointError(
            f"{marker} names {named!r} but no checkpoint at or before it is intact"
            f"{': ' + ' | '.join(problems) if problems else ' (none found)'}; restore the "
            f"checkpoints, or start from step 0 with checkpoint.restart_if_damaged=true (or move "
            f"{self.root} aside)"
        )

    def resume(
        self, model: Any, optimizer: Any, model_config: Any, layout: dict[str, int]
    ) -> dict[str, Any] | None:
        """Load the newest intact checkpoint (or ``config.load``); its metadata, or None."""
        path = self.latest()
        if path is None and self.config.load is not None:
            path = self.config.load
            meta = verify_checkpoint(path, self.config.verify)
            meta = {**meta, "kind": "weights", "step": 0, "consumed_samples": 0}
        elif path is None:
            return None
        else:
            meta = read_meta(path)
        check_compatible(meta, model_config, path)
        load_checkpoint(path, model, optimizer, meta, layout)
        if dist.get_rank() == 0:
            log.info("resumed from %s (step %d)", path, meta["step"])
        return meta

    def save(self, step: int, model: Any, optimizer: Any, meta: dict[str, Any]) -> Path:
        """Save ``step-N``, then (rank 0) move ``latest`` to it and prune old checkpoints."""
        path = self.root / f"step-{step}"
        save_checkpoint(path, model, optimizer, {**meta, "step": step}, self.config.verify)
        if dist.get_rank() == 0:
            atomic_write_text(self.root / "latest", f"step-{step}\n")
            self.prune(step)
            log.info("checkpoint saved: %s", path)
        dist.barrier()
        return path

    def prune(self, latest: int) -> list[Path]:
        """Delete checkpoints beyond the newest ``keep_last`` that are not a ``keep_every``."""
        keep_every = self.config.keep_every
        kept, removed = 0, []
        for step, path in step_dirs(self.root):
            if step > latest:
                continue
            complete = (path / META).is_file()
            if complete and kept < self.config.keep_last:
                kept += 1
                continue
            if complete and keep_every and step % keep_every == 0:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed
