"""The bloomkit lm-eval task folder (``TASKS_DIR``) and a fast index of its tasks and groups.

``TASKS_DIR`` is what ``bloomkit eval run`` gives lm-eval as ``include_path``; plain
``lm_eval --include_path eval/tasks`` sees the same files. The index reads the generated YAML
files directly (no lm-eval import), so name checks and language lookups take milliseconds.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

TASKS_DIR = Path(__file__).resolve().parent
DATA_MODULES = ("utils.py",)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One bloomkit task: ``sib200_en`` is benchmark ``sib200`` in language ``en``. A task whose
    name does not end in its language (``belebele_zho_Hans``, BLOOM's ``zhs``) names both in
    ``dataset_kwargs: {benchmark, lang}``."""

    name: str
    benchmark: str
    lang: str
    path: Path


@dataclass(frozen=True, slots=True)
class Catalog:
    tasks: dict[str, TaskInfo]
    groups: dict[str, list[str]]
    group_metrics: dict[str, list[str]]
    """Group -> the metrics its ``aggregate_metric_list`` averages."""

    @property
    def names(self) -> list[str]:
        return sorted([*self.tasks, *self.groups])

    def leaves(self, name: str) -> list[str]:
        """The tasks under a task or group name, in group order."""
        if name in self.tasks:
            return [name]
        return [leaf for member in self.groups[name] for leaf in self.leaves(member)]

    def subgroups(self, name: str) -> list[str]:
        """A group and every group nested in it."""
        if name not in self.groups:
            return []
        return [name, *(g for member in self.groups[name] for g in self.subgroups(member))]

    def suggest(self, name: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
        return difflib.get_close_matches(
            name, list(dict.fromkeys([*self.names, *extra])), n=3, cutoff=0.6
        )


class UnknownTaskError(ValueError):
    """A task or group name that neither bloomkit nor lm-eval knows; ``str()`` suggests."""


def _read(path: Path) -> dict:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainLoader)
    return data if isinstance(data, dict) else {}


class _PlainLoader(yaml.SafeLoader):
    """Safe loader that keeps lm-eval's ``!function`` tags as plain strings."""


_PlainLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@cache
def catalog(root: Path = TASKS_DIR) -> Catalog:
    """Every task (with its language) and group defined under ``root``."""
    tasks: dict[str, TaskInfo] = {}
    groups: dict[str, list[str]] = {}
    group_metrics: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        cfg = _read(path)
        if "group" in cfg:
            groups[cfg["group"]] = [m if isinstance(m, str) else m["task"] for m in cfg["task"]]
            aggregates = cfg.get("aggregate_metric_list") or []
            group_metrics[cfg["group"]] = [a["metric"] for a in aggregates]
        elif "task" in cfg:
            kwargs = cfg.get("dataset_kwargs") or {}
            lang = kwargs.get("lang", "")
            benchmark = kwargs.get("benchmark") or (
                cfg["task"].removesuffix(f"_{lang}") if lang else cfg["task"]
            )
            tasks[cfg["task"]] = TaskInfo(cfg["task"], benchmark, lang, path)
    return Catalog(tasks, groups, group_metrics)


def config_files(path: Path) -> list[Path]:
    """A task file, the templates it includes (transitively) and the data modules beside it."""
    files = [path]
    include = _read(path).get("include")
    for inc in include if isinstance(include, list) else [include] if include else []:
        files += config_files(path.parent / inc)
    files += [path.parent / m for m in DATA_MODULES if (path.parent / m).is_file()]
    return list(dict.fromkeys(files))


def task_config(path: Path) -> dict:
    """A task file with its ``include`` chain merged (the file's own keys win)."""
    cfg = _read(path)
    include = cfg.get("include")
    base: dict = {}
    for inc in include if isinstance(include, list) else [include] if include else []:
        base |= task_config(path.parent / inc)
    return base | cfg


def config_sha256(path: Path) -> str:
    """sha256 over a task's config files (names and bytes), so any prompt/metric edit shows."""
    digest = hashlib.sha256()
    for file in config_files(path):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
