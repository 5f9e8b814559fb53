"""Turn lm-eval's output into an :class:`~bloomkit.eval.results.EvalResults` record.

Also the provenance helpers: file hashes of a model folder, hardware, the reproduce command.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bloomkit.eval.results import GroupResult, Missing, ModelInfo, Score, TaskResult
from bloomkit.eval.tasks import TASKS_DIR, Catalog
from bloomkit.rundir import sha256_file

TOKENIZER_FILES = ("tokenizer", "vocab", "merges", "special_tokens_map", "added_tokens")
SKIP_METRICS = ("alias", "name", "sample_len", "samples")
BOOTSTRAP_ITERS = 1000


def model_info(folder: Path) -> ModelInfo:
    """sha256 of every file of a model folder, split into tokenizer files and the rest."""
    model_files: dict[str, str] = {}
    tokenizer_files: dict[str, str] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(file.relative_to(folder))
        if name.startswith(".") or "/." in name:
            continue
        target = tokenizer_files if file.name.startswith(TOKENIZER_FILES) else model_files
        target[name] = sha256_file(file)
    return ModelInfo(path=str(folder), model_files=model_files, tokenizer_files=tokenizer_files)


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def reproduce_command(
    *,
    model: str = "hf",
    model_args: dict[str, Any],
    tasks: list[str],
    metadata: dict[str, Any],
    limit: int | None,
    num_fewshot: int | None,
    apply_chat_template: bool = False,
    batch_size: int,
    device: str,
    seeds: dict[str, int],
) -> str:
    """The plain ``lm_eval`` command line that computes the same numbers (``model``: lm-eval's
    model name); for ``bloomkit-megatron``, lm-eval's command run through
    ``python -m bloomkit.eval.lm_eval_cli``, which registers that model first."""
    megatron = model == "bloomkit-megatron"
    program = ["python", "-m", "bloomkit.eval.lm_eval_cli"] if megatron else ["lm_eval"]
    args = [
        *program, "run", "--model", model,
        "--model_args", ",".join(f"{k}={v}" for k, v in model_args.items()),
        "--tasks", ",".join(tasks),
        "--include_path", str(TASKS_DIR),
        "--metadata", json.dumps(metadata, sort_keys=True),
        "--device", device, "--batch_size", str(batch_size),
        "--seed", ",".join(str(seeds[k]) for k in ("random", "numpy", "torch", "fewshot")),
    ]  # fmt: skip
    if limit is not None:
        args += ["--limit", str(limit)]
    if num_fewshot is not None:
        args += ["--num_fewshot", str(num_fewshot)]
    if apply_chat_template:
        args.append("--apply_chat_template")
    return shlex.join(args)


def _score(value: Any, stderr: Any) -> Score:
    if not isinstance(value, int | float):
        return Score(value=None)
    if isinstance(stderr, int | float) and math.isfinite(stderr):
        return Score(value=float(value), stderr=float(stderr), stderr_source="lm-eval")
    return Score(value=float(value))


def _metrics(row: dict[str, Any]) -> dict[str, Score]:
    """lm-eval's ``{"acc,none": v, "acc_stderr,none": s}`` as ``{"acc": Score}``."""
    scores = {}
    for key, value in row.items():
        metric, _, filt = key.partition(",")
        if not filt or metric in SKIP_METRICS or metric.endswith("_stderr"):
            continue
        name = metric if filt == "none" else f"{metric},{filt}"
        scores[name] = _score(value, row.get(f"{metric}_stderr,{filt}"))
    return scores


def bits_per_byte(loglikelihood: np.ndarray, nbytes: np.ndarray) -> float:
    """lm-eval's aggregate: -sum(log-likelihood) / sum(bytes) / ln 2."""
    return float(-loglikelihood.sum() / nbytes.sum() / math.log(2))


def _per_doc(samples: list[dict[str, Any]]) -> tuple[list[int], dict[str, list[float]]]:
    samples = sorted(samples, key=lambda s: s["doc_id"])
    doc_ids = [int(s["doc_id"]) for s in samples]
    per_doc: dict[str, list[float]] = {}
    for metric in samples[0]["metrics"] if samples else []:
        values = [s[metric] for s in samples]
        if metric == "bits_per_byte":
            per_doc["loglikelihood"] = [float(v[0]) for v in values]
            per_doc["bytes"] = [float(v[1]) for v in values]
        elif all(isinstance(v, int | float | bool) for v in values):
            per_doc[metric] = [float(v) for v in values]
    return doc_ids, per_doc


def _bootstrap_bpb(per_doc: dict[str, list[float]], seed: int = 0) -> float | None:
    ll, nb = np.array(per_doc["loglikelihood"]), np.array(per_doc["bytes"])
    if len(ll) < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, len(ll), size=(BOOTSTRAP_ITERS, len(ll)))
    draws = -ll[idx].sum(axis=1) / nb[idx].sum(axis=1) / math.log(2)
    return float(draws.std(ddof=1))


def task_results(output: dict[str, Any], catalog: Catalog) -> dict[str, TaskResult]:
    """Per-task records from a ``simple_evaluate`` output (with ``log_samples``)."""
    records = {}
    leaves = set(output["configs"])
    for name, row in output["results"].items():
        if name not in leaves:
            continue
        info = catalog.tasks.get(name)
        doc_ids, per_doc = _per_doc(output.get("samples", {}).get(name, []))
        metrics = _metrics(row)
        bpb = metrics.get("bits_per_byte")
        if bpb is not None and bpb.stderr is None and "loglikelihood" in per_doc:
            metrics["bits_per_byte"] = Score(
                value=bpb.value, stderr=_bootstrap_bpb(per_doc), stderr_source="bootstrap"
            )
        version = output["versions"].get(name)
        records[name] = TaskResult(
            task=name,
            benchmark=info.benchmark if info else name,
            lang=info.lang if info else None,
            version=None if version is None else str(version),
            num_fewshot=int(output["n-shot"].get(name, 0)),
            n_samples=int(output["n-samples"][name]["effective"]),
            config_sha256=None,
            metrics=metrics,
            doc_ids=doc_ids,
            per_doc=per_doc,
        )
    return records


def group_results(
    output: dict[str, Any],
    tasks: dict[str, TaskResult],
    catalog: Catalog,
    groups: list[str],
    missing: list[Missing],
) -> dict[str, GroupResult]:
    """Groups lm-eval aggregated, else (languages missing) our macro mean over scored ones."""
    records = {}
    gone = {m.task for m in missing}
    for group in groups:
        leaves = catalog.leaves(group)
        scored = [t for t in leaves if t in tasks]
        if group in output["results"] and not gone & set(leaves):
            metrics = _metrics(output["results"][group])
            records[group] = GroupResult(group=group, metrics=metrics, tasks=scored)
            continue
        metrics = {}
        for metric in catalog.group_metrics.get(group, []):
            values = [tasks[t].metrics[metric].value for t in scored if metric in tasks[t].metrics]
            values = [v for v in values if v is not None]
            metrics[metric] = Score(value=float(np.mean(values)) if values else None)
        records[group] = GroupResult(group=group, metrics=metrics, tasks=scored, partial=True)
    return records


class _TagLoader(yaml.SafeLoader):
    """Safe loader that reads lm-eval's tags (``!function``) as plain strings."""


_TagLoader.add_multi_constructor("!", lambda loader, _tag, node: loader.construct_scalar(node))


@cache
def _weight_by_size(root: Path = TASKS_DIR) -> dict[str, dict[str, bool]]:
    """Group -> ``{metric: weight_by_size}`` from the ``aggregate_metric_list`` of its YAML."""
    weights = {}
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "aggregate_metric_list" not in text:
            continue
        cfg = yaml.load(text, Loader=_TagLoader)
        if isinstance(cfg, dict) and cfg.get("group"):
            weights[cfg["group"]] = {
                a["metric"]: bool(a.get("weight_by_size", True))
                for a in cfg["aggregate_metric_list"]
            }
    return weights


def aggregate_groups(
    tasks: dict[str, TaskResult], catalog: Catalog, groups: list[str]
) -> dict[str, dict[str, Any]]:
    """lm-eval's result rows of ``groups`` (``{"acc,none": v, "acc_stderr,none": s}``),
    rebuilt from task records with lm-eval's own arithmetic (``Group.aggregate``): per metric
    and filter, over the group's leaves in order, the mean (weighted by ``n_samples``, lm-eval's
    ``sample_len``, when the group says ``weight_by_size``), and the pooled or unweighted-mean
    stderr when every leaf has one from lm-eval, else ``"N/A"``."""
    from lm_eval.api.metrics import (
        aggregate_subtask_metrics,
        pooled_sample_stderr,
        unweighted_mean_stderr,
    )

    rows: dict[str, dict[str, Any]] = {}
    for group in groups:
        leaves = [tasks[t] for t in catalog.leaves(group) if t in tasks]
        row: dict[str, Any] = {}
        for metric, by_size in _weight_by_size().get(group, {}).items():
            names = {k for t in leaves for k in t.metrics if k.partition(",")[0] == metric}
            for name in sorted(names):
                filt = name.partition(",")[2] or "none"
                scored = [t for t in leaves if name in t.metrics]
                scores = [t.metrics[name] for t in scored]
                sizes = [t.n_samples for t in scored]
                values = [s.value for s in scores]
                row[f"{metric},{filt}"] = aggregate_subtask_metrics(values, sizes, by_size)
                stderrs = [s.stderr for s in scores if s.stderr_source == "lm-eval"]
                if len(stderrs) < len(scores):
                    stderr: Any = "N/A"
                elif by_size:
                    stderr = pooled_sample_stderr(stderrs, sizes)
                else:
                    stderr = unweighted_mean_stderr(stderrs)
                row[f"{metric}_stderr,{filt}"] = stderr
        rows[group] = row
    return rows
