"""``pretrain(config, run)``: prepare data, launch the ranks, collect the summary and the plot.

The one function the CLI and the demo call. It works the same whether the caller is a plain
process (it starts ``tp × pp × dp`` local ranks itself when that is more than one) or a
``torchrun`` rank (it runs the loop in place). Outputs in the run directory::

    RUN/data/           byte dataset (when data.byte_corpus) and megatron-core index caches
    RUN/metrics.jsonl   one line per step: loss, lr, grad_norm, tokens_per_s, tflops, mfu, …
                        (+ valid_loss, valid_loss_per_language after a validation)
    RUN/tensorboard/    the same values as TensorBoard scalars (``train.tensorboard``)
    RUN/summary.json    first/final/validation loss (overall, per language), throughput, layout
    RUN/loss.png        the loss curve
    RUN/checkpoints/    ``step-N`` dist checkpoints and ``latest`` (:mod:`.checkpoint`)
    RUN/finished.json   written after the last step: calling again returns at once

Calling ``pretrain`` again on the same run directory resumes from the newest intact checkpoint.
Signals that stop training (``checkpoint.exit_signals``) sent to this process are forwarded to
the local ranks it started, which save at the next step boundary and exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bloomkit.console import is_quiet, log, log_to_file, setup_logging
from bloomkit.pretraining import launch
from bloomkit.pretraining.data import byte_corpus_texts, write_byte_dataset
from bloomkit.pretraining.stopping import job_start
from bloomkit.pretraining.train import PretrainConfig, train_rank
from bloomkit.rundir import RunDir, atomic_path


def prepare_data(config: PretrainConfig, out: Path, *, write: bool = True) -> None:
    """Check the blend's files, or write the byte dataset once before the ranks read it.

    The byte dataset is written under a temporary prefix and renamed (``.bin`` then ``.idx``),
    so a rank that does not ``write`` (torchrun ranks other than 0) waits for the ``.idx``.
    """
    config.data.check_files(config.model.vocab_size)
    if config.data.byte_corpus is None:
        return
    prefix = out / "data" / "bytes"
    idx = Path(f"{prefix}.idx")
    if not write:
        deadline = time.monotonic() + 600
        while not idx.is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"rank 0 did not write {idx} within 10 minutes")
            time.sleep(0.5)
        return
    if idx.is_file():
        return
    tmp = prefix.with_name(f".bytes.tmp-{os.getpid()}")
    documents = write_byte_dataset(
        byte_corpus_texts(config.data.byte_corpus), tmp, config.data.eod_id
    )
    os.replace(f"{tmp}.bin", f"{prefix}.bin")
    os.replace(f"{tmp}.idx", idx)
    log.info("byte dataset: %d documents → %s.{bin,idx}", documents, prefix)


def _rank_entry(config_json: dict[str, Any], out: str, quiet: bool) -> None:
    from bloomkit.pretraining.parallel import destroy_parallel

    if os.environ.get("RANK") == "0":
        setup_logging(quiet)
        log_to_file(Path(out) / "logs" / "bloomkit.log")
    train_rank(PretrainConfig.model_validate(config_json), Path(out))
    destroy_parallel(process_group=True)


def plot_losses(metrics: Path, png: Path) -> None:
    """Loss against step from ``metrics.jsonl`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


@contextmanager
def forward_signals(names: list[str]) -> Iterator[None]:
    """While local ranks run, pass these signals on to them instead of dying."""
    import multiprocessing

    def forward(signum: int, frame: object) -> None:
        log.warning("received %s: forwarding to the ranks", signal.Signals(signum).name)
        for child in multiprocessing.active_children():
            if child.pid is not None:
                os.kill(child.pid, signum)

    previous = {getattr(signal, n): signal.signal(getattr(signal, n), forward) for n in names}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def finished_summary(config: PretrainConfig, out: Path) -> dict[str, Any] | None:
    """The summary of a run that already trained ``train.steps`` steps or stopped early on its
    validation loss, else None."""
    marker, summary = out / "finished.json", out / "summary.json"
    if not (marker.is_file() and summary.is_file()):
        return None
    finished = json.loads(marker.read_text(encoding="utf-8"))
    if finished["steps"] < config.train.steps and not finished.get("early_stopped"):
        return None
    return json.loads(summary.read_text(encoding="utf-8"))


def pretrain(config: PretrainConfig, run: RunDir) -> dict[str, Any]:
    """Train ``config`` in ``run`` (resuming it); return the summary (also ``RUN/summary.json``)."""
    out = run.path
    job_start()
    if (done := finished_summary(config, out)) is not None:
        log.info("%s: all %d steps done already (finished.json)", out, config.train.steps)
        return done
    world = config.parallel.world_size
    if launch.is_launched():  # under torchrun: this process is one rank
        prepare_data(config, out, write=int(os.environ["RANK"]) == 0)
        summary = train_rank(config, out)
    else:
        prepare_data(config, out)
        if world == 1:
            from bloomkit.pretraining.parallel import destroy_parallel

            with launch.single_process_env():
                summary = train_rank(config, out)
                destroy_parallel(process_group=True)
        else:
            log.info("launching %d local processes (tp × pp × dp)", world)
            with forward_signals(config.checkpoint.exit_signals):
                launch.spawn(
                    _rank_entry, world, config.model_dump(mode="json"), str(out), is_quiet()
                )
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    if not launch.is_launched() or int(os.environ["RANK"]) == 0:
        plot_losses(out / "metrics.jsonl", out / "loss.png")
    return summary
