"""What a run reports: validation loss per language of a blend, and TensorBoard event files
that hold the same values as ``metrics.jsonl``."""

from __future__ import annotations

import json

import pytest

from bloomkit.pretraining.train import PretrainConfig
from tests.pretraining.runs import run, tiny_config

STEPS = 8


def blend_config(blend_file, **train) -> PretrainConfig:
    return tiny_config({"blend_file": str(blend_file)}, steps=STEPS, optim={"lr": 1e-2},
                       eval_batches=2, eval_interval=4, **train)  # fmt: skip


@pytest.fixture(scope="module")
def blend_run(language_blend, tmp_path_factory):
    out = tmp_path_factory.mktemp("blend-run")
    summary = run(blend_config(language_blend), out)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return out, summary, rows


def test_validation_loss_per_language_in_log_and_summary(blend_run):
    _, summary, rows = blend_run
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    scored = [r for r in rows if "valid_loss" in r]
    assert [r["step"] for r in scored] == [4, 8]  # eval_interval 4, and the last step
    for row in scored:
        assert set(row["valid_loss_per_language"]) == {"count", "noise"}
    final = scored[-1]["valid_loss_per_language"]
    assert summary["valid_loss_per_language"] == final
    assert summary["valid_loss"] == scored[-1]["valid_loss"]
    # random tokens stay near log(vocab); the counting language is learnt
    assert final["noise"] > final["count"] + 0.5, final
    assert final["count"] < scored[0]["valid_loss_per_language"]["count"]
    assert min(final.values()) < summary["valid_loss"] < max(final.values())


def test_one_dataset_no_tensorboard_no_saving(token_prefix, tmp_path):
    config = tiny_config(token_prefix, steps=1, checkpoint={"save": False}, tensorboard=False)
    summary = run(config, tmp_path)
    assert summary["valid_loss"] is not None and summary["valid_loss_per_language"] is None
    assert not (tmp_path / "tensorboard").exists()
    assert summary["checkpoint"] is None and not list(tmp_path.glob("checkpoints/step-*"))


def test_tensorboard_scalars_match_the_jsonl_log(blend_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _, rows = blend_run
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "valid/loss",
            "valid/loss/count", "valid/loss/noise"} <= scalars  # fmt: skip

    def series(tag):
        return {e.step: e.value for e in events.Scalars(tag)}

    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "global_batch_size"):
        expected = {r["step"]: r[key] for r in rows}
        assert series(f"train/{key}") == pytest.approx(expected, rel=1e-6), key
    scored = [r for r in rows if "valid_loss" in r]
    assert series("valid/loss") == pytest.approx({r["step"]: r["valid_loss"] for r in scored})
    for language in ("count", "noise"):
        expected = {r["step"]: r["valid_loss_per_language"][language] for r in scored}
        assert series(f"valid/loss/{language}") == pytest.approx(expected, rel=1e-6), language
