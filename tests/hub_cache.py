"""Offline Hugging Face caches built inside a test, and the real ``bloomkit`` CLI run on them.

Models (:func:`cache_model`): a folder laid out as ``hf_hub_download`` leaves it, which
``from_pretrained("ORG/NAME")`` resolves under ``HF_HUB_OFFLINE=1``
(``huggingface_hub.file_download.try_to_load_from_cache``)::

    HF_HUB_CACHE/models--ORG--NAME/refs/main                  the commit id (40 hex)
    HF_HUB_CACHE/models--ORG--NAME/blobs/<sha256>             the file contents
    HF_HUB_CACHE/models--ORG--NAME/snapshots/<commit>/<file>  → ../../blobs/<sha256>

Datasets (:func:`cache_dataset`): offline, ``datasets.load_dataset("ORG/NAME")`` never reads
``HF_HUB_CACHE`` (datasets 5.2, ``dataset_module_factory`` in datasets/load.py): it raises
``OfflineModeIsEnabled`` before it fetches the repo's README (line 1105), and its fallback
(line 1170), ``CachedDatasetModuleFactory``, reads only the Arrow cache an earlier online load
prepared: ``HF_DATASETS_CACHE/ORG___NAME/CONFIG/VERSION/HASH/{dataset_info.json,
NAME-SPLIT.arrow}``. That Arrow cache is what is built here, by the packaged ``json`` builder
an online load of a repo of JSONL files uses, under the same folder and file names.

``huggingface_hub`` and ``datasets`` read these variables at import time: run the code under
test in a subprocess (:func:`run_bloomkit`) with :func:`offline_env`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _commit_id(digests: list[str]) -> str:
    """A stable 40-hex commit id for a snapshot of files with these digests."""
    return hashlib.sha1("".join(sorted(digests)).encode()).hexdigest()


def cache_model(hub_cache: Path, repo_id: str, folder: Path) -> Path:
    """The files of ``folder`` as model repo ``repo_id`` (``org/name``) on branch main of
    ``hub_cache``; returns the snapshot folder."""
    if repo_id.count("/") != 1:
        raise ValueError(f"repo_id {repo_id!r}: expected ORG/NAME")
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    files = sorted(p for p in folder.iterdir() if p.is_file())
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    commit = _commit_id(list(digests.values()))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, repo / "blobs" / digests[path.name])
        (snapshot / path.name).symlink_to(Path("..", "..", "blobs", digests[path.name]))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def cache_dataset(
    datasets_cache: Path, repo_id: str, splits: dict[str, Path], config: str = "default"
) -> Path:
    """Dataset repo ``repo_id`` whose config ``config`` has these JSONL ``splits`` (name → file),
    as an online ``load_dataset(repo_id, config)`` leaves it in ``datasets_cache``; returns the
    prepared folder."""
    from datasets.load import import_main_class
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    namespace, _, name = repo_id.partition("/")
    if not namespace or not name or "/" in name:
        raise ValueError(f"repo_id {repo_id!r}: expected ORG/NAME")
    name = camelcase_to_snakecase(name)
    commit = _commit_id([hashlib.sha256(p.read_bytes()).hexdigest() for p in splits.values()])
    builder_class = import_main_class(_PACKAGED_DATASETS_MODULES["json"][0])
    with tempfile.TemporaryDirectory() as staging:
        # built without repo_id (which would demand hf:// data files), then moved where the
        # repo's own build goes: ORG___NAME instead of NAME
        builder = builder_class(
            cache_dir=staging, dataset_name=name, config_name=config, config_id=config,
            hash=commit, data_files={split: [str(path)] for split, path in splits.items()},
        )  # fmt: skip
        builder.download_and_prepare()
        built = Path(builder.cache_dir)
        target = datasets_cache / f"{namespace}___{name}" / built.relative_to(Path(staging, name))
        shutil.copytree(built, target)
    return target


def offline_env(hub_cache: Path, datasets_cache: Path | None = None) -> dict[str, str]:
    """This process's environment, offline, with the caches at ``hub_cache`` (and
    ``datasets_cache``: default, an empty folder beside ``hub_cache``)."""
    datasets_cache = datasets_cache or hub_cache.parent / "datasets-cache-empty"
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_CACHE": str(hub_cache),
        "HF_DATASETS_CACHE": str(datasets_cache),
    }


def run_bloomkit(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``bloomkit ARGS`` (the installed console script beside this Python) in a subprocess
    working in ``cwd`` (where no folder shadows a hub name)."""
    script = Path(sys.executable).with_name("bloomkit")
    if not script.is_file():
        raise FileNotFoundError(f"{script}: no bloomkit console script (pip install -e .)")
    return subprocess.run(
        [str(script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
