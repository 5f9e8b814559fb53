"""The reference held-out loss of the SFT and LoRA tests: plain Hugging Face, no packing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import BloomForCausalLM


def response_loss(model: BloomForCausalLM, split: Path) -> float:
    """Mean loss over the response tokens of a packed split's rows, each example run alone
    with no attention mask at all (what packing must reproduce)."""
    arrays = {k: np.load(split / f"{k}.npy") for k in ("tokens", "labels", "loss_mask")}
    segments = np.load(split / "segment_ids.npy")
    total, count = 0.0, 0
    with torch.no_grad():
        for r in range(segments.shape[0]):
            for s in np.unique(segments[r]):
                at = segments[r] == s
                mask = torch.from_numpy(arrays["loss_mask"][r][at].astype(np.float32))
                if not mask.sum():
                    continue  # padding
                ids = torch.from_numpy(arrays["tokens"][r][at][None].astype(np.int64))
                labels = torch.from_numpy(arrays["labels"][r][at].astype(np.int64))
                per_token = torch.nn.functional.cross_entropy(
                    model(ids).logits[0], labels, reduction="none"
                )
                total += float((per_token * mask).sum())
                count += int(mask.sum())
    return total / count
