"""BLOOM architecture configs: one typed section, named presets, parameter counts.

Presets follow the published BigScience models (Le Scao et al. 2022, "BLOOM: A 176B-Parameter
Open-Access Multilingual Language Model", table 3, and the Hugging Face model configs):

=============  ======  ======  =====  ===================
preset         layers  hidden  heads  parameters (HF)
=============  ======  ======  =====  ===================
bloom-560m     24      1024    16     559,214,592
bloom-1b1      24      1536    16     1,065,314,304
bloom-1b7      24      2048    16     1,722,408,960
bloom-3b       30      2560    32     3,002,557,440
bloom-7b1      30      4096    32     7,069,016,064
bloom-176b     70      14336   112    176,247,271,424
=============  ======  ======  =====  ===================

All use vocabulary 250,880 (the tokenizer's 250,680 tokens padded to a multiple of 128 × 8, so it
stays divisible up to TP = 8), FFN 4 × hidden, sequence 2,048.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from bloomkit.config import Section

BLOOM_VOCAB = 250_880


class BloomModelConfig(Section):
    """The BLOOM architecture (shapes and init); parallel layout lives in ``ParallelConfig``."""

    preset: str | None = None
    """Start from a named preset (``tiny``, ``bloom-560m`` … ``bloom-176b``); fields given beside
    it override the preset's values."""
    num_layers: Annotated[int, Field(ge=1)] = 2
    hidden_size: Annotated[int, Field(ge=1)] = 64
    num_attention_heads: Annotated[int, Field(ge=1)] = 4
    ffn_hidden_size: Annotated[int, Field(ge=1)] | None = None
    """MLP inner width; ``null`` = 4 × hidden_size as in BLOOM."""
    vocab_size: Annotated[int, Field(ge=1)] = 256
    """Tokenizer vocabulary; the embedding is padded up to :attr:`padded_vocab_size`."""
    make_vocab_size_divisible_by: Annotated[int, Field(ge=1)] = 128
    """Pad the vocabulary to a multiple of this × tensor_parallel (fast GEMMs, even TP split)."""
    seq_length: Annotated[int, Field(ge=1)] = 128
    """Training sequence length (ALiBi itself has no maximum)."""
    init_method_std: Annotated[float, Field(gt=0)] = 0.02
    """Std of the normal init of every weight (BLOOM: 0.0048 for 176B, 0.02 for smaller)."""
    layernorm_epsilon: Annotated[float, Field(gt=0)] = 1e-5
    hidden_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    attention_backend: Literal["local", "sdpa"] = "local"
    """``local``: explicit ALiBi softmax (the reference); ``sdpa``: torch
    ``scaled_dot_product_attention`` with the ALiBi bias as mask, which runs a fused kernel on GPU
    (same result, checked in the tests)."""
    recompute: Literal["none", "selective", "full"] = "none"
    """Activation recomputation (Megatron-LM's ``--recompute-granularity``), memory for compute:
    ``full`` keeps only the input of every ``recompute_num_layers`` layers and reruns them in
    the backward pass (BLOOM-176B trained so); ``selective`` reruns only the attention core
    (scores, softmax, dropout: the activations that grow with the square of the sequence);
    ``none`` keeps every activation. Dropout draws the same masks when rerun."""
    recompute_num_layers: Annotated[int, Field(ge=1)] = 1
    """``full``: layers per recomputed chunk (Megatron's ``uniform`` method)."""

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            name = data["preset"]
            if name not in PRESETS:
                close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(PRESETS)}"
                raise ValueError(f"unknown model preset {name!r} ({hint})")
            data = {**PRESETS[name], **data}
        return data

    @model_validator(mode="after")
    def _recompute_layers_need_full(self) -> BloomModelConfig:
        if self.recompute_num_layers != 1 and self.recompute != "full":
            raise ValueError(
                f"recompute_num_layers {self.recompute_num_layers} applies to recompute: full "
                f"(recompute is {self.recompute!r})"
            )
        return self

    @model_validator(mode="after")
    def _check_shapes(self) -> BloomModelConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}; pick sizes with hidden % heads == 0"
            )
        return self

    @property
    def ffn_size(self) -> int:
        return self.ffn_hidden_size or 4 * self.hidden_size

    def padded_vocab_size(self, tensor_parallel: int = 1) -> int:
        """Vocabulary rounded up to a multiple of ``make_vocab_size_divisible_by × tp``."""
        multiple = self.make_vocab_size_divisible_by * tensor_parallel
        return -(-self.vocab_size // multiple) * multiple

    def num_parameters(self, tensor_parallel: int = 1) -> int:
        """Total parameters (tied LM head counted once): embedding + its LayerNorm + layers +
        final LayerNorm. Per layer: QKV 3h²+3h, out proj h²+h, MLP 2·h·f+f+h, 2 LayerNorms 4h."""
        h, f = self.hidden_size, self.ffn_size
        layer = 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h
        return self.padded_vocab_size(tensor_parallel) * h + 2 * h + self.num_layers * layer + 2 * h

    def flops_per_token(self, seq_length: int | None = None) -> float:
        """Training FLOPs per token, PaLM appendix B (Chowdhery et al. 2022):
        ``6·N + 12·L·h·s``. ``6·N``: forward + backward (3 × 2 FLOPs) through the ``N`` matmul
        weights, LM head included; ``12·L·h·s``: attention scores and context (2 matmuls of
        ``2·s·h`` FLOPs per token and layer, × 3 for backward), causal mask not discounted."""
        s = seq_length or self.seq_length
        h, f, L = self.hidden_size, self.ffn_size, self.num_layers
        matmul_params = L * (4 * h * h + 2 * h * f) + self.padded_vocab_size() * h
        return 6.0 * matmul_params + 12.0 * L * h * s


def _preset(layers: int, hidden: int, heads: int, std: float = 0.02) -> dict[str, Any]:
    return {
        "num_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "vocab_size": BLOOM_VOCAB,
        "seq_length": 2048,
        "init_method_std": std,
    }


PRESETS: dict[str, dict[str, Any]] = {
    # tests and the demo: 2 layers, hidden 64, 4 heads, byte-sized vocabulary
    "tiny": {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 256,
             "seq_length": 64},
    "bloom-560m": _preset(24, 1024, 16),
    "bloom-1b1": _preset(24, 1536, 16),
    "bloom-1b7": _preset(24, 2048, 16),
    "bloom-3b": _preset(30, 2560, 32),
    "bloom-7b1": _preset(30, 4096, 32, std=0.008),
    "bloom-176b": _preset(70, 14336, 112, std=0.0048),
}  # fmt: skip


def bloom_config(name: str, **overrides: Any) -> BloomModelConfig:
    """A named preset as a typed config, e.g. ``bloom_config("bloom-560m", seq_length=512)``."""
    return BloomModelConfig(preset=name, **overrides)
