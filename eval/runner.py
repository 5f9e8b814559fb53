"""``bloomkit eval run``: score a model on bloomkit/lm-eval tasks: a Hugging Face folder, an
OpenAI-compatible endpoint or a bloomkit checkpoint (``backend``, see :mod:`bloomkit.eval.models`).

A thin layer over ``lm_eval.simple_evaluate`` with ``TaskManager(include_path=TASKS_DIR)``
and the same arguments the ``lm_eval`` command passes, so both give identical numbers (the
record's ``provenance.reproduce`` is that command). What it adds: names checked before any
model is loaded (close names suggested), languages without local data listed and left out
while the rest are scored, and a sealed :class:`~bloomkit.eval.results.EvalResults` record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.console import library_bars, log, summary_table
from bloomkit.eval import models, record
from bloomkit.eval.plan import Plan, data_files, plan
from bloomkit.eval.report import print_table
from bloomkit.eval.results import EvalResults, ModelInfo, Provenance, load, save
from bloomkit.eval.tasks import TASKS_DIR, catalog, config_sha256
from bloomkit.eval.tasks.classic.utils import MIRROR_DIR_ENV
from bloomkit.rundir import RunDir, code_version, package_versions, sha256_file

# lm-eval's defaults (lm_eval.evaluator / --seed): random, numpy, torch, fewshot
LM_EVAL_SEEDS = {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}


class EvalConfig(Section):
    """What to score, on which data, how."""

    model: Path | None = None
    """``hf``: a Hugging Face model folder (config, weights, tokenizer) or hub name ``ORG/NAME``
    (its snapshot, from the cache or fetched); ``megatron``: a bloomkit checkpoint (a ``step-N``
    folder or an imported one); ``endpoint``: not used."""
    backend: Literal["hf", "endpoint", "megatron"] = "hf"
    base_url: str | None = None
    """``endpoint``: the server's OpenAI base URL, e.g. ``http://127.0.0.1:8000/v1``; it must
    answer ``/completions`` with ``echo`` and ``logprobs`` (``bloomkit serve``, vLLM)."""
    served_model: str | None = None
    """``endpoint``: the ``model`` name sent with each request (null: none sent)."""
    api_key_env: str | None = None
    """``endpoint``: the environment variable holding the API key (the key is never recorded)."""
    tokenizer: Path | None = None
    """``endpoint`` and ``megatron``: the model's Hugging Face tokenizer folder or hub name."""
    suite: str | None = "bloom46"
    """A group of tasks (``bloom46``, ``sib200``, ``sib200_5shot``, ``flores_bpb``)."""
    tasks: list[str] = Field(default_factory=list)
    """Task or group names, bloomkit's or lm-eval's; scored as well as the suite."""
    data_dir: Path | None = None
    """A folder in the SIB-200 layout (``<lang>/{train,dev}.tsv``); null: the shipped sample."""
    split: str = "dev"
    """Which split of ``data_dir`` is scored (few-shot examples come from ``train``)."""
    limit: Annotated[int, Field(gt=0)] | None = None
    """At most this many documents per task and language (for tests and demos only)."""
    num_fewshot: Annotated[int, Field(ge=0)] | None = None
    """Override every task's shot count (null: each task's own, e.g. 0 or 5)."""
    apply_chat_template: bool = False
    """``hf``: prompt through the model's chat template (lm-eval's ``--apply_chat_template``),
    for instruction-tuned models; bloomkit's SFT and LoRA exports carry their training one."""
    mirror_dir: Path | None = None
    """bloom-classic tasks: the folder ``bloomkit eval mirror`` wrote; null: the
    ``BLOOMKIT_MIRROR_DIR`` environment variable, else the Hugging Face hub."""
    tensor_parallel: Annotated[int, Field(gt=0)] = 1
    pipeline_parallel: Annotated[int, Field(gt=0)] = 1
    """``megatron``: split the checkpoint over ``tensor_parallel × pipeline_parallel`` worker
    processes (one GPU each on a GPU node), for checkpoints too big for one device."""
    batch_size: Annotated[int, Field(gt=0)] = 1
    device: str = "cpu"
    fewshot_seed: int = LM_EVAL_SEEDS["fewshot"]

    @model_validator(mode="after")
    def _something_to_score(self) -> EvalConfig:
        if not self.suite and not self.tasks:
            raise ValueError("nothing to score: give a suite or tasks")
        needed = {
            "hf": ["model"],
            "megatron": ["model", "tokenizer"],
            "endpoint": ["base_url", "tokenizer"],
        }[self.backend]
        if absent := [name for name in needed if getattr(self, name) is None]:
            raise ValueError(f"backend {self.backend} needs {' and '.join(absent)}")
        if self.backend != "megatron" and self.tensor_parallel * self.pipeline_parallel > 1:
            raise ValueError("tensor_parallel and pipeline_parallel apply to backend megatron")
        if self.apply_chat_template and self.backend != "hf":
            raise ValueError("apply_chat_template applies to backend hf")
        return self

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys([*([self.suite] if self.suite else []), *self.tasks]))

    @property
    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser().resolve()
        from bloomkit.data_tooling.sample import sample_dir

        return sample_dir() / "sib200"

    @property
    def resolved_mirror_dir(self) -> Path | None:
        chosen = self.mirror_dir or os.environ.get(MIRROR_DIR_ENV)
        return Path(chosen).expanduser().resolve() if chosen else None

    @property
    def task_metadata(self) -> dict[str, str]:
        """What the tasks read from lm-eval's ``--metadata``: where their data is."""
        meta = {"data_dir": str(self.resolved_data_dir), "split": self.split}
        if mirror := self.resolved_mirror_dir:
            meta["mirror_dir"] = str(mirror)
        return meta


class ModelLoadError(ValueError):
    """A model (folder, checkpoint or endpoint) its backend cannot load."""


def check_model_folder(folder: Path) -> None:
    """Fail fast (before hashing or loading anything) on a folder that cannot be a model."""
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: model folder not found")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: no config.json; expected a Hugging Face model folder")


def has_chat_template(folder: Path) -> bool:
    """Whether a Hugging Face folder's tokenizer carries a chat template."""
    if (folder / "chat_template.jinja").is_file():
        return True
    config = folder / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text("utf-8")).get("chat_template"))


def check_model(config: EvalConfig) -> None:
    """Fail fast on what the backend cannot read: the model folder, checkpoint or tokenizer."""
    if config.backend == "hf":
        check_model_folder(config.model)
        if config.apply_chat_template and not has_chat_template(config.model):
            raise ModelLoadError(
                f"{config.model}: no chat template (chat_template.jinja, or chat_template in "
                "tokenizer_config.json); score it without apply_chat_template"
            )
        return
    if config.backend == "megatron" and not (config.model / "bloomkit.json").is_file():
        raise ModelLoadError(f"{config.model}: no bloomkit.json; expected a bloomkit checkpoint")
    if not config.tokenizer.is_dir():
        raise ModelLoadError(f"{config.tokenizer}: tokenizer folder not found")


def model_args(config: EvalConfig) -> dict[str, Any]:
    """The backend's lm-eval model arguments (absolute paths), as the reproduce command has them."""
    if config.backend == "endpoint":
        return models.endpoint_args(
            config.base_url, config.tokenizer.resolve(), config.served_model
        )
    if config.backend == "megatron":
        args = {
            "checkpoint": str(config.model.resolve()),
            "tokenizer": str(config.tokenizer.resolve()),
        }
        if config.tensor_parallel * config.pipeline_parallel > 1:
            args |= {"tensor_parallel": config.tensor_parallel,
                     "pipeline_parallel": config.pipeline_parallel}  # fmt: skip
        return args
    return {"pretrained": str(config.model.resolve())}


LM_EVAL_MODELS = {"hf": "hf", "endpoint": "local-completions", "megatron": "bloomkit-megatron"}
"""The lm-eval model name of each backend."""


def load_model(config: EvalConfig) -> Any:
    """lm-eval's model for the backend, or :class:`ModelLoadError` saying why not."""
    check_model(config)
    import lm_eval.api.registry

    args = model_args(config)
    where = config.base_url if config.backend == "endpoint" else config.model
    try:
        if config.backend == "endpoint":
            return models.endpoint_lm(args, config.api_key_env, config.batch_size)
        return lm_eval.api.registry.get_model(LM_EVAL_MODELS[config.backend]).create_from_arg_obj(
            args,
            {"batch_size": config.batch_size, "max_batch_size": None, "device": config.device},
        )
    except Exception as err:  # any failure inside the backend is a model that does not load
        raise ModelLoadError(
            f"{where}: the model does not load with lm-eval's {LM_EVAL_MODELS[config.backend]} "
            f"backend: {type(err).__name__}: {err}"
        ) from err


def _model_info(config: EvalConfig) -> ModelInfo:
    """File hashes of what was scored: the HF folder, or the checkpoint (every file, its
    ``bloomkit.json`` with the sha256 of each shard included) and the tokenizer; for an
    endpoint its URL stands for the model."""
    if config.backend == "hf":
        return record.model_info(config.model.resolve())
    tokenizer_files = record.model_info(config.tokenizer.resolve()).tokenizer_files
    if config.backend == "endpoint":
        return ModelInfo(path=config.base_url, model_files={}, tokenizer_files=tokenizer_files)
    checkpoint = record.model_info(config.model.resolve())
    return checkpoint.model_copy(update={"tokenizer_files": tokenizer_files})


class _QuietCustomDataset(logging.Filter):
    """Drop lm-eval's per-task hint about ``--metadata`` (one line per task, 92 in bloom46)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


def reproduce(config: EvalConfig, the_plan: Plan) -> str:
    """The plain ``lm_eval`` command that scores ``the_plan`` as ``config`` says."""
    return record.reproduce_command(
        model=LM_EVAL_MODELS[config.backend],
        model_args=model_args(config),
        tasks=the_plan.lm_eval_tasks,
        metadata=config.task_metadata,
        limit=config.limit,
        num_fewshot=config.num_fewshot,
        apply_chat_template=config.apply_chat_template,
        batch_size=config.batch_size,
        device=config.device,
        seeds=LM_EVAL_SEEDS | {"fewshot": config.fewshot_seed},
    )


def evaluate(config: EvalConfig) -> EvalResults:
    """Score the model; return the (unsealed) record."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    check_model(config)
    cat = catalog()
    the_plan = plan(config, cat)
    for gap in the_plan.missing:
        log.warning("left out %s: %s", gap.task, gap.reason)
    if not the_plan.lm_eval_tasks:
        where = ", ".join(
            str(p) for p in (config.resolved_data_dir, config.resolved_mirror_dir) if p
        )
        raise FileNotFoundError(f"{where}: no language has data for {', '.join(config.names)}")
    args = model_args(config)
    metadata = args | config.task_metadata  # what the lm_eval command builds from its arguments
    seeds = LM_EVAL_SEEDS | {"fewshot": config.fewshot_seed}
    lm = load_model(config)
    manager = TaskManager(
        include_path=str(TASKS_DIR), include_defaults=the_plan.registry, metadata=metadata
    )
    quiet = _QuietCustomDataset()
    logging.getLogger("lm_eval.api.task").addFilter(quiet)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        output = lm_eval.simple_evaluate(
            model=lm,
            tasks=the_plan.lm_eval_tasks,
            num_fewshot=config.num_fewshot,
            batch_size=config.batch_size,
            device=config.device,
            limit=config.limit,
            apply_chat_template=config.apply_chat_template,
            log_samples=True,
            task_manager=manager,
            random_seed=seeds["random"],
            numpy_random_seed=seeds["numpy"],
            torch_random_seed=seeds["torch"],
            fewshot_random_seed=seeds["fewshot"],
            metadata=metadata,
        )
    finally:
        if isinstance(lm, models.MegatronLM):
            lm.close()
    seconds = time.perf_counter() - start
    logging.getLogger("lm_eval.api.task").removeFilter(quiet)
    tasks = record.task_results(output, cat)
    for name, result in tasks.items():
        if name in cat.tasks:
            result.config_sha256 = config_sha256(cat.tasks[name].path)
    hashes = {
        key: sha256_file(path)
        for name in the_plan.ours
        for key, path in data_files(config, cat, name)
    }
    provenance = Provenance(
        bloomkit_version=code_version(),
        lm_eval_version=package_versions(["lm-eval"])["lm-eval"],
        packages=package_versions(),
        backend=config.backend,
        model=_model_info(config),
        task_configs={n: t.config_sha256 for n, t in tasks.items() if t.config_sha256},
        data_dir=str(config.resolved_data_dir),
        data_files=dict(sorted(hashes.items())),
        split=config.split,
        limit=config.limit,
        num_fewshot=config.num_fewshot,
        apply_chat_template=config.apply_chat_template,
        seeds=seeds,
        batch_size=config.batch_size,
        device=config.device,
        hardware=record.hardware(),
        started=started,
        seconds=round(seconds, 3),
        reproduce=reproduce(config, the_plan),
    )
    groups = record.group_results(output, tasks, cat, the_plan.groups, the_plan.missing)
    return EvalResults(
        suite=config.suite,
        tasks=tasks,
        groups=groups,
        missing=the_plan.missing,
        provenance=provenance,
    )


def run_eval(config: EvalConfig, run: RunDir, *, merge: bool = False) -> dict[str, Any]:
    """Score into ``run/results.json`` (skipped when model, data and config are unchanged);
    print the group table; return the summary: groups' metrics, counts, the results path.

    With ``merge``, score nothing: join the array tasks' shares (:mod:`bloomkit.eval.array`),
    or raise :class:`~bloomkit.eval.array.SharesMissing` naming the tasks not scored yet."""

    def step() -> dict[str, Any]:
        from bloomkit.eval.array import merge_shares

        with library_bars():
            results = merge_shares(config, run.path) if merge else evaluate(config)
        path = save(results, run / "results.json")
        summary: dict[str, Any] = {
            "results": str(path),
            "tasks": len(results.tasks),
            "languages": len({t.lang for t in results.tasks.values() if t.lang}),
            "missing": [m.task for m in results.missing],
            "seconds": results.provenance.seconds,
        }
        for group in results.groups.values():
            for metric, score in group.metrics.items():
                summary[f"{group.group}/{metric}"] = score.value
        return summary

    check_model(config)
    plan(config)  # unknown names fail here, before the model and data are hashed
    inputs = [
        p
        for p in (
            config.model,
            config.tokenizer,
            config.resolved_data_dir,
            config.resolved_mirror_dir,
        )
        if p
    ]
    summary = run.run_step(
        "eval", step, inputs=inputs, params=config.model_dump(mode="json"),
        outputs=["results.json"],
    )  # fmt: skip
    print_table(load(run / "results.json"), f"bloomkit eval — {run.path}")
    rows = [{"metric": k, "value": v} for k, v in summary.items() if "/" in k and v is not None]
    if rows:
        summary_table("groups (macro mean over languages)", rows)
    return summary
