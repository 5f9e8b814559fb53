"""Which tasks an eval run scores, which local files they read, and what is left out.

bloomkit's own tasks read local data: the SIB-200 layout (``data_dir``) or, for bloom-classic,
a mirror (``mirror_dir``). A task whose files are missing is listed in ``missing`` with the
reason, and the rest are scored; names that are not bloomkit's go to lm-eval's registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bloomkit.eval.results import Missing
from bloomkit.eval.tasks import TASKS_DIR, Catalog, UnknownTaskError, catalog, task_config

if TYPE_CHECKING:
    from bloomkit.eval.runner import EvalConfig


@dataclass
class Plan:
    """What goes to lm-eval, what was left out and why."""

    lm_eval_tasks: list[str]
    groups: list[str]
    ours: list[str]
    """Every bloomkit leaf task that is scored."""
    missing: list[Missing] = field(default_factory=list)
    registry: bool = False
    """True when names outside bloomkit's folder need lm-eval's own task registry."""


def _registry_names() -> list[str]:
    from lm_eval.tasks import TaskManager

    return list(TaskManager(include_path=str(TASKS_DIR)).all_tasks)


def plan(config: EvalConfig, cat: Catalog | None = None) -> Plan:
    """Check names (suggesting close ones), find languages without data, pick what to send."""
    cat = cat or catalog()
    foreign = [n for n in config.names if n not in cat.tasks and n not in cat.groups]
    if foreign:
        known = set(_registry_names())
        unknown = [n for n in foreign if n not in known]
        if unknown:
            hints = [
                f"{n!r} (did you mean {', '.join(s)}?)" if (s := cat.suggest(n, sorted(known)))
                else repr(n)
                for n in unknown
            ]  # fmt: skip
            raise UnknownTaskError(f"unknown task or group: {'; '.join(hints)}")
    missing: list[Missing] = []
    lm_eval_tasks: list[str] = []
    ours: list[str] = []
    for name in config.names:
        if name in foreign:
            lm_eval_tasks.append(name)
            continue
        leaves = cat.leaves(name)
        gaps = [_data_gap(config, cat, t) for t in leaves]
        missing += [
            Missing(task=t, lang=cat.tasks[t].lang, reason=gap)
            for t, gap in zip(leaves, gaps, strict=True)
            if gap
        ]
        present = [t for t, gap in zip(leaves, gaps, strict=True) if not gap]
        ours += present
        lm_eval_tasks += [name] if len(present) == len(leaves) else present
    groups = [g for n in config.names for g in cat.subgroups(n)]
    return Plan(
        lm_eval_tasks=list(dict.fromkeys(lm_eval_tasks)),
        groups=list(dict.fromkeys(groups)),
        ours=list(dict.fromkeys(ours)),
        missing=missing,
        registry=bool(foreign),
    )


def reads_hub(path: Path) -> bool:
    """True for a task that reads a hub dataset (bloom-classic: ``dataset_kwargs.hf_path``)."""
    return "hf_path" in (task_config(path).get("dataset_kwargs") or {})


def data_files(config: EvalConfig, cat: Catalog, task: str) -> list[tuple[str, Path]]:
    """The local files a task reads, as ``(name in the record, path)``: the SIB-200 layout's
    TSVs, or a bloom-classic task's mirrored splits (none when it reads the hub)."""
    info = cat.tasks[task]
    if reads_hub(info.path):
        from bloomkit.eval.mirror import split_files

        if (mirror := config.resolved_mirror_dir) is None:
            return []
        return [(str(p.relative_to(mirror)), p) for p in split_files(mirror, [task], cat)[task]]
    data_dir = config.resolved_data_dir
    return [(f"{info.lang}/{s}.tsv", data_dir / info.lang / f"{s}.tsv")
            for s in dict.fromkeys(("train", config.split))]  # fmt: skip


def _data_gap(config: EvalConfig, cat: Catalog, task: str) -> str | None:
    absent = [str(path) for _, path in data_files(config, cat, task) if not path.is_file()]
    if not absent:
        return None
    hint = "; write it with `bloomkit eval mirror`" if reads_hub(cat.tasks[task].path) else ""
    return f"no data: {', '.join(absent)}{hint}"
