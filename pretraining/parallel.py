"""Process groups in one place: TP × PP × DP over torch.distributed, on GPU (nccl) or CPU (gloo).

Order of construction, fixed (torchtitan ``ParallelDims`` habit):

1. check ``tp × pp × dp == world size`` (every factor printed when it does not hold);
2. on a machine without CUDA, install the CPU compatibility layer (:mod:`.cpu_compat`);
3. ``torch.distributed`` default group (``nccl`` with CUDA, else ``gloo``), from the
   ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` environment that ``torchrun`` or
   :mod:`.launch` sets;
4. megatron-core's groups, once: ``parallel_state.initialize_model_parallel(tp, pp)`` with
   megatron's default rank order ``tp-cp-ep-dp-pp`` (TP ranks are adjacent, so a TP group stays
   inside a node);
5. seeds: the default generator and megatron's tensor-parallel RNG tracker
   (``model_parallel_cuda_manual_seed``), so dropout differs across TP ranks and matches across
   DP replicas.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated

import torch
import torch.distributed as dist
from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.pretraining import cpu_compat


class ParallelConfig(Section):
    """How the model and the batch are split across processes (world = tp × pp × dp)."""

    tensor_parallel: Annotated[int, Field(ge=1)] = 1
    """TP: attention heads and MLP columns are split across this many ranks (heads % tp == 0)."""
    pipeline_parallel: Annotated[int, Field(ge=1)] = 1
    """PP: layers are split into this many consecutive stages (layers % pp == 0)."""
    data_parallel: Annotated[int, Field(ge=1)] = 1
    """DP: model replicas, each on its own slice of the global batch."""
    sequence_parallel: bool = False
    """Split LayerNorm/dropout activations along the sequence in TP regions (GPU only, tp > 1)."""
    overlap_grad_reduce: bool = False
    """DP: all-reduce each gradient bucket as soon as the backward pass has filled it, while
    the rest of the backward runs (Megatron-LM's ``--overlap-grad-reduce``); same gradients."""

    @model_validator(mode="after")
    def _sequence_parallel_needs_tp(self) -> ParallelConfig:
        if self.sequence_parallel and self.tensor_parallel == 1:
            raise ValueError(
                "sequence_parallel needs tensor_parallel > 1; set sequence_parallel: false"
            )
        return self

    @property
    def world_size(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel * self.data_parallel


def check_world_size(config: ParallelConfig, world_size: int) -> None:
    """Refuse a layout whose product is not the number of processes, naming every factor."""
    if config.world_size != world_size:
        raise ValueError(
            f"parallel layout does not match the processes: tensor_parallel "
            f"{config.tensor_parallel} × pipeline_parallel {config.pipeline_parallel} × "
            f"data_parallel {config.data_parallel} = {config.world_size}, but world size is "
            f"{world_size}; change parallel.* or launch {config.world_size} processes"
        )


def device() -> torch.device:
    """The device this rank computes on: its local GPU, or the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init_parallel(config: ParallelConfig, seed: int = 1234, timeout_minutes: int = 30) -> None:
    """Create (once) the process groups of ``config`` and seed every RNG; see the module doc."""
    from megatron.core import parallel_state, tensor_parallel

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    check_world_size(config, world_size)
    cuda = torch.cuda.is_available()
    if not cuda:
        cpu_compat.install()
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(
            backend="nccl" if cuda else "gloo", timeout=timedelta(minutes=timeout_minutes)
        )
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=config.tensor_parallel,
        pipeline_model_parallel_size=config.pipeline_parallel,
        create_gloo_process_groups=cuda,  # on CPU the default group is gloo already
    )
    torch.manual_seed(seed)
    tensor_parallel.model_parallel_cuda_manual_seed(seed)
    if dist.get_rank() == 0:
        log.info(
            "parallel: tp %d × pp %d × dp %d = %d processes (%s)",
            config.tensor_parallel,
            config.pipeline_parallel,
            config.data_parallel,
            world_size,
            "nccl" if cuda else "gloo, CPU",
        )


def destroy_parallel(process_group: bool = False) -> None:
    """Tear down megatron's groups (and the default group when ``process_group``)."""
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if process_group and dist.is_initialized():
        dist.destroy_process_group()
