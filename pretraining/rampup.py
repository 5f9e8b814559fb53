"""Global batch size per step, with Megatron-LM's batch-size ramp-up.

``train.rampup_batch_size: [START, INCREMENT, SAMPLES]`` (Megatron-LM's ``--rampup-batch-size``):
the global batch starts at ``START`` and grows by ``INCREMENT`` each time another
``SAMPLES / ((global_batch_size - START) / INCREMENT)`` samples have been consumed, reaching
``global_batch_size`` once ``SAMPLES`` samples are consumed. The sizes come from megatron-core's
``RampupBatchsizeNumMicroBatchesCalculator`` (an instance here, not its module-level global).
Micro-batches per DP rank at a step = its global batch / (micro_batch_size × data_parallel).

Example: ``global_batch_size 16, micro 2, DP 1, rampup [4, 4, 24]``: 3 increments, one per 8
samples; steps run at 4, 4, 8, 12, 16, 16, … (consumed before them 0, 4, 8, 16, 28, 44, …).
"""

from __future__ import annotations

from itertools import accumulate


def rampup_problems(
    rampup: tuple[int, int, int] | None, global_batch: int, micro_batch: int, data_parallel: int
) -> list[str]:
    """Why a ramp-up does not fit this batch layout (empty when it does, or when there is none)."""
    if rampup is None:
        return []
    start, increment, samples = rampup
    unit = micro_batch * data_parallel
    if start < 1 or increment < 1 or samples < 1:
        return [f"train.rampup_batch_size {list(rampup)}: every value must be >= 1"]
    if start >= global_batch or (global_batch - start) % increment:
        return [
            f"train.rampup_batch_size {list(rampup)}: START {start} must be below "
            f"global_batch_size {global_batch} and reach it in steps of INCREMENT {increment}"
        ]
    bad = [size for size in range(start, global_batch, increment) if size % unit]
    if bad:
        return [
            f"train.rampup_batch_size {list(rampup)}: batch size {bad[0]} of the ramp % "
            f"(micro_batch_size {micro_batch} × data_parallel {data_parallel}) != 0"
        ]
    return []


class BatchSchedule:
    """The global batch size of every step and the samples consumed before it (same on every
    rank and every job of a run, so a resumed run continues the ramp where it stopped)."""

    def __init__(
        self,
        steps: int,
        global_batch: int,
        micro_batch: int,
        data_parallel: int,
        rampup: tuple[int, int, int] | None = None,
    ):
        problems = rampup_problems(rampup, global_batch, micro_batch, data_parallel)
        if problems:
            raise ValueError("; ".join(problems))
        if rampup is None:
            self.sizes = [global_batch] * steps
        else:
            from megatron.core.num_microbatches_calculator import (
                RampupBatchsizeNumMicroBatchesCalculator,
            )

            calculator = RampupBatchsizeNumMicroBatchesCalculator(
                global_batch, micro_batch, data_parallel, False, 1, *rampup
            )  # rank 1: megatron-core logs nothing
            self.sizes, consumed = [], 0
            for _ in range(steps):
                calculator.update(consumed, consistency_check=True)
                self.sizes.append(calculator.get_current_global_batch_size())
                consumed += self.sizes[-1]
        self._consumed = [0, *accumulate(self.sizes)]

    def consumed(self, steps_done: int) -> int:
        """Samples consumed by the first ``steps_done`` steps (the first sample of the next)."""
        return self._consumed[steps_done]

    @property
    def total(self) -> int:
        """Training samples of the whole run."""
        return self._consumed[-1]
