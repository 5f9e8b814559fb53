"""`bloomkit demo`: every stage that exists, in order, on the sample that ships with bloomkit.

Stages join here as they are built; the demo never fakes one. Each stage runs from its own
config file (the same file `bloomkit <stage> … CONFIG` takes) plus overrides: those the demo
makes to wire one stage's output into the next, then the user's ``set`` list. The end-to-end
test runs this same function with fewer steps (``tests/bloomkit/test_demo.py``), so
``make demo`` cannot rot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bloomkit.config import Section, load_config
from bloomkit.console import log, summary_table
from bloomkit.data_tooling.sample import sample_dir, write_raw_corpus
from bloomkit.pretraining.pretrain import pretrain
from bloomkit.pretraining.train import PretrainConfig
from bloomkit.rundir import RunDir


class StageConfig(Section):
    """A stage of the demo: its config file and overrides (``KEY.PATH=VALUE``) on top."""

    config: Path
    set: list[str] = []


class DemoConfig(Section):
    """What the demo runs on, and the config of each stage."""

    sample: Path | None = None
    """The sample folder (default: the one shipped inside the package)."""
    pretrain: StageConfig = StageConfig(config=Path("configs/pretrain/demo.yaml"))


Stage = tuple[str, Callable[[], dict[str, Any]], list[Path], dict[str, Any]]


def stage_config(model: type[Section], stage: StageConfig, wiring: list[str]) -> Any:
    """Load a stage's config with the demo's wiring, then the user's overrides."""
    return load_config(model, stage.config, [*wiring, *stage.set])


def run_demo(config: DemoConfig, run: RunDir) -> list[dict[str, Any]]:
    """Run every stage, print the summary table, return its rows."""
    sample = config.sample or sample_dir()
    pretrain_config = stage_config(
        PretrainConfig, config.pretrain, [f"data.byte_corpus={sample / 'sib200'}"]
    )
    stages: list[Stage] = [
        ("sample", lambda: write_raw_corpus(sample, run / "raw"), [sample], {}),
        (
            "pretrain",
            lambda: pretrain(
                pretrain_config, RunDir(run / "pretrain", "pretrain", pretrain_config)
            ),
            [sample],
            pretrain_config.model_dump(mode="json"),
        ),
    ]
    rows = []
    for name, fn, inputs, params in stages:
        log.info("demo stage: %s", name)
        start = time.perf_counter()
        summary = run.run_step(name, fn, inputs=inputs, params=params)
        rows.append(
            {
                "stage": name,
                "result": headline(summary),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    summary_table(f"bloomkit demo — {run.path}", rows)
    return rows


def headline(summary: dict[str, Any], limit: int = 5) -> str:
    """The first few scalar results of a stage's summary, for the demo's table."""
    items = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in summary.items()
        if isinstance(value, int | float | str) and not isinstance(value, bool)
    ]
    return ", ".join(items[:limit])
