"""Fixtures of the eval tests: a tiny random BLOOM in a Hugging Face folder, built on the spot,
its eval results, and for the leaderboard's browser tests the system Chromium and a folder
that keeps their screenshots."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SAMPLE_LANGS = ("en", "fr", "zhs", "hi", "sw", "yo")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS_ENV = "BLOOMKIT_TEST_ARTIFACTS"
"""Folder for test artifacts (default ``<repo>/test-artifacts``, git-ignored)."""
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


def build_tiny_bloom(folder: Path, sib200: Path, *, seed: int = 0, vocab: int = 512) -> Path:
    """A random-init ``BloomForCausalLM`` (2 layers, hidden 64) and a byte-level BPE trained on
    the SIB-200 train text of a few languages, saved as a Hugging Face model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import BloomConfig, BloomForCausalLM, PreTrainedTokenizerFast

    texts = []
    for lang in SAMPLE_LANGS:
        with open(sib200 / lang / "train.tsv", encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            texts.extend(row["text"] for row in rows)
    special = ["<unk>", "<s>", "</s>", "<pad>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    torch.manual_seed(seed)
    config = BloomConfig(
        vocab_size=len(fast),
        hidden_size=64,
        n_layer=2,
        n_head=4,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = BloomForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sib200_dir(shared_data) -> Path:
    return shared_data / "sib200"


@pytest.fixture(scope="session")
def tiny_bloom(tmp_path_factory, sib200_dir) -> Path:
    """A tiny random BLOOM model folder (seed 0), shared by the whole session."""
    return build_tiny_bloom(tmp_path_factory.mktemp("tiny-bloom"), sib200_dir, seed=0)


@pytest.fixture(scope="session")
def tiny_bloom_other(tmp_path_factory, sib200_dir) -> Path:
    """Same architecture and tokenizer, different random weights (seed 1)."""
    return build_tiny_bloom(tmp_path_factory.mktemp("tiny-bloom-1"), sib200_dir, seed=1)


FEW_TASKS = ["sib200_en", "sib200_hi", "sib200_5shot_sw", "flores_bpb_en", "flores_bpb_zhs"]


@pytest.fixture(scope="session")
def few_results(tmp_path_factory, tiny_bloom, sib200_dir) -> Path:
    """results.json of the tiny model on a few tasks (limit 20), written by ``run_eval``."""
    from bloomkit.eval.runner import EvalConfig, run_eval
    from bloomkit.rundir import RunDir

    config = EvalConfig(
        model=tiny_bloom, suite=None, tasks=FEW_TASKS, limit=20, data_dir=sib200_dir
    )
    run = RunDir(tmp_path_factory.mktemp("run-a"), "eval run", config)
    run_eval(config, run)
    return run / "results.json"


@pytest.fixture(scope="session")
def few_results_other(tmp_path_factory, tiny_bloom_other, sib200_dir) -> Path:
    """The same tasks scored with the seed-1 model."""
    from bloomkit.eval.results import save
    from bloomkit.eval.runner import EvalConfig, evaluate

    config = EvalConfig(
        model=tiny_bloom_other, suite=None, tasks=FEW_TASKS, limit=20, data_dir=sib200_dir
    )
    return save(evaluate(config), tmp_path_factory.mktemp("run-b") / "results.json")


def chromium_path() -> str:
    for candidate in ("chromium-headless-shell", "chromium"):
        if found := shutil.which(candidate):
            return found
    pytest.fail("no system Chromium: run `make system-deps` (scripts/install-system-deps.sh)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (one per test module, which opens its
    own pages; Playwright's sync API allows one instance at a time in a thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def leaderboard_artifacts() -> Path:
    """``$BLOOMKIT_TEST_ARTIFACTS/leaderboard`` (default ``test-artifacts/leaderboard``)."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO / "test-artifacts") / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(leaderboard_artifacts) -> Callable[..., Path]:
    """``screenshot(page, "name", **options)``: save ``name.png`` to the artifacts folder and
    check it is a real picture of a page (PNG of at least 400×200 pixels, not one flat colour)."""
    from PIL import Image

    def take(page: Any, name: str, **options: Any) -> Path:
        path = leaderboard_artifacts / f"{name}.png"
        path.unlink(missing_ok=True)
        page.screenshot(path=str(path), **options)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        with Image.open(path) as image:
            assert image.width >= 400 and image.height >= 200, (path, image.size)
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 10, f"{path}: (nearly) one flat colour"
        return path

    return take
