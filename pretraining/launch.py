"""Start ``world_size`` local processes for one function, as ``torchrun`` would on one node.

``torchrun`` is the launcher for real jobs (one node or many)::

    torchrun --nproc-per-node 8 --nnodes 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        .venv/bin/bloomkit pretrain run configs/pretrain/bloom-1b7.yaml --run-dir runs/1b7

It sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` and every rank
runs the same command. Without ``torchrun`` (laptops, tests), :func:`spawn` does the same on
this machine with ``torch.multiprocessing`` (``spawn`` start method, a free localhost port).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    fn(*args)


def spawn(fn: Callable[..., Any], world_size: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``world_size`` fresh processes with the torchrun environment.

    ``fn`` must be importable (module level). Raises if any rank fails, with its traceback.
    """
    mp.start_processes(
        _rank_main,
        args=(world_size, free_port(), fn, args),
        nprocs=world_size,
        join=True,
        start_method="spawn",
    )


def start(fn: Callable[..., Any], world_size: int, *args: Any) -> mp.ProcessContext:
    """:func:`spawn` without waiting: the running ranks (``.join()`` raises if one failed)."""
    return mp.start_processes(
        _rank_main,
        args=(world_size, free_port(), fn, args),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )


def is_launched() -> bool:
    """True inside a torchrun (or :func:`spawn`) rank."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


@contextmanager
def single_process_env() -> Iterator[None]:
    """A one-rank torch.distributed environment for the block only, so that a later call in the
    same process (say, resuming at TP=2) does not mistake itself for a launched rank."""
    keys = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
