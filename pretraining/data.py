"""Training data: megatron-core ``GPTDataset`` blends over ``.bin/.idx`` token files.

Input format (written by the tokenizer stage, or by :func:`write_byte_dataset` here): a pair
``PREFIX.bin``/``PREFIX.idx`` made by megatron-core's ``IndexedDatasetBuilder``, one document
per entry, ending with the tokenizer's end-of-document id. A blend is ``{PREFIX: weight}``;
megatron-core's ``BlendedMegatronDatasetBuilder`` builds the train/validation splits of every
prefix and mixes them by weight, with shuffle indices cached next to the data.

Sample ``k`` of step ``s`` is sample ``consumed(s) + k`` of the train split on every layout
(``consumed(s)``: the samples of the steps before, ``s × global_batch`` without batch ramp-up);
data-parallel rank ``d`` takes the ``d``-th contiguous slice of each global batch, so changing
TP/PP/DP changes who computes a sample, never which samples a step sees.

Instruction tuning uses the same loop on a second kind of source, ``data.sft``: a folder of
pre-tokenized, masked and packed rows written by ``bloomkit.finetuning.sft_data``
(:class:`PackedDataset`), whose samples also carry ``segment_ids`` so that the step masks
attention across the examples packed into one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.data_tooling.indexed import VOCAB_FILE
from bloomkit.data_tooling.megatron_format import check_index


class DataConfig(Section):
    """Which token files to train on and how they are split and mixed."""

    blend: dict[str, float] = {}
    """``{path prefix of .bin/.idx: weight}``; weights are normalised by megatron-core."""
    blend_file: Path | None = None
    """Instead of ``blend``: a JSON file of that mapping, as ``bloomkit data tokenize`` writes
    (``RUN/blend.json``: one prefix per language, weights from its ``alpha``)."""
    byte_corpus: Path | None = None
    """Instead of ``blend``: tokenize the text files under this folder as UTF-8 bytes (vocab 256,
    end-of-document 0) into ``RUN/data/bytes.{bin,idx}`` — for demos before a tokenizer exists."""
    split: str = "98,2,0"
    """Train, validation, test shares of every dataset (megatron-core syntax)."""
    eod_id: Annotated[int, Field(ge=0)] = 0
    """End-of-document token id of the tokenizer that wrote the files."""
    sft: Path | None = None
    """Instead of ``blend``: a folder of packed instruction-tuning rows (``train/`` and
    ``valid/`` of ``tokens``, ``labels``, ``loss_mask``, ``segment_ids`` ``.npy`` arrays), as
    written by ``bloomkit finetune sft``."""
    seed: int = 1234
    """Shuffle seed of megatron-core's sample indices (and of the SFT rows, per epoch)."""
    cache_dir: Path | None = None
    """Where megatron-core caches shuffle indices (default: beside the run's data)."""

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [self.blend_file, self.byte_corpus, self.sft]
        if bool(self.blend) + sum(x is not None for x in given) != 1:
            raise ValueError(
                "give exactly one of data.blend (.bin/.idx prefixes), data.blend_file, "
                "data.byte_corpus or data.sft"
            )
        if any(w <= 0 for w in self.blend.values()):
            raise ValueError("every blend weight must be > 0")
        return self

    def resolved_blend(self) -> dict[str, float]:
        """``blend``, or the mapping read from ``blend_file``."""
        if self.blend_file is None:
            return self.blend
        if not self.blend_file.is_file():
            raise FileNotFoundError(f"data.blend_file: {self.blend_file} does not exist")
        try:
            blend = json.loads(self.blend_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.blend_file}:{err.lineno}: not JSON ({err.msg})") from None
        if not isinstance(blend, dict) or not blend:
            raise ValueError(f"{self.blend_file}: expected a non-empty {{prefix: weight}} object")
        bad = [k for k, w in blend.items() if not isinstance(w, int | float) or w <= 0]
        if bad:
            raise ValueError(f"{self.blend_file}: {bad[0]}: expected a weight > 0")
        return {str(k): float(w) for k, w in blend.items()}

    def check_files(self, model_vocab_size: int | None = None) -> None:
        """Refuse a blend whose ``.bin``/``.idx`` files are missing or damaged, naming them,
        or (given the model's ``vocab_size``) written by a tokenizer the model cannot take."""
        blend = self.resolved_blend()
        missing = [
            f"{prefix}{ext}"
            for prefix in blend
            for ext in (".bin", ".idx")
            if not Path(f"{prefix}{ext}").is_file()
        ]
        if missing:
            raise FileNotFoundError(f"data.blend: missing dataset files: {', '.join(missing)}")
        record = self._tokenizer_record()
        for prefix in blend:
            try:
                check_index(prefix, np.dtype(record["dtype"]) if record else None)
            except ValueError as err:
                raise ValueError(f"data.blend: {err}") from None
        if record and model_vocab_size is not None:
            self._check_tokenizer(record, model_vocab_size)
        if self.sft is not None and not (self.sft / "train" / "tokens.npy").is_file():
            raise FileNotFoundError(
                f"data.sft: no packed rows in {self.sft}/train/; prepare them with "
                "`bloomkit finetune sft`"
            )

    def _tokenizer_record(self) -> dict | None:
        """The ``vocab.json`` that ``bloomkit data tokenize`` writes beside ``blend_file``."""
        path = self.blend_file.parent / VOCAB_FILE if self.blend_file else None
        if path is None or not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def _check_tokenizer(self, record: dict, model_vocab_size: int) -> None:
        where = self.blend_file.parent / VOCAB_FILE
        problems = []
        if record["vocab_size"] > model_vocab_size:
            problems.append(
                f"the tokenizer ({record['tokenizer']}) has {record['vocab_size']} tokens, more "
                f"than model.vocab_size {model_vocab_size}"
            )
        if record["eod_id"] != self.eod_id:
            problems.append(
                f"the data ends documents with id {record['eod_id']}, data.eod_id is {self.eod_id}"
            )
        if problems:
            raise ValueError(f"{where}: {'; '.join(problems)}")


@dataclass
class TokenIds:
    """The two tokenizer facts megatron-core's ``GPTDataset`` needs."""

    vocab_size: int
    eod: int

    @property
    def unique_identifiers(self) -> dict[str, int]:
        """What megatron-core hashes into the cache key of a dataset's indices."""
        return {"class": "TokenIds", "vocab_size": self.vocab_size, "eod": self.eod}


def write_byte_dataset(texts: Iterable[str], prefix: Path, eod: int = 0) -> int:
    """Write UTF-8 bytes of each text as one document (+ ``eod``) to ``prefix.{bin,idx}``."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix.parent.mkdir(parents=True, exist_ok=True)
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=np.uint16)
    documents = 0
    for text in texts:
        ids = [b for b in text.encode("utf-8") if b != eod] + [eod]
        builder.add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
        documents += 1
    builder.finalize(f"{prefix}.idx")
    return documents


def byte_corpus_texts(folder: Path) -> list[str]:
    """Every ``.txt``/``.tsv``/``.py``/``.md`` file under ``folder``, in sorted order."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".txt", ".tsv", ".py", ".md"})
    if not files:
        raise FileNotFoundError(f"data.byte_corpus: no .txt/.tsv/.py/.md files under {folder}")
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


class PackedDataset:
    """Packed rows (``tokens``, ``labels``, ``loss_mask``, ``segment_ids``, each
    ``[rows, seq_length]``) as an endless sample sequence: sample ``i`` is row
    ``perm_e[i mod rows]`` of epoch ``e = i // rows``, with a fresh seeded permutation per epoch
    (identity when ``shuffle`` is off, for evaluation)."""

    def __init__(self, folder: Path, seq_length: int, seed: int, shuffle: bool = True):
        self.arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r")
            for name in ("tokens", "labels", "loss_mask", "segment_ids")
        }
        self.rows, width = self.arrays["tokens"].shape
        if width != seq_length:
            raise ValueError(
                f"{folder}: rows of {width} tokens, but model.seq_length is {seq_length}; "
                "prepare the SFT data again with this seq_length"
            )
        self.seed, self.shuffle = seed, shuffle
        self._perms: dict[int, np.ndarray] = {}

    def _row(self, index: int) -> int:
        epoch, offset = divmod(index, self.rows)
        if not self.shuffle:
            return offset
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.rows)}
        return int(self._perms[epoch][offset])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self._row(index)
        sample = {k: torch.from_numpy(np.array(v[row], dtype=np.int64)) for k, v in
                  self.arrays.items()}  # fmt: skip
        sample["loss_mask"] = sample["loss_mask"].float()
        return sample


def check_splits(prefixes: list[str], split: str, samples: dict[str, int]) -> None:
    """Refuse a dataset whose share of a needed split holds no document: megatron-core would
    loop forever looking for tokens in it (seen with an 8-document language at ``98,2,0``)."""
    from megatron.core.datasets.blended_megatron_dataset_config import parse_and_normalize_split
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    shares = parse_and_normalize_split(split)
    bounds = [sum(shares[:i]) for i in range(len(shares) + 1)]
    for prefix in prefixes:
        documents = IndexedDataset(prefix).document_indices.shape[0] - 1
        for i, (name, wanted) in enumerate(samples.items()):
            count = round(bounds[i + 1] * documents) - round(bounds[i] * documents)
            if wanted > 0 and count <= 0:
                raise ValueError(
                    f"data: {prefix}: {documents} documents leave its {name} share of "
                    f"data.split {split!r} empty; give that split a larger share, add documents, "
                    "or leave this dataset out of the blend"
                )


def _gpt_config(data: DataConfig, blend: dict[str, float] | None, prefixes: list[str], *,
                vocab_size: int, seq_length: int, data_dir: Path) -> object:  # fmt: skip
    """megatron-core's dataset config over ``prefixes`` (weights ``blend``; None = one dataset)."""
    from megatron.core.datasets.gpt_dataset import GPTDatasetConfig

    return GPTDatasetConfig(
        random_seed=data.seed,
        sequence_length=seq_length,
        blend=(prefixes, [blend[p] for p in prefixes] if blend else None),
        split=data.split,
        path_to_cache=str(data.cache_dir or data_dir / "index-cache"),
        tokenizer=TokenIds(vocab_size=vocab_size, eod=data.eod_id),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,
        mid_level_dataset_surplus=0.05,
    )


def _blend(data: DataConfig, data_dir: Path) -> dict[str, float]:
    """``{prefix: weight}`` to train on (the byte dataset's prefix for ``data.byte_corpus``)."""
    if data.byte_corpus is not None:
        return {str(data_dir / "bytes"): 1.0}
    return data.resolved_blend()


def build_datasets(
    data: DataConfig,
    *,
    vocab_size: int,
    seq_length: int,
    train_samples: int,
    valid_samples: int,
    data_dir: Path,
) -> tuple[object, object | None]:
    """megatron-core train and validation datasets (call on every rank, after init_parallel)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset

    if data.sft is not None:
        valid_dir = data.sft / "valid"
        valid = (
            PackedDataset(valid_dir, seq_length, data.seed, shuffle=False)
            if (valid_dir / "tokens.npy").is_file()
            else None
        )
        return PackedDataset(data.sft / "train", seq_length, data.seed), valid
    blend = _blend(data, data_dir)
    prefixes = list(blend)
    check_splits(prefixes, data.split, {"train": train_samples, "validation": valid_samples})
    config = _gpt_config(
        data, blend, prefixes, vocab_size=vocab_size, seq_length=seq_length, data_dir=data_dir
    )
    train, valid, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [train_samples, valid_samples, 0], lambda: True, config
    ).build()
    return train, valid


def language_valid_datasets(
    data: DataConfig, *, vocab_size: int, seq_length: int, valid_samples: int, data_dir: Path
) -> dict[str, object]:
    """``{language: validation split of that dataset alone}`` for a blend of several datasets
    (the language is the file name of the prefix, e.g. ``RUN/datasets/fra_Latn`` → ``fra_Latn``);
    empty for one dataset or SFT rows. Each holds ``valid_samples`` samples, whatever its weight
    in the blend, so every language is scored on as many tokens."""
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset

    if data.sft is not None or len(prefixes := list(_blend(data, data_dir))) < 2:
        return {}
    names = [Path(p).name for p in prefixes]
    if len(set(names)) < len(names):  # same file name in two folders: name them by full prefix
        names = prefixes
    sets = {}
    for name, prefix in zip(names, prefixes, strict=True):
        config = _gpt_config(
            data, None, [prefix], vocab_size=vocab_size, seq_length=seq_length, data_dir=data_dir
        )
        sets[name] = BlendedMegatronDatasetBuilder(
            GPTDataset, [0, valid_samples, 0], lambda: True, config
        ).build()[1]
    return sets


def micro_batches(
    dataset: object,
    first_sample: int,
    *,
    global_batch: int,
    micro_batch: int,
    dp_rank: int,
    dp_size: int,
) -> list[dict[str, torch.Tensor]]:
    """This DP rank's micro-batches of the global batch of ``global_batch`` samples starting at
    sample ``first_sample`` (see the module doc)."""
    per_rank = global_batch // dp_size
    start = first_sample + dp_rank * per_rank
    batches = []
    for first in range(start, start + per_rank, micro_batch):
        samples = [dataset[i] for i in range(first, first + micro_batch)]
        keys = [k for k in ("tokens", "labels", "loss_mask", "segment_ids") if k in samples[0]]
        batches.append({key: torch.stack([s[key] for s in samples]) for key in keys})
    return batches
