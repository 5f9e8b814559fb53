"""When to stop early: time limit, Slurm's signals, a kill-switch file, an exit interval.

Jobs on shared machines end before training does (wall-time limits, preemption, operators).
Every rank calls :meth:`StopGuard.check` after each step; the reasons are all-reduced (maximum),
so every rank stops after the same step, saves, and exits 0:

- ``exit_duration_minutes``: the job's elapsed time (from ``BLOOMKIT_JOB_START``, set once by
  the launching process, else this process's start), maximum over ranks (as Megatron-LM's
  ``--exit-duration-in-mins``);
- a signal in ``exit_signals`` (Slurm sends SIGTERM at the end of a job, or the signal chosen
  with ``sbatch --signal=USR1@300``) received by any rank; the handler only sets a flag, the
  save happens at the next step boundary;
- the kill-switch file (checked by rank 0 only, to spare a shared file system);
- ``exit_interval``: after a step that is a multiple of it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

JOB_START_ENV = "BLOOMKIT_JOB_START"


def job_start() -> float:
    """Start of the job (seconds since the epoch), shared with child processes via the env."""
    return float(os.environ.setdefault(JOB_START_ENV, repr(time.time())))


class StopGuard:
    """Signal handlers while training, and the agreed decision to stop (see the module doc)."""

    def __init__(self, config: Any, run_dir: Path):
        self.config = config
        kill = config.kill_switch
        self.kill_switch = kill if kill.is_absolute() else run_dir / kill
        self.start = job_start()
        self.received: int = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopGuard:
        if threading.current_thread() is threading.main_thread():
            for name in self.config.exit_signals:
                signum = getattr(signal, name)
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.received = signum

    def kill_switch_on(self) -> bool:
        return self.kill_switch.exists()

    def check(self, step: int) -> str | None:
        """Why every rank stops after ``step`` (1-based count of steps done), or None."""
        from bloomkit.pretraining.parallel import device

        elapsed = (time.time() - self.start) / 60.0
        kill = 1.0 if dist.get_rank() == 0 and self.kill_switch_on() else 0.0
        flags = torch.tensor([float(self.received), kill, elapsed], dtype=torch.float64)
        flags = flags.to(device())
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        received, kill, elapsed = flags.tolist()
        if received:
            return f"signal {signal.Signals(int(received)).name}"
        if kill:
            return f"kill switch {self.kill_switch}"
        limit = self.config.exit_duration_minutes
        if limit is not None and elapsed >= limit:
            return f"time limit ({elapsed:.1f} of {limit:g} minutes)"
        if self.config.exit_interval and step % self.config.exit_interval == 0:
            return f"exit interval {self.config.exit_interval}"
        return None
