"""Early stopping on the held-out loss (``train.early_stopping`` / LoRA's ``early_stopping``).

After each evaluation, training stops once the held-out loss has not fallen below the best so
far by more than ``min_delta`` for ``patience`` evaluations in a row (Prechelt, "Early
Stopping — But When?", 1998: the simplest of its criteria). With several ranks every rank
decides on rank 0's loss (:meth:`EarlyStopping.check`), so all of them stop after the same
step; a resumed run replays the evaluations in ``metrics.jsonl`` (:meth:`EarlyStopping.replay`)
and so continues the count where the previous job left it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any

import torch
import torch.distributed as dist
from pydantic import Field

from bloomkit.config import Section


class EarlyStoppingConfig(Section):
    """When to stop on the held-out loss (needs a held-out loss every ``eval_interval`` steps)."""

    patience: Annotated[int, Field(ge=1)]
    """Evaluations in a row without improvement after which training stops."""
    min_delta: Annotated[float, Field(ge=0)] = 0.0
    """An evaluation improves on the best loss so far only when lower by more than this."""


class EarlyStopping:
    """The best held-out loss so far and the evaluations since it (see the module doc)."""

    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.best = math.inf
        self.best_step: int | None = None
        self.stale = 0

    def update(self, step: int, loss: float) -> str | None:
        """Record the held-out loss scored after ``step``; why training stops now, or None."""
        if loss < self.best - self.config.min_delta:
            self.best, self.best_step, self.stale = loss, step, 0
            return None
        self.stale += 1
        if self.stale < self.config.patience:
            return None
        return (
            f"early stopping: valid_loss did not improve by more than {self.config.min_delta:g} "
            f"for {self.stale} evaluations (best {self.best:.4f} after step {self.best_step})"
        )

    def check(self, step: int, loss: float) -> str | None:
        """:meth:`update` with rank 0's loss when ``torch.distributed`` runs, so that every
        rank takes the same decision even if the ranks' losses differed in the last bit."""
        if dist.is_available() and dist.is_initialized():
            from bloomkit.pretraining.parallel import device

            value = torch.tensor([loss], dtype=torch.float64, device=device())
            dist.broadcast(value, src=0)
            loss = value.item()
        return self.update(step, loss)

    def replay(self, rows: Iterable[dict[str, Any]]) -> str | None:
        """Feed the evaluations of earlier jobs (metrics rows with a ``valid_loss``); the
        reason to stop at once, or None."""
        reason = None
        for row in rows:
            if row.get("valid_loss") is not None:
                reason = self.update(row["step"], row["valid_loss"])
        return reason
