"""``bloomkit leaderboard build``: results files → one row per model → a static site.

Every ``*.json`` under the results folder must be a sealed :class:`EvalResults` record (schema
and ``content_sha256`` checked by :func:`bloomkit.eval.results.load`); the build refuses the
whole folder when one is not, naming each bad file, unless ``skip_invalid`` is set, in which
case those files are listed on the page as rejected. Per benchmark (``sib200``,
``flores_bpb``, …) a model gets its headline metric in each of the 46 languages; a language
it was not scored in stays ``None`` (shown as missing, never as zero) and the model's mean is
over the languages it was scored in, with that coverage shown beside it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from statistics import fmean
from typing import Any

from pydantic import ValidationError

from bloomkit.data_tooling.languages import Language, languages
from bloomkit.eval.compare import headline
from bloomkit.eval.leaderboard.cards import SIDECAR_SUFFIX, Submission
from bloomkit.eval.leaderboard.native import BCP47, NATIVE_NAMES
from bloomkit.eval.report import LOWER_IS_BETTER
from bloomkit.eval.results import EvalResults, Missing, ResultsError, TaskResult, load
from bloomkit.eval.tasks import catalog
from bloomkit.rundir import atomic_path

STATIC = Path(__file__).parent / "static"
PREFERRED_BENCHMARKS = ("sib200", "sib200_5shot", "flores_bpb")
"""Which benchmark ranks the models by default: the first of these present, else the first
by name."""
SITE_FILES = ("index.html", "data.json")
"""A folder holding these is a previous build, which ``build_site`` may replace."""


class LeaderboardError(ValueError):
    """Results that cannot make a leaderboard, or an output folder that must not be replaced."""


@dataclass(slots=True)
class Collected:
    records: list[tuple[Path, EvalResults]] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)
    submissions: dict[str, Submission] = field(default_factory=dict)
    """Sidecars of ``bloomkit leaderboard submit`` by ``content_sha256`` (absent: not submitted
    through it, so no licence or cards are shown)."""


def _sidecar(path: Path, record: EvalResults) -> Submission | None:
    """The sidecar beside ``path`` (None when there is none); raises ValueError when it is bad."""
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None
    try:
        found = Submission.model_validate_json(sidecar.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise ValueError(f"bad sidecar {sidecar.name}: {err}") from None
    if found.content_sha256 != record.content_sha256:
        raise ValueError(f"sidecar {sidecar.name} belongs to another record")
    return found


def collect(results_dir: Path) -> Collected:
    """Load and verify every ``*.json`` under ``results_dir``; sort them into kept and rejected.

    A record whose ``content_sha256`` was already kept is rejected as a duplicate, and so is one
    whose submission sidecar (``*.submission.json``, not a results file) is unreadable.
    """
    if not results_dir.is_dir():
        raise LeaderboardError(f"{results_dir}: not a folder of results files")
    found = Collected()
    seen: dict[str, Path] = {}
    for path in sorted(results_dir.rglob("*.json")):
        if path.name.endswith(SIDECAR_SUFFIX):
            continue
        try:
            record = load(path)
            submission = _sidecar(path, record)
        except ResultsError as err:
            found.rejected.append((path, str(err).removeprefix(f"{path}: ")))
            continue
        except ValueError as err:
            found.rejected.append((path, str(err)))
            continue
        if (first := seen.get(record.content_sha256)) is not None:
            found.rejected.append((path, f"duplicate of {first} (same content_sha256)"))
            continue
        seen[record.content_sha256] = path
        found.records.append((path, record))
        if submission is not None:
            found.submissions[record.content_sha256] = submission
    return found


def model_name(record: EvalResults) -> str:
    """A local folder's last component, or a hub id (``org/name``) as given."""
    path = record.provenance.model.path.rstrip("/")
    if path.startswith(("/", ".", "~")) or "\\" in path:
        return PurePosixPath(path.replace("\\", "/")).name
    return path


def _benchmarks(records: list[EvalResults]) -> list[dict[str, Any]]:
    metrics: dict[str, str] = {}
    for record in records:
        for task in record.tasks.values():
            if task.lang:
                metrics.setdefault(task.benchmark, headline(task))
    order = sorted(metrics, key=lambda b: (b not in PREFERRED_BENCHMARKS,
                                           PREFERRED_BENCHMARKS.index(b)
                                           if b in PREFERRED_BENCHMARKS else 0, b))  # fmt: skip
    return [
        {"name": b, "metric": metrics[b], "higher_is_better": metrics[b] not in LOWER_IS_BETTER}
        for b in order
    ]


def model_row(
    path: Path,
    record: EvalResults,
    benchmarks: list[dict[str, Any]],
    submission: Submission | None = None,
) -> dict[str, Any]:
    """One model's row: per benchmark, its score in each of the 46 languages (None if unscored),
    the mean over the scored ones, coverage; plus groups, per-task scores, provenance and what
    its submission recorded (licence, card summary, data card link; None when not submitted)."""
    codes = list(languages())
    model_id = record.content_sha256[:12]
    scores: dict[str, dict[str, float | None]] = {}
    means: dict[str, float | None] = {}
    coverage: dict[str, int] = {}
    for bench in benchmarks:
        by_lang: dict[str, float | None] = dict.fromkeys(codes)
        for task in record.tasks.values():
            if task.benchmark == bench["name"] and task.lang in by_lang:
                by_lang[task.lang] = task.metrics[bench["metric"]].value
        scored = [v for v in by_lang.values() if v is not None]
        scores[bench["name"]] = by_lang
        means[bench["name"]] = fmean(scored) if scored else None
        coverage[bench["name"]] = len(scored)
    prov = record.provenance
    return {
        "id": model_id,
        "name": model_name(record),
        "source": path.name,
        "file": f"results/{model_id}.json",
        "suite": record.suite,
        "content_sha256": record.content_sha256,
        "licence": submission.licence.model_dump() if submission else None,
        "model_card": submission.model_card if submission else None,
        "data_card": _card_file(model_id) if submission and submission.data_card else None,
        "scores": scores,
        "mean": means,
        "coverage": coverage,
        "groups": {
            name: {m: s.value for m, s in group.metrics.items()} | {"partial": group.partial}
            for name, group in record.groups.items()
        },
        "missing": [_missing_row(gap) for gap in record.missing],
        "tasks": [_task_row(name, task) for name, task in sorted(record.tasks.items())],
        "provenance": {
            "model_path": prov.model.path,
            "model_files": prov.model.model_files,
            "tokenizer_files": prov.model.tokenizer_files,
            "bloomkit_version": prov.bloomkit_version,
            "lm_eval_version": prov.lm_eval_version,
            "split": prov.split,
            "limit": prov.limit,
            "num_fewshot": prov.num_fewshot,
            "apply_chat_template": prov.apply_chat_template,
            "seeds": prov.seeds,
            "device": prov.device,
            "started": prov.started,
            "reproduce": prov.reproduce,
        },
    }


def _missing_row(gap: Missing) -> dict[str, Any]:
    """A task not scored, with its benchmark (as the record names a scored task's), so the site
    gives its reason under that benchmark only: ``xnli_en`` lacking data is no reason for
    ``belebele`` in ``en``."""
    info = catalog().tasks.get(gap.task)
    return gap.model_dump() | {"benchmark": info.benchmark if info else gap.task}


def _card_file(model_id: str) -> str:
    return f"cards/{model_id}-data-card.md"


def _task_row(name: str, task: TaskResult) -> dict[str, Any]:
    metrics = {m: {"value": s.value, "stderr": s.stderr} for m, s in task.metrics.items()}
    return {
        "task": name,
        "benchmark": task.benchmark,
        "lang": task.lang,
        "version": task.version,
        "num_fewshot": task.num_fewshot,
        "n_samples": task.n_samples,
        "metrics": metrics,
    }


def _language_row(lang: Language) -> dict[str, str]:
    return {
        "code": lang.code,
        "name": lang.name,
        "native": NATIVE_NAMES.get(lang.code, ""),
        "bcp47": BCP47.get(lang.code, lang.code),
        "script": lang.script,
        "family": lang.family,
        "resource": lang.resource,
    }


def rank(rows: list[dict[str, Any]], bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Best mean first on ``bench`` (its direction); models without a score last, then by name."""
    sign = -1 if bench["higher_is_better"] else 1

    def key(row: dict[str, Any]) -> tuple[bool, float, str]:
        mean = row["mean"][bench["name"]]
        return (mean is None, sign * mean if mean is not None else 0.0, row["name"])

    return sorted(rows, key=key)


def leaderboard_data(collected: Collected) -> dict[str, Any]:
    """Everything the site shows, as one JSON-able dict (also written as ``data.json``)."""
    records = [r for _, r in collected.records]
    benchmarks = _benchmarks(records)
    rows = [model_row(path, record, benchmarks, collected.submissions.get(record.content_sha256))
            for path, record in collected.records]  # fmt: skip
    if benchmarks:
        rows = rank(rows, benchmarks[0])
    return {
        "languages": [_language_row(lang) for lang in languages().values()],
        "benchmarks": benchmarks,
        "models": rows,
        "rejected": [{"file": str(p), "reason": why} for p, why in collected.rejected],
    }


def to_csv(data: dict[str, Any]) -> str:
    """Long format: one line per model × benchmark × language (empty value when missing)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "model_id", "benchmark", "metric", "lang", "value"])
    for row in data["models"]:
        for bench in data["benchmarks"]:
            for lang, value in row["scores"][bench["name"]].items():
                writer.writerow([row["name"], row["id"], bench["name"], bench["metric"], lang,
                                 "" if value is None else value])  # fmt: skip
    return out.getvalue()


def _inline_json(data: dict[str, Any]) -> str:
    """JSON safe inside a ``<script type="application/json">`` block (no ``<`` at all)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_site(results_dir: Path, out: Path, *, skip_invalid: bool = False) -> dict[str, Any]:
    """Write the site to ``out`` atomically and return its data.

    Raises :class:`LeaderboardError` when a file is rejected (unless ``skip_invalid``), when no
    record is left, or when ``out`` is a non-empty folder that is not a previous build.
    """
    collected = collect(results_dir)
    if collected.rejected and not skip_invalid:
        lines = "\n".join(f"  {p}: {why}" for p, why in collected.rejected)
        raise LeaderboardError(
            f"{len(collected.rejected)} results file(s) refused (fix or remove them, or pass "
            f"--skip-invalid to list them as rejected on the page):\n{lines}"
        )
    if not collected.records:
        raise LeaderboardError(f"{results_dir}: no valid results file (*.json) found")
    if out.exists() and any(out.iterdir()) and not all((out / f).is_file() for f in SITE_FILES):
        raise LeaderboardError(f"{out}: not empty and not a leaderboard site; refusing to replace")
    data = leaderboard_data(collected)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "results").mkdir()
        for path, record in collected.records:
            shutil.copyfile(path, tmp / "results" / f"{record.content_sha256[:12]}.json")
            submission = collected.submissions.get(record.content_sha256)
            if submission and submission.data_card:
                card = tmp / _card_file(record.content_sha256[:12])
                card.parent.mkdir(exist_ok=True)
                card.write_text(submission.data_card, encoding="utf-8")
        for asset in ("style.css", "app.js"):
            shutil.copyfile(STATIC / asset, tmp / asset)
        (tmp / "data.json").write_text(
            json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        (tmp / "leaderboard.csv").write_text(to_csv(data), encoding="utf-8")
        (tmp / "index.html").write_text(
            page.replace("__LEADERBOARD_DATA__", _inline_json(data)), encoding="utf-8"
        )
    return data
