"""Fixtures of the SFT and LoRA tests: the real Alpaca seeds, a multilingual set made from them,
a small BPE tokenizer trained on them, and a tiny random ``BloomForCausalLM`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# the instruction of every 7th seed keeps English framing, the others get these templates
LANGUAGE_TEMPLATES = ["alpaca-fr", "alpaca-es", "alpaca-zhs", "alpaca-ar", "alpaca-hi", "alpaca-sw"]


@pytest.fixture(scope="session")
def seeds(shared_data) -> Path:
    """The 175 Alpaca seed tasks (self-instruct format, Apache-2.0)."""
    return shared_data / "finetune" / "alpaca_seed_tasks.jsonl"


def write_multilingual_seeds(seeds: Path, out: Path) -> Path:
    """The seeds in Alpaca format, each row naming a template in another language (rotating
    through :data:`LANGUAGE_TEMPLATES`, every 7th row ``alpaca``)."""
    rows = []
    for i, line in enumerate(seeds.read_text(encoding="utf-8").splitlines()):
        task = json.loads(line)
        instance = task["instances"][0]
        cycle = [*LANGUAGE_TEMPLATES, "alpaca"]
        rows.append(
            {
                "instruction": task["instruction"],
                "input": instance["input"],
                "output": instance["output"],
                "template": cycle[i % len(cycle)],
            }
        )
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return out


@pytest.fixture(scope="session")
def multilingual_seeds(seeds, tmp_path_factory) -> Path:
    return write_multilingual_seeds(seeds, tmp_path_factory.mktemp("ml") / "seeds-ml.jsonl")


@pytest.fixture(scope="session")
def sft_tokenizer(seeds, tmp_path_factory) -> Path:
    """A byte-level BPE (vocab 512) trained on the seeds and the built-in templates, saved as a
    ``PreTrainedTokenizerFast`` folder; special ids as BLOOM's (``<unk>`` 0, ``<s>`` 1,
    ``</s>`` 2 = end of sequence, ``<pad>`` 3)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from bloomkit.finetuning.templates import builtin_templates

    texts = [seeds.read_text(encoding="utf-8")]
    texts += [t.prompt + (t.prompt_with_input or "") for t in builtin_templates().values()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    folder = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    ).save_pretrained(folder)
    return folder


def save_tiny_bloom(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer, hidden-64, 4-head ``BloomForCausalLM`` with the tokenizer beside it."""
    import torch
    from transformers import AutoTokenizer, BloomConfig, BloomForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = BloomConfig(
        vocab_size=len(tokenizer), hidden_size=64, n_layer=2, n_head=4,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )  # fmt: skip
    BloomForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bloom(sft_tokenizer, tmp_path_factory) -> Path:
    return save_tiny_bloom(tmp_path_factory.mktemp("tiny-bloom"), sft_tokenizer)
