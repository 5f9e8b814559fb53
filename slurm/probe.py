"""Cluster smoke test: every rank all-reduces and writes where it ran into the run directory.

``bloomkit slurm submit probe --profile NAME --nodes 2 --run-dir runs/probe`` runs it under
torchrun on every node; by hand::

    torchrun --nproc-per-node 2 -m bloomkit.slurm.probe --run-dir runs/probe

Each rank writes ``RUN/probe/rank-<R>.json`` (``task-<T>.json`` as an array task, without
torchrun): rank, world size, local rank, hostname, Slurm node, backend, the all-reduce sum
and its expected value ``world × (world + 1) / 2``. ``--wait-signal S`` then waits up to S
seconds for ``USR1`` and records whether it arrived: a check that the time-limit warning
(``--signal=B:USR1@…``) reaches the ranks. Exit status 1 when the sum is wrong.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bloomkit.rundir import atomic_write_json


def all_reduce_check() -> dict[str, Any]:
    """Initialise torch.distributed from the torchrun environment and all-reduce rank + 1."""
    import torch
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        value = torch.tensor([float(rank + 1)], device=device)
        dist.all_reduce(value)
        return {
            "rank": rank,
            "world_size": world,
            "local_rank": local_rank,
            "backend": backend,
            "device": str(device),
            "all_reduce_sum": value.item(),
            "expected_sum": world * (world + 1) / 2,
        }
    finally:
        dist.destroy_process_group()


def wait_for_signal(seconds: float, received: list[str]) -> str | None:
    """Wait up to ``seconds`` until the USR1 handler fills ``received``; its first entry."""
    deadline = time.monotonic() + seconds
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    return received[0] if received else None


def probe(run_dir: Path, wait_signal: float = 0.0) -> dict[str, Any]:
    """Run the check for this process and write its record; return the record."""
    received: list[str] = []
    if wait_signal > 0:  # before the slow part, so an early USR1 is not fatal
        signal.signal(signal.SIGUSR1, lambda signum, frame: received.append("USR1"))
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if launched:
        record = all_reduce_check()
        name = f"rank-{record['rank']}"
    else:
        task = os.environ.get("BLOOMKIT_TASK_ID", "0")
        record = {"rank": 0, "world_size": 1, "task": int(task), "backend": None}
        record |= {"all_reduce_sum": 1.0, "expected_sum": 1.0}
        name = f"task-{task}"
    record |= {
        "hostname": socket.gethostname(),
        "slurm_node": os.environ.get("SLURMD_NODENAME"),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
        "pid": os.getpid(),
        "ok": record["all_reduce_sum"] == record["expected_sum"],
        "signal": None,
    }
    path = run_dir / "probe" / f"{name}.json"
    if wait_signal > 0:  # say that the check passed and this rank now waits for USR1
        atomic_write_json(path, record | {"waiting": True})
        record["signal"] = wait_for_signal(wait_signal, received)
    record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bloomkit.slurm.probe", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--wait-signal", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    record = probe(args.run_dir, args.wait_signal)
    print(
        f"probe rank {record['rank']}/{record['world_size']} on {record['hostname']} "
        f"(node {record['slurm_node']}): sum {record['all_reduce_sum']} "
        f"{'ok' if record['ok'] else 'WRONG'}, signal {record['signal']}",
        flush=True,
    )
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
