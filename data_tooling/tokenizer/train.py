"""Train a BLOOM-style byte-level BPE tokenizer on a script- or language-balanced sample.

BLOOM's recipe: byte-level BPE (every byte is a token, so any UTF-8 text round-trips), no
normalisation, pre-tokenisation on whitespace and punctuation only (letters keep their
combining marks, so Indic and other abugida words are not cut at every vowel sign), special
tokens ``<unk>``=0, ``<s>``=1, ``</s>``=2 (end of document), ``<pad>``=3, vocabulary 250,680.
The model's embedding is padded to a multiple of ``128 × tensor_parallel``
(:func:`padded_vocab_size`; BLOOM: 250,680 → 250,880 at TP=4).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.data_tooling.tokenizer.corpus import (
    Balance,
    balanced_sample,
    find_shards,
    texts_by_language,
)
from bloomkit.rundir import RunDir, atomic_path

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
UNK_ID, BOS_ID, EOD_ID, PAD_ID = 0, 1, 2, 3
BLOOM_VOCAB_SIZE = 250_680
METADATA_FILE = "bloomkit_tokenizer.json"
# Words with their combining marks, numbers, runs of other symbols, whitespace (GPT-2 style).
PRETOKENIZE_REGEX = r" ?[\p{L}\p{M}]+| ?\p{N}+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+"


class TokenizerTrainConfig(Section):
    """``bloomkit data tokenizer train CONFIG``."""

    inputs: list[Path]
    """Corpus shards (``.jsonl[.gz|.zst]``) or folders of them."""
    vocab_size: Annotated[int, Field(ge=len(SPECIAL_TOKENS) + 256)] = BLOOM_VOCAB_SIZE
    """Tokens including the 4 special tokens and the 256 bytes (BLOOM: 250,680)."""
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    """Sampling exponent: ``p ∝ bytes^alpha``; 1 = natural shares, 0 = uniform."""
    balance: Balance = "script"
    """``script``: ``p_script ∝ bytes^alpha``, then ``p_l|script ∝ bytes_l^alpha`` (scripts
    from ``tables/languages.tsv``); ``language``: ``p_l ∝ bytes_l^alpha`` (BLOOM's recipe).
    Script is the default: on a ROOTS-like skew it is the one under which every language's
    premium over English falls below the unbalanced tokenizer's; it pays with Latin-script
    tokens (English +52% there), and on data already even across languages it still moves
    share from Latin-script languages to the others
    (``benchmarks/results/tokenizer_fairness.md``)."""
    sample_bytes: Annotated[int, Field(gt=0)] | None = None
    """Bytes of text drawn for training (default: as many as the corpus has)."""
    min_frequency: Annotated[int, Field(ge=1)] = 2
    """A pair must occur this often to be merged."""
    tensor_parallel: Annotated[int, Field(ge=1)] = 1
    """TP size of the model the tokenizer is for (sets the padded vocabulary size)."""
    seed: int = 1234
    """Seed of the sample's draw and shuffle."""


def padded_vocab_size(vocab_size: int, tensor_parallel: int = 1, multiple: int = 128) -> int:
    """Embedding rows for ``vocab_size`` tokens: next multiple of ``multiple × tensor_parallel``."""
    step = multiple * tensor_parallel
    return math.ceil(vocab_size / step) * step


def build_trainer_pair(vocab_size: int, min_frequency: int) -> tuple[Any, Any]:
    """An untrained BLOOM-style byte-level BPE ``Tokenizer`` and its ``BpeTrainer``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def save_hf_tokenizer(tokenizer: Any, out: Path, metadata: dict[str, Any]) -> None:
    """Save as a Hugging Face folder (``AutoTokenizer.from_pretrained`` loads it), atomically."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=SPECIAL_TOKENS[UNK_ID],
        bos_token=SPECIAL_TOKENS[BOS_ID],
        eos_token=SPECIAL_TOKENS[EOD_ID],
        pad_token=SPECIAL_TOKENS[PAD_ID],
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    with atomic_path(out) as tmp:
        hf.save_pretrained(str(tmp))
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def train_tokenizer(config: TokenizerTrainConfig, run: RunDir) -> dict[str, Any]:
    """Train on an alpha-balanced sample of ``config.inputs``; write ``RUN/tokenizer/``.

    Returns a summary: vocabulary sizes, sample size, per-language sampling statistics.
    """
    shards = find_shards(config.inputs)
    out = run / "tokenizer"

    def step() -> dict[str, Any]:
        grouped = texts_by_language(shards)
        sample, stats = balanced_sample(
            grouped, config.alpha, config.sample_bytes, config.seed, balance=config.balance
        )
        log.info(
            "training BPE (vocab %d) on %d texts in %d languages, alpha %.2f by %s",
            config.vocab_size, len(sample), len(grouped), config.alpha, config.balance,
        )  # fmt: skip
        tokenizer, trainer = build_trainer_pair(config.vocab_size, config.min_frequency)
        tokenizer.train_from_iterator(sample, trainer=trainer, length=len(sample))
        summary = {
            "tokenizer": str(out),
            "vocab_size": tokenizer.get_vocab_size(),
            "requested_vocab_size": config.vocab_size,
            "padded_vocab_size": padded_vocab_size(
                tokenizer.get_vocab_size(), config.tensor_parallel
            ),
            "tensor_parallel": config.tensor_parallel,
            "eod_id": EOD_ID,
            "alpha": config.alpha,
            "balance": config.balance,
            "sample_texts": len(sample),
            "sample_bytes": int(sum(s["sampled_bytes"] for s in stats.values())),
            "languages": stats,
        }
        if summary["vocab_size"] < config.vocab_size:
            log.warning(
                "the sample supports only %d tokens (asked for %d): more data or lower "
                "min_frequency", summary["vocab_size"], config.vocab_size,
            )  # fmt: skip
        save_hf_tokenizer(tokenizer, out, summary)
        return summary

    params = config.model_dump(mode="json")
    return run.run_step("tokenizer", step, inputs=shards, params=params, outputs=["tokenizer"])


def load_tokenizer(path: Path | str) -> Any:
    """The fast ``tokenizers.Tokenizer`` of a saved folder; errors name the folder."""
    from tokenizers import Tokenizer

    folder = Path(path)
    file = folder / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"{folder}: not a tokenizer folder (no tokenizer.json)")
    return Tokenizer.from_file(str(file))


def eod_id_of(folder: Path | str, tokenizer: Any | None = None) -> int:
    """End-of-document id of a saved tokenizer: its ``eos_token``, else ``</s>``
    (``tokenizer``: the folder's, when already loaded)."""
    folder = Path(folder)
    config_file = folder / "tokenizer_config.json"
    eos = SPECIAL_TOKENS[EOD_ID]
    if config_file.is_file():
        eos_entry = json.loads(config_file.read_text(encoding="utf-8")).get("eos_token") or eos
        eos = eos_entry["content"] if isinstance(eos_entry, dict) else eos_entry
    token_id = (tokenizer or load_tokenizer(folder)).token_to_id(eos)
    if token_id is None:
        raise ValueError(f"{folder}: end-of-document token {eos!r} is not in the vocabulary")
    return int(token_id)
