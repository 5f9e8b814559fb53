"""The CPU compatibility layer: megatron-core without CUDA, on the gloo backend.

megatron-core assumes a GPU. This module is the one place where bloomkit maps what it asks of
CUDA to the CPU, and :func:`install` is called only when ``torch.cuda.is_available()`` is false
(by :func:`bloomkit.pretraining.parallel.init_parallel`). With it the same model, pipeline
schedule and gradient code run on CPU: tensor parallel (TP) × pipeline parallel (PP) × data
parallel (DP) over gloo processes, fp32.

What is mapped, and why:

========================================  ===================================================
megatron-core asks for                    on CPU it gets
========================================  ===================================================
``torch.cuda.current_device()``           ``torch.device("cpu")``, so ``device=`` factories
                                          (global memory buffer, pipeline p2p buffers,
                                          grad-norm scratch) allocate on the CPU
``torch.zeros(..., device="cuda")`` and   megatron-core modules see a copy of the ``torch``
other factories with a literal CUDA       module (:func:`_cpu_torch`) whose tensor
device (schedules, grad buffers, …)       factories map any CUDA device to the CPU
``torch.cuda.set_device`` /               no-ops (one device only)
``synchronize`` / ``empty_cache``
``torch.cuda.current_stream`` /           :class:`_NullStream` (CPU work is already
``Stream`` / ``stream(...)`` / ``Event``  ordered; events time with ``perf_counter``)
``Tensor.cuda()`` / ``Module.cuda()``     the object itself, unmoved
the tensor-parallel RNG tracker           :class:`CPURNGStatesTracker`: the same named
(``get_cuda_rng_tracker``, dropout        states (data-parallel, model-parallel, expert)
in TP regions, ``torch.cuda.get/          but forked from and restored to the CPU generator,
set_rng_state``)                          which is the one CPU dropout draws from
========================================  ===================================================

Not mapped (and not needed by bloomkit on CPU): fused kernels (apex, Transformer Engine — the
local spec is used), megatron's optimizer wrappers (they require CUDA tensors; the trainer uses
a torch optimizer on CPU, see ``train.py``), CUDA graphs. Activation recomputation needs
nothing more: its rerun restores the RNG states through the tracker and generators above.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
import types
from collections.abc import Callable, Iterator

import torch

_INSTALLED = False
_CPU_TORCH: types.ModuleType | None = None


class _NullStream:
    """Stands in for ``torch.cuda.Stream``: waits and syncs are no-ops on the CPU."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def wait_stream(self, other: object) -> None:
        pass

    def wait_event(self, event: object) -> None:
        pass

    def record_event(self, event: object = None) -> _NullEvent:
        return event if isinstance(event, _NullEvent) else _NullEvent()

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True


class _NullEvent:
    """Stands in for ``torch.cuda.Event``; ``elapsed_time`` is wall time in milliseconds."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._time = time.perf_counter()

    def record(self, stream: object = None) -> None:
        self._time = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def wait(self, stream: object = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: _NullEvent) -> float:
        return (end._time - self._time) * 1000.0


@contextlib.contextmanager
def _null_stream_context(stream: object = None) -> Iterator[None]:
    yield


_FACTORIES = (
    "zeros", "ones", "empty", "full", "tensor", "as_tensor", "arange", "rand", "randn", "randint",
    "zeros_like", "ones_like", "empty_like", "full_like", "eye", "linspace", "empty_strided",
    "randperm",
)  # fmt: skip


def _on_cpu(device: object) -> object:
    """A CUDA device (``"cuda"``, ``"cuda:1"``, ``torch.device("cuda")``, an index) → CPU."""
    if isinstance(device, int) or (isinstance(device, str) and device.startswith("cuda")):
        return "cpu"
    if isinstance(device, torch.device) and device.type == "cuda":
        return "cpu"
    return device


def _factory(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def make(*args: object, **kwargs: object) -> torch.Tensor:
        if "device" in kwargs:
            kwargs["device"] = _on_cpu(kwargs["device"])
        return fn(*args, **kwargs)

    make.__name__ = fn.__name__
    return make


class _CPUTorch(types.ModuleType):
    """``torch`` as megatron-core sees it on CPU: the same module, CPU-only factories."""

    def __getattr__(self, name: str) -> object:  # attributes torch gained after the copy
        return getattr(torch, name)


def _cpu_torch() -> types.ModuleType:
    proxy = _CPUTorch("torch")
    proxy.__dict__.update(torch.__dict__)
    for name in _FACTORIES:
        setattr(proxy, name, _factory(getattr(torch, name)))
    return proxy


# megatron-core modules imported before patching, so that their ``torch`` global is replaced
_MEGATRON_MODULES = (
    "megatron.core.pipeline_parallel.schedules",
    "megatron.core.pipeline_parallel.p2p_communication",
    "megatron.core.distributed",
    "megatron.core.distributed.finalize_model_grads",
    "megatron.core.distributed.param_and_grad_buffer",
    "megatron.core.tensor_parallel",
    "megatron.core.models.gpt",
    "megatron.core.transformer.utils",
    "megatron.core.rerun_state_machine",
)


def patch_megatron_modules() -> int:
    """Point every loaded ``megatron.core`` module's ``torch`` at the CPU view; how many."""
    if _CPU_TORCH is None:
        return 0
    count = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("megatron.core") and getattr(module, "torch", None) is torch:
            module.torch = _CPU_TORCH
            count += 1
    return count


def _return_self(self, *args, **kwargs):
    return self


def _make_rng_tracker_class() -> type:
    from megatron.core.tensor_parallel import random as mrandom

    class CPURNGStatesTracker(mrandom.CudaRNGStatesTracker):
        """megatron's tensor-parallel RNG tracker over the CPU generator.

        Same contract as ``CudaRNGStatesTracker``: ``add(name, seed)`` creates a named state,
        ``fork(name)`` runs its block on that state and restores the previous one, so dropout
        inside TP regions differs across TP ranks and matches across DP replicas, as on GPU.
        """

        def add(self, name: str, seed: int) -> None:
            self._is_initialized = True
            if seed in self.seeds_:
                raise ValueError(f"RNG seed {seed} already used by another tracked state")
            if name in self.states_:
                raise ValueError(f"RNG state {name!r} already exists")
            self.seeds_.add(seed)
            self.states_[name] = torch.Generator().manual_seed(seed).get_state()

        @contextlib.contextmanager
        def fork(self, name: str = mrandom._MODEL_PARALLEL_RNG_TRACKER_NAME) -> Iterator[None]:
            if name not in self.states_:
                raise KeyError(f"RNG state {name!r} was never added to the tracker")
            outer = torch.get_rng_state()
            torch.set_rng_state(self.states_[name])
            try:
                yield
            finally:
                self.states_[name] = torch.get_rng_state()
                torch.set_rng_state(outer)

    return CPURNGStatesTracker


def install() -> None:
    """Map megatron-core's CUDA calls to the CPU (idempotent; refuses when CUDA is present)."""
    global _INSTALLED, _CPU_TORCH
    if _INSTALLED:
        patch_megatron_modules()
        return
    if torch.cuda.is_available():
        raise RuntimeError(
            "cpu_compat.install() called on a machine with CUDA; the GPU path needs no shim"
        )
    cpu = torch.device("cpu")
    torch.cuda.current_device = lambda: cpu
    torch.cuda.set_device = lambda device: None
    torch.cuda.synchronize = lambda device=None: None
    torch.cuda.empty_cache = lambda: None
    torch.cuda.Stream = _NullStream
    torch.cuda.Event = _NullEvent
    torch.cuda.current_stream = lambda device=None: _NullStream()
    torch.cuda.default_stream = lambda device=None: _NullStream()
    torch.cuda.stream = _null_stream_context
    torch.cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    torch.cuda.set_rng_state = lambda state, device="cuda": torch.set_rng_state(state)
    torch.Tensor.cuda = _return_self
    torch.nn.Module.cuda = _return_self

    from megatron.core.tensor_parallel import random as mrandom

    mrandom._get_cuda_rng_state = lambda *args, **kwargs: torch.get_rng_state()
    mrandom._set_cuda_rng_state = lambda state, *args, **kwargs: torch.set_rng_state(state)
    mrandom._CUDA_RNG_STATE_TRACKER = _make_rng_tracker_class()()
    mrandom._CUDA_RNG_STATE_TRACKER_INITIALIZED = True
    for name in _MEGATRON_MODULES:
        importlib.import_module(name)
    _CPU_TORCH = _cpu_torch()
    patch_megatron_modules()
    _INSTALLED = True


def is_installed() -> bool:
    return _INSTALLED
