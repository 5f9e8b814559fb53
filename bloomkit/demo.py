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
from bloomkit.rundir import RunDir


class StageConfig(Section):
    """A stage of the demo: its config file and overrides (``KEY.PATH=VALUE``) on top."""

    config: Path
    set: list[str] = []


class DemoConfig(Section):
    """What the demo runs on, and the config of each stage."""

    sample: Path | None = None
    """The sample folder (default: the one shipped inside the package)."""


Stage = tuple[str, Callable[[], dict[str, Any]], list[Path]]


def stage_config(model: type[Section], stage: StageConfig, wiring: list[str]) -> Any:
    """Load a stage's config with the demo's wiring, then the user's overrides."""
    return load_config(model, stage.config, [*wiring, *stage.set])


def run_demo(config: DemoConfig, run: RunDir) -> list[dict[str, Any]]:
    """Run every stage, print the summary table, return its rows."""
    sample = config.sample or sample_dir()
    stages: list[Stage] = [
        ("sample", lambda: write_raw_corpus(sample, run / "raw"), [sample]),
    ]
    rows = []
    for name, fn, inputs in stages:
        log.info("demo stage: %s", name)
        start = time.perf_counter()
        summary = run.run_step(name, fn, inputs=inputs, params=config.model_dump(mode="json"))
        rows.append({"stage": name, **summary, "seconds": round(time.perf_counter() - start, 2)})
    summary_table(f"bloomkit demo — {run.path}", rows)
    return rows
