"""Export of a real training checkpoint (TP2×PP2, a few steps): transformers loads and generates
with the megatron logits (1e-4); its model card carries the data card, eval results, languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BloomForCausalLM
from typer.testing import CliRunner

from bloomkit.eval.results import (
    EvalResults,
    GroupResult,
    ModelInfo,
    Provenance,
    Score,
    TaskResult,
    save,
)
from bloomkit.pretraining.checkpoint import read_meta
from bloomkit.pretraining.convert import checkpoint_logits, export_hf
from bloomkit.pretraining.model_card import card_languages
from bloomkit.pretraining.parallel import ParallelConfig
from tests.pretraining.runs import run, tiny_config

STEPS = 2
LAYOUT = {"tensor_parallel": 2, "pipeline_parallel": 2}
ATOL = 1e-4
SCORES = {"sib200": ("acc", {"en": 0.6, "hi": 0.7}), "flores_bpb": ("bits_per_byte", {"en": 1.5})}


@pytest.fixture(scope="module")
def trained(token_prefix, tmp_path_factory) -> Path:
    """The last checkpoint of a 2-step pretraining run at TP2 × PP2 (4 gloo processes)."""
    out = tmp_path_factory.mktemp("pretrain")
    summary = run(tiny_config(token_prefix, steps=STEPS, parallel=LAYOUT), out)
    assert summary["steps"] == STEPS
    return out / "checkpoints" / f"step-{STEPS}"


@pytest.fixture(scope="module")
def data_card(tmp_path_factory) -> Path:
    """The data card of a small corpus run (six languages of the shipped sample)."""
    from bloomkit.data_tooling.pipeline.run import run_corpus
    from bloomkit.rundir import RunDir
    from tests.data_tooling.pipeline.corpus_fixtures import make_config, small_inputs

    root = tmp_path_factory.mktemp("corpus")
    config = make_config(small_inputs(root / "raw"))
    summary = run_corpus(config, RunDir(root / "run", "test", config))
    return Path(summary["report"]["data_card"])


@pytest.fixture(scope="module")
def eval_results(tmp_path_factory) -> Path:
    """A sealed results.json, written through the eval store's schema as ``run_eval`` does."""
    tasks, groups = {}, {}
    for bench, (metric, by_lang) in SCORES.items():
        for lang, value in by_lang.items():
            tasks[f"{bench}_{lang}"] = TaskResult(
                task=f"{bench}_{lang}", benchmark=bench, lang=lang, version="1.0",
                num_fewshot=0, n_samples=20, config_sha256="0" * 64,
                metrics={metric: Score(value=value, stderr=0.01, stderr_source="lm-eval")},
            )  # fmt: skip
        mean = sum(by_lang.values()) / len(by_lang)
        groups[bench] = GroupResult(group=bench, metrics={metric: Score(value=mean)},
                                    tasks=[f"{bench}_{lang}" for lang in by_lang])  # fmt: skip
    provenance = Provenance(
        bloomkit_version="0.1.0", lm_eval_version="0.4.13", packages={},
        model=ModelInfo(path="/models/tiny", model_files={}, tokenizer_files={}),
        task_configs={t: "c" * 64 for t in tasks}, data_dir=None, data_files={}, split="dev",
        limit=20, num_fewshot=None, seeds={"random": 0}, batch_size=1, device="cpu",
        hardware={}, started="2026-01-01T00:00:00+00:00", seconds=1.0,
        reproduce="lm_eval run --model hf --model_args pretrained=/models/tiny",
    )  # fmt: skip
    records = EvalResults(suite=None, tasks=tasks, groups=groups, provenance=provenance)
    return save(records, tmp_path_factory.mktemp("eval") / "results.json")


def test_training_checkpoint_exports_with_the_megatron_logits(trained, tmp_path):
    meta = read_meta(trained)
    assert meta["kind"] == "train" and meta["step"] == STEPS
    assert meta["parallel"] == {**LAYOUT, "data_parallel": 1}
    out = export_hf(trained, tmp_path / "hf")
    model = BloomForCausalLM.from_pretrained(out).eval()
    tokens = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(tokens).logits
    megatron = checkpoint_logits(trained, tokens, ParallelConfig(**LAYOUT))
    assert logits.shape == megatron.shape == (2, 32, 256)
    assert (logits - megatron).abs().max().item() < ATOL
    prompt = tokens[:1, :8]
    generated = model.generate(prompt, max_new_tokens=6, do_sample=False)
    assert generated.shape == (1, 14) and torch.equal(generated[:, :8], prompt)
    # greedy: the first new token is an argmax (to 1e-4) of the megatron logits after the prompt
    after = megatron[0, 7]
    assert (after.max() - after[generated[0, 8]]).item() < ATOL
    assert json.loads((out / "bloomkit.json").read_text())["step"] == STEPS
    assert f"| steps | {STEPS} |" in (out / "README.md").read_text()


def front_matter(card: str) -> dict:
    _, front, _ = card.split("---\n", 2)
    return yaml.safe_load(front)


def test_model_card_from_data_card_eval_results_and_languages(
    trained, data_card, eval_results, tmp_path
):
    out = export_hf(trained, tmp_path / "hf", data_card=data_card, eval_results=eval_results,
                    languages=["en", "hi", "yo"])  # fmt: skip
    card = (out / "README.md").read_text()
    assert front_matter(card)["language"] == ["en", "hi", "yo"]
    assert front_matter(card)["license_link"] == "LICENSE-RAIL"
    assert f"From the corpus data card (`{data_card}`)" in card
    assert "## Data card" in card and "### Languages" in card and "`sib200-flores`" in card
    assert "| flores_bpb | bits_per_byte | 1.5000 |" in card
    assert "| sib200 | acc | 0.6500 |" in card
    assert "## Intended uses" in card and "## Restricted uses" in card
    assert "use-based restrictions" in card.split("## Restricted uses", 1)[1]
    assert "Responsible AI" in (out / "LICENSE-RAIL").read_text()


def test_cli_takes_languages_from_the_data_card(trained, data_card, eval_results, tmp_path):
    from bloomkit.cli import app

    out = tmp_path / "hf"
    args = ["export", "hf", str(trained), str(out), "--data-card", str(data_card),
            "--eval-results", str(eval_results)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    languages = front_matter((out / "README.md").read_text())["language"]
    assert {"en", "hi", "zhs", "ar", "yo", "sw"} <= set(languages)
    assert languages == card_languages(data_card.read_text()) and "unknown" not in languages
    again = CliRunner().invoke(app, [*args[:3], str(tmp_path / "two"), "--language", "fr",
                                     "--language", "sw"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert front_matter((tmp_path / "two" / "README.md").read_text())["language"] == ["fr", "sw"]
