"""`bloomkit demo`: every stage that exists, in order, on the sample that ships with bloomkit.

Stages join here as they are built; the demo never fakes one. Each stage runs from its own
config file (the same file `bloomkit <stage> … CONFIG` takes) plus overrides: those the demo
makes to wire one stage's output into the next, then the user's ``set`` list. The end-to-end
test runs this same function with fewer steps (``tests/bloomkit/test_demo.py``), so
``make demo`` cannot rot.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bloomkit.config import Section, apply_overrides, load_yaml, validate
from bloomkit.console import is_quiet, log, summary_table
from bloomkit.data_tooling.indexed import TokenizeConfig, tokenize_corpus
from bloomkit.data_tooling.pipeline.config import DataRunConfig
from bloomkit.data_tooling.pipeline.run import run_corpus
from bloomkit.data_tooling.sample import sample_dir, write_raw_corpus
from bloomkit.data_tooling.tokenizer.train import EOD_ID, TokenizerTrainConfig, train_tokenizer
from bloomkit.eval.leaderboard.build import build_site
from bloomkit.eval.leaderboard.submit import submit
from bloomkit.eval.runner import EvalConfig, run_eval
from bloomkit.finetuning.sft import SFTConfig, finetune_sft
from bloomkit.pretraining.convert import export_hf
from bloomkit.pretraining.pretrain import pretrain
from bloomkit.pretraining.train import PretrainConfig
from bloomkit.rundir import RunDir


class StageConfig(Section):
    """A stage of the demo: its config file and overrides (``KEY.PATH=VALUE``) on top."""

    config: Path
    set: list[str] = []


class DemoConfig(Section):
    """What the demo runs on, and the config of each stage.

    A relative stage ``config`` is relative to the demo config's folder; one given with
    ``--set`` is relative to the working directory, like any path typed on the command line.
    """

    sample: Path | None = None
    """The sample folder (default: the one shipped inside the package)."""
    data: StageConfig = StageConfig(config=Path("data/demo.yaml"))
    tokenizer: StageConfig = StageConfig(config=Path("data/tokenizer-demo.yaml"))
    tokenize: StageConfig = StageConfig(config=Path("data/tokenize-demo.yaml"))
    pretrain: StageConfig = StageConfig(config=Path("pretrain/demo.yaml"))
    sft: StageConfig = StageConfig(config=Path("finetune/sft-demo.yaml"))
    eval: StageConfig = StageConfig(config=Path("eval/demo.yaml"))


STAGES = ("data", "tokenizer", "tokenize", "pretrain", "sft", "eval")
SectionT = TypeVar("SectionT", bound=Section)
Stage = tuple[str, Callable[[], dict[str, Any]], list[Path], dict[str, Any]]


def load_demo_config(path: Path, overrides: Iterable[str] = ()) -> DemoConfig:
    """Load the demo config and anchor its stage config paths (see :class:`DemoConfig`)."""
    data, lines = load_yaml(path)
    from_cli = apply_overrides(data, overrides)
    config = validate(DemoConfig, data, source=str(path), lines=lines, override_sources=from_cli)
    for name in STAGES:
        if not {name, f"{name}.config"} & from_cli.keys():
            stage: StageConfig = getattr(config, name)
            setattr(config, name, stage.model_copy(update={"config": path.parent / stage.config}))
    return config


def stage_config(
    model: type[SectionT], name: str, stage: StageConfig, wiring: list[str]
) -> SectionT:
    """Load a stage's config with the demo's wiring, then the stage's ``set`` list; problems
    name the config file and line, or the override (``pretrain.set: train.steps: …``)."""
    data, lines = load_yaml(stage.config)
    sources = {key: f"demo wiring of {name}" for key in apply_overrides(data, wiring)}
    sources |= {key: f"{name}.set" for key in apply_overrides(data, stage.set)}
    return validate(model, data, source=str(stage.config), lines=lines, override_sources=sources)


@dataclass(frozen=True)
class DemoPlan:
    """Every stage's validated config, wired to the paths of one run directory."""

    sample: Path
    data: DataRunConfig
    tokenizer: TokenizerTrainConfig
    tokenize: TokenizeConfig
    pretrain: PretrainConfig
    sft: SFTConfig
    eval: EvalConfig


def plan_demo(config: DemoConfig, run: Path) -> DemoPlan:
    """Load every stage's config for a demo in ``run``; raise :class:`ConfigError` on the
    first stage with problems, before anything is created."""
    sample = config.sample or sample_dir()
    raw, corpus = run / "raw", run / "data" / "corpus"
    tokenizer_dir = run / "tokenizer" / "tokenizer"
    data = stage_config(
        DataRunConfig, "data", config.data,
        [f"input_root={raw}", f"catalogue={sample / 'catalogue.yaml'}"],
    )  # fmt: skip
    tok = stage_config(TokenizerTrainConfig, "tokenizer", config.tokenizer, [f"inputs=[{corpus}]"])
    tokenize = stage_config(
        TokenizeConfig, "tokenize", config.tokenize,
        [f"inputs=[{corpus}]", f"tokenizer={tokenizer_dir}"],
    )  # fmt: skip
    train = stage_config(
        PretrainConfig, "pretrain", config.pretrain,
        ["data.byte_corpus=null", f"data.blend_file={run / 'tokenize' / 'blend.json'}",
         f"model.vocab_size={tok.vocab_size}", f"data.eod_id={EOD_ID}"],
    )  # fmt: skip
    sft = stage_config(
        SFTConfig, "sft", config.sft,
        [f"init_from={run / 'pretrain' / 'checkpoints' / f'step-{train.train.steps}'}",
         f"data.tokenizer={tokenizer_dir}",
         f"data.sources=[{{path: {sample / 'finetune' / 'alpaca_seed_tasks.jsonl'}}}]"],
    )  # fmt: skip
    wiring = [f"model={run / 'hf-model'}", f"data_dir={sample / 'sib200'}"]
    evaluate = stage_config(EvalConfig, "eval", config.eval, wiring)
    return DemoPlan(sample, data, tok, tokenize, train, sft, evaluate)


def _export(checkpoint: str, out: Path, tokenizer: Path, data_card: Path) -> dict[str, Any]:
    """The trained model as a Hugging Face folder (replacing the one of an earlier run)."""
    shutil.rmtree(out, ignore_errors=True)
    export_hf(Path(checkpoint), out, tokenizer=tokenizer, data_card=data_card)
    return {"model": str(out), "checkpoint": checkpoint}


def _sft(config: SFTConfig, folder: Path) -> dict[str, Any]:
    """Tune afresh: the stage reruns only when its start model or config changed, and a
    finished SFT run directory would otherwise return its old result."""
    shutil.rmtree(folder, ignore_errors=True)
    return finetune_sft(config, RunDir(folder, "finetune sft", config))


def _leaderboard(results: list[Path], folder: Path, site: Path) -> dict[str, Any]:
    """Submit the demo's results (validated, licence recorded) and build the site from them."""
    shutil.rmtree(folder, ignore_errors=True)  # this run's submissions only
    for path in results:
        submit(path, folder)
    data = build_site(folder, site)
    return {"site": str(site / "index.html"), "models": len(data["models"])}


def run_demo(plan: DemoPlan, run: RunDir) -> list[dict[str, Any]]:
    """Run every stage, print the summary table, return its rows.

    sample → corpus pipeline → tokenizer → .bin/.idx per language → BLOOM pretraining (TP=2)
    → Hugging Face export → instruction tuning (SFT) → 46-language evaluation of both models →
    leaderboard site. The last line printed is the address of the leaderboard page.
    """
    sample, raw, corpus = plan.sample, run / "raw", run / "data" / "corpus"
    tokenizer_dir, hf_model = run / "tokenizer" / "tokenizer", run / "hf-model"
    evaluate_sft = plan.eval.model_copy(update={"model": run / "sft" / "hf"})
    results = [run / "eval" / "results.json", run / "eval-sft" / "results.json"]
    summaries: dict[str, dict[str, Any]] = {}
    stages: list[Stage] = [
        ("sample", lambda: write_raw_corpus(sample, raw), [sample], {}),
        ("data", lambda: run_corpus(plan.data, RunDir(run / "data", "data run", plan.data)),
         [raw], plan.data.model_dump(mode="json")),
        ("tokenizer", lambda: train_tokenizer(
            plan.tokenizer, RunDir(run / "tokenizer", "tokenizer", plan.tokenizer)),
         [corpus], plan.tokenizer.model_dump(mode="json")),
        ("tokenize", lambda: tokenize_corpus(
            plan.tokenize, RunDir(run / "tokenize", "tokenize", plan.tokenize)),
         [corpus, tokenizer_dir], plan.tokenize.model_dump(mode="json")),
        ("pretrain", lambda: pretrain(
            plan.pretrain, RunDir(run / "pretrain", "pretrain", plan.pretrain)),
         [run / "tokenize" / "datasets"], plan.pretrain.model_dump(mode="json")),
        ("export", lambda: _export(summaries["pretrain"]["checkpoint"], hf_model, tokenizer_dir,
                                   run / "data" / "report" / "data_card.md"),
         [run / "pretrain" / "checkpoints"], {}),
        ("sft", lambda: _sft(plan.sft, run / "sft"),
         [run / "pretrain" / "checkpoints", sample / "finetune"], plan.sft.model_dump(mode="json")),
        ("eval", lambda: run_eval(plan.eval, RunDir(run / "eval", "eval", plan.eval)), [hf_model],
         plan.eval.model_dump(mode="json")),
        ("eval-sft", lambda: run_eval(evaluate_sft, RunDir(run / "eval-sft", "eval", evaluate_sft)),
         [run / "sft" / "hf"], evaluate_sft.model_dump(mode="json")),
        ("leaderboard", lambda: _leaderboard(results, run / "results", run / "leaderboard"),
         results, {}),
    ]  # fmt: skip
    rows = []
    for name, fn, inputs, params in stages:
        log.info("demo stage: %s", name)
        start = time.perf_counter()
        summaries[name] = run.run_step(name, fn, inputs=inputs, params=params)
        rows.append(
            {
                "stage": name,
                "result": headline(summaries[name]),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    summary_table(f"bloomkit demo — {run.path}", rows)
    if generation := summaries["sft"].get("generation"):
        log.info("the tuned model, asked %r, answers %r", generation["prompt"],
                 generation["response"])  # fmt: skip
    if not is_quiet():
        print(Path(summaries["leaderboard"]["site"]).as_uri(), flush=True)
    return rows


def headline(summary: dict[str, Any], limit: int = 5) -> str:
    """The first few scalar results of a stage's summary, for the demo's table."""
    items = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in summary.items()
        if isinstance(value, int | float | str) and not isinstance(value, bool)
    ]
    return ", ".join(items[:limit])
