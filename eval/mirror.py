"""``bloomkit eval mirror``: snapshot the hub datasets of the bloom-classic tasks into a folder.

The tasks (``eval/tasks/classic``) name their data in ``dataset_kwargs`` (``hf_path``,
``hf_name``) and their splits in the YAML, so the mirror takes both from the task files. Each
hub config becomes ``<out>/<hf_path>/<hf_name>/<split>.jsonl`` with the hub's columns (the layout
``utils.load_mirror`` reads), and ``<out>/MIRROR.json`` records rows and sha256 per file.

A dataset is read by :func:`load_source`: with ``source`` (a folder of ``save_to_disk``
DatasetDicts in the same ``<hf_path>/<hf_name>`` layout) through ``datasets.load_from_disk``,
else from the hub through ``datasets.load_dataset``: the one call that needs the network.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import datasets

from bloomkit.eval.tasks import Catalog, UnknownTaskError, catalog, task_config
from bloomkit.eval.tasks.classic.utils import mirror_folder
from bloomkit.rundir import atomic_path, atomic_write_json

MANIFEST = "MIRROR.json"
SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")
COLUMNS: dict[str, tuple[str, ...]] = {
    "facebook/xnli": ("premise", "hypothesis", "label"),
    "cambridgeltl/xcopa": ("premise", "choice1", "choice2", "question", "label"),
    "juletxara/xstory_cloze": (
        "input_sentence_1", "input_sentence_2", "input_sentence_3", "input_sentence_4",
        "sentence_quiz1", "sentence_quiz2", "answer_right_ending",
    ),
    "Muennighoff/xwinograd": ("sentence", "option1", "option2", "answer"),
    "google-research-datasets/paws-x": ("sentence1", "sentence2", "label"),
    "facebook/belebele": (
        "flores_passage", "question", "mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4",
        "correct_answer_num",
    ),
}  # fmt: skip
"""Columns the tasks' prompts, choices and targets read, per hub dataset."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    """One hub dataset config, the splits the tasks read from it and the tasks themselves."""

    hf_path: str
    hf_name: str
    splits: tuple[str, ...]
    tasks: tuple[str, ...]


def needed(names: list[str], cat: Catalog | None = None) -> list[HubConfig]:
    """The hub configs (and splits) behind task or group names, in task order."""
    cat = cat or catalog()
    configs: dict[tuple[str, str], HubConfig] = {}
    for name in names:
        if name not in cat.tasks and name not in cat.groups:
            hint = f" (did you mean {', '.join(s)}?)" if (s := cat.suggest(name)) else ""
            raise UnknownTaskError(f"unknown task or group: {name!r}{hint}")
        for leaf in cat.leaves(name):
            cfg = task_config(cat.tasks[leaf].path)
            kwargs = cfg.get("dataset_kwargs") or {}
            if "hf_path" not in kwargs:
                raise ValueError(
                    f"{cat.tasks[leaf].path}: task {leaf} reads no hub dataset "
                    "(no dataset_kwargs.hf_path); only bloom-classic tasks are mirrored"
                )
            key = (kwargs["hf_path"], kwargs["hf_name"])
            splits = tuple(dict.fromkeys(cfg[k] for k in SPLIT_KEYS if cfg.get(k)))
            old = configs.get(key, HubConfig(*key, (), ()))
            configs[key] = HubConfig(
                *key, tuple(dict.fromkeys(old.splits + splits)), (*old.tasks, leaf)
            )
    return list(configs.values())


def load_source(hf_path: str, hf_name: str, source: Path | None = None) -> datasets.DatasetDict:
    """A hub dataset config: from ``source/<hf_path>/<hf_name>`` (``load_from_disk``) when a
    source folder is given, else from the hub (``load_dataset``)."""
    if source is None:
        return datasets.load_dataset(hf_path, hf_name)
    folder = source / hf_path / hf_name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no saved dataset for {hf_path} config {hf_name}")
    data = datasets.load_from_disk(str(folder))
    if not isinstance(data, datasets.DatasetDict):
        raise ValueError(f"{folder}: a single Dataset; expected a DatasetDict keyed by split")
    return data


def write_split(data: datasets.Dataset, path: Path) -> dict[str, int | str]:
    """One split as JSON lines (the hub's columns, label ints as ints); its rows and sha256."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in data:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"rows": len(data), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def convert(
    data: datasets.DatasetDict, config: HubConfig, out: Path, where: str
) -> dict[str, dict[str, int | str]]:
    """Check the splits and columns the tasks read, then write them into the mirror."""
    absent = [s for s in config.splits if s not in data]
    if absent:
        raise ValueError(
            f"{where}: no split {', '.join(absent)} (has {', '.join(data)}); "
            f"tasks {', '.join(config.tasks)} read {', '.join(config.splits)}"
        )
    folder = mirror_folder(out, config.hf_path, config.hf_name)
    written = {}
    for split in config.splits:
        columns = data[split].column_names
        lacking = [c for c in COLUMNS[config.hf_path] if c not in columns]
        if lacking:
            raise ValueError(
                f"{where}: split {split} lacks column(s) {', '.join(lacking)} "
                f"(has {', '.join(columns)})"
            )
        written[f"{config.hf_path}/{config.hf_name}/{split}.jsonl"] = write_split(
            data[split], folder / f"{split}.jsonl"
        )
    return written


def mirror(
    out: Path, names: list[str] | None = None, source: Path | None = None
) -> dict[str, dict[str, int | str]]:
    """Mirror every hub config the named tasks read (default: the bloom-classic suite) into
    ``out``; update ``out/MIRROR.json``; return the files written with rows and sha256."""
    written: dict[str, dict[str, int | str]] = {}
    for config in needed(names or ["bloom-classic"]):
        hub = f"hub dataset {config.hf_path} config {config.hf_name}"
        where = str(source / config.hf_path / config.hf_name) if source else hub
        data = load_source(config.hf_path, config.hf_name, source)
        written |= convert(data, config, out, where)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    files = manifest.get("files", {}) | written
    manifest = {"datasets_version": datasets.__version__, "files": dict(sorted(files.items()))}
    atomic_write_json(manifest_path, manifest)
    return written


def split_files(
    mirror_dir: Path, names: list[str] | None = None, cat: Catalog | None = None
) -> dict[str, list[Path]]:
    """Task -> the mirrored split files it reads (whether they exist or not)."""
    files: dict[str, list[Path]] = {}
    for config in needed(names or ["bloom-classic"], cat):
        folder = mirror_folder(mirror_dir, config.hf_path, config.hf_name)
        files |= {task: [folder / f"{s}.jsonl" for s in config.splits] for task in config.tasks}
    return files
