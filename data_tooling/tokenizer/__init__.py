"""Multilingual byte-level BPE tokenizer: training, loading, fairness report.

The Megatron indexed datasets it feeds are written by :mod:`bloomkit.data_tooling.indexed`.
"""

from bloomkit.data_tooling.tokenizer.train import (
    BLOOM_VOCAB_SIZE,
    EOD_ID,
    SPECIAL_TOKENS,
    TokenizerTrainConfig,
    load_tokenizer,
    padded_vocab_size,
    train_tokenizer,
)

__all__ = [
    "BLOOM_VOCAB_SIZE",
    "EOD_ID",
    "SPECIAL_TOKENS",
    "TokenizerTrainConfig",
    "load_tokenizer",
    "padded_vocab_size",
    "train_tokenizer",
]
