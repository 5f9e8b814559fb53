"""ALiBi attention for megatron-core: the core-attention module of the BLOOM layer spec.

ALiBi (Press et al. 2022, "Train Short, Test Long", https://arxiv.org/abs/2108.12409) adds no
position embedding; instead each head ``h`` adds ``slope_h × j`` to the score of key position
``j``. Adding ``slope_h × j`` rather than ``slope_h × (j − i)`` gives the same softmax for every
query ``i`` (a constant per row), which is how BLOOM computes it.

Slopes (BLOOM, ``build_alibi_tensor``): for ``n`` heads with ``n`` a power of two, the geometric
sequence ``2^(-8k/n)``, ``k = 1..n``. Otherwise, with ``m`` the largest power of two below
``n``: the ``m`` slopes for ``m`` heads, then the odd terms ``k = 1, 3, 5, …`` of the sequence
for ``2m`` heads (``2^(-8k/2m)``) until there are ``n``.

Packed sequences (several instruction examples in one row) need no position reset: shifting
all keys of an example by the row offset ``o`` adds ``slope_h × o`` to every score of a query's
row, which softmax cancels. Only the attention must be blocked across examples: the step passes
a block-diagonal ``attention_mask`` (``True`` = blocked, ``[b, 1, s, s]``) that is OR-ed with
the causal mask here (``bloomkit.pretraining.step.document_mask``).

Under tensor parallelism the QKV projection is split by heads in contiguous blocks, so TP rank
``r`` of ``t`` holds heads ``r·n/t … (r+1)·n/t − 1`` and applies exactly that slice of slopes.
"""

from __future__ import annotations

import math

import torch
from megatron.core import tensor_parallel
from megatron.core.process_groups_config import ProcessGroupCollection
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.transformer_config import TransformerConfig
from megatron.core.utils import divide
from torch import Tensor


def alibi_slopes(num_heads: int) -> list[float]:
    """The ALiBi slope of every head, in head order (BLOOM's rule for any head count)."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = [2.0 ** (-8.0 * k / closest) for k in range(1, closest + 1)]
    if closest != num_heads:
        extra = [2.0 ** (-8.0 * k / (2 * closest)) for k in range(1, 2 * closest, 2)]
        slopes += extra[: num_heads - closest]
    return slopes


def alibi_slopes_for_rank(num_heads: int, tp_rank: int, tp_size: int) -> list[float]:
    """The contiguous slice of slopes for the heads held by one tensor-parallel rank."""
    per_rank = divide(num_heads, tp_size)
    return alibi_slopes(num_heads)[tp_rank * per_rank : (tp_rank + 1) * per_rank]


class AlibiDotProductAttention(MegatronModule):
    """Causal softmax attention with an ALiBi bias, for megatron-core's ``SelfAttention``.

    Drop-in for ``megatron.core.transformer.dot_product_attention.DotProductAttention`` (same
    constructor and ``forward`` signature). Shapes: ``query``/``key``/``value``
    ``[s, b, heads_per_rank, head_dim]`` → context ``[s, b, heads_per_rank × head_dim]``.
    Scores are ``q·kᵀ/√d + slope·j``, masked causally (and by ``attention_mask`` where given,
    ``True`` = masked), softmaxed in fp32, as in Hugging Face ``BloomAttention``.
    """

    def __init__(
        self,
        config: TransformerConfig,
        layer_number: int,
        attn_mask_type: AttnMaskType,
        attention_type: str,
        attention_dropout: float | None = None,
        softmax_scale: float | None = None,
        cp_comm_type: str | None = None,
        pg_collection: ProcessGroupCollection | None = None,
    ):
        super().__init__(config=config)
        if config.context_parallel_size != 1:
            raise ValueError("ALiBi attention does not support context parallelism")
        if config.num_query_groups not in (None, config.num_attention_heads):
            raise ValueError("ALiBi attention expects one key/value head per query head (MHA)")
        if pg_collection is None:
            pg_collection = ProcessGroupCollection.use_mpu_process_groups(required_pgs=["tp"])
        tp = pg_collection.tp
        self.layer_number = layer_number
        self.attn_mask_type = attn_mask_type
        head_dim = divide(
            config.kv_channels * config.num_attention_heads, config.num_attention_heads
        )
        self.heads_per_rank = divide(config.num_attention_heads, tp.size())
        self.hidden_per_rank = self.heads_per_rank * head_dim
        self.softmax_scale = softmax_scale or 1.0 / math.sqrt(head_dim)
        slopes = alibi_slopes_for_rank(config.num_attention_heads, tp.rank(), tp.size())
        self.register_buffer("slopes", torch.tensor(slopes, dtype=torch.float32), persistent=False)
        self.attention_dropout = torch.nn.Dropout(
            config.attention_dropout if attention_dropout is None else attention_dropout
        )

    def alibi_bias(self, seq_len: int, dtype: torch.dtype) -> Tensor:
        """``[heads_per_rank, 1, s_k]``: slope × key position, broadcast over batch and queries."""
        positions = torch.arange(seq_len, device=self.slopes.device, dtype=torch.float32)
        return (self.slopes[:, None, None] * positions[None, None, :]).to(dtype)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Tensor | None,
        attn_mask_type: AttnMaskType | None = None,
        attention_bias: Tensor | None = None,
        packed_seq_params: object = None,
    ) -> Tensor:
        if packed_seq_params is not None or attention_bias is not None:
            raise ValueError("ALiBi attention supports neither packed sequences nor extra biases")
        sq, b, heads, head_dim = query.shape
        sk = key.size(0)
        # [s, b, n, d] -> [b, n, s, d]
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))
        causal = torch.ones(sq, sk, dtype=torch.bool, device=query.device).triu(sk - sq + 1)
        mask = causal if attention_mask is None else (causal | attention_mask.bool())
        if self.config.sequence_parallel:
            context = self._attend(q, k, v, mask)
        else:
            with tensor_parallel.get_cuda_rng_tracker().fork():
                context = self._attend(q, k, v, mask)
        # [b, n, sq, d] -> [sq, b, n·d]
        return context.permute(2, 0, 1, 3).reshape(sq, b, heads * head_dim)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """softmax(q·kᵀ/√d + ALiBi, masked) · v on ``[b, n, s, d]`` tensors."""
        bias = self.alibi_bias(k.size(2), q.dtype)  # [n, 1, sk]
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.softmax_scale + bias
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(self.attention_dropout(probs), v)


class AlibiSDPAttention(AlibiDotProductAttention):
    """The same attention through ``torch.nn.functional.scaled_dot_product_attention``.

    The ALiBi bias and the causal mask enter as one additive float mask, which PyTorch's
    memory-efficient (fused) kernel accepts on GPU; the result equals the local path.
    """

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        bias = self.alibi_bias(k.size(2), q.dtype).masked_fill(mask, float("-inf"))
        dropout = self.attention_dropout.p if self.training else 0.0
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.softmax_scale
        )
