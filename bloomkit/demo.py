"""`bloomkit demo`: every stage that exists, in order, on the sample that ships with bloomkit.

Stages join here as they are built; the demo never fakes one. The end-to-end test runs this
same function with fewer steps (``tests/test_demo.py``), so ``make demo`` cannot rot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bloomkit.config import Section
from bloomkit.console import log, summary_table
from bloomkit.data_tooling.sample import sample_dir, write_raw_corpus
from bloomkit.rundir import RunDir


class DemoConfig(Section):
    """What the demo runs on; each stage adds its own section as it joins."""

    sample: Path | None = None
    """The sample folder (default: the one shipped inside the package)."""


def run_demo(config: DemoConfig, run: RunDir) -> list[dict[str, Any]]:
    """Run every stage, print the summary table, return its rows."""
    sample = config.sample or sample_dir()
    stages: list[tuple[str, Callable[[], dict[str, Any]], list[Path]]] = [
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
