"""Run directories: one folder per command, a manifest, atomic outputs, resumable steps.

Layout of a run directory::

    RUN/
      manifest.json     command, config, code and package versions, inputs with hashes, steps
      config.yaml       the resolved config the run used
      logs/bloomkit.log
      <step outputs>    written by the stages, each file or folder atomically

A step whose inputs (content hashes) and parameters are unchanged and whose outputs exist is
not run again: re-running a finished command is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import bloomkit
from bloomkit.config import to_yaml
from bloomkit.console import log

TRACKED_PACKAGES = (
    "torch", "megatron-core", "transformers", "datasets", "tokenizers", "lm-eval",
    "pydantic", "numpy",
)  # fmt: skip


# --------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    Works for files and directories. On error the temporary path is removed and ``target`` is
    left as it was, so a reader never sees a half-written output.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
        else:
            os.replace(tmp, target)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def atomic_write_text(target: Path | str, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (fsync, then rename)."""
    target = Path(target)
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return target


def atomic_write_json(target: Path | str, data: Any) -> Path:
    return atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- hashing


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_inputs(paths: Iterable[Path | str]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (folders are walked in sorted order)."""
    hashes: dict[str, str] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"input not found: {root}")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            hashes[str(file)] = sha256_file(file)
    return hashes


def _fingerprint(inputs: dict[str, str], params: Any) -> str:
    blob = json.dumps({"inputs": inputs, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- provenance


def code_version() -> str:
    """bloomkit's version plus the git commit of the source tree when there is one."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{bloomkit.__version__}+{commit}" if commit else bloomkit.__version__


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


# --------------------------------------------------------------------------- the run directory


class RunDir:
    """One command's working folder and its ``manifest.json``.

    ``RunDir(path, command, config)`` creates the folder (or reopens it), records provenance
    and the resolved config, and keeps the step records of earlier invocations so finished
    steps are skipped.
    """

    def __init__(self, path: Path | str, command: str, config: BaseModel | None = None):
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self.manifest_path = self.path / "manifest.json"
        previous = self._read_manifest()
        self.manifest: dict[str, Any] = {
            "command": command,
            "argv": sys.argv,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
            "config": config.model_dump(mode="json") if config is not None else None,
            "inputs": {},
            "steps": previous.get("steps", {}),
        }
        if config is not None:
            atomic_write_text(self.path / "config.yaml", to_yaml(config))
        self._save()

    def _read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{self.manifest_path}:{err.lineno}: corrupt run manifest ({err.msg}); "
                "move the run directory aside or delete manifest.json to start afresh"
            ) from None

    def _save(self) -> None:
        atomic_write_json(self.manifest_path, self.manifest)

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def run_step(
        self,
        name: str,
        fn: Callable[[], dict[str, Any]],
        *,
        inputs: Iterable[Path | str] = (),
        params: Any = None,
        outputs: Iterable[Path | str] = (),
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Run ``fn`` once for these inputs and params; return its JSON summary.

        The step is skipped (and its recorded summary returned) when a previous run finished
        it with the same input hashes and parameters, every declared output still exists and
        ``check(summary)``, when given, finds them intact (it raises ``ValueError`` or
        ``OSError`` otherwise, and the step runs again).
        """
        hashes = hash_inputs(inputs)
        params_json = json.loads(json.dumps(params, default=str))
        fingerprint = _fingerprint(hashes, params_json)
        output_paths = [self.path / p for p in outputs]
        self.manifest["inputs"].update(hashes)  # this invocation's inputs, run or skipped
        record = self.manifest["steps"].get(name)
        if (
            record
            and record.get("status") == "done"
            and record.get("fingerprint") == fingerprint
            and all(p.exists() for p in output_paths)
            and self._intact(name, record["summary"], check)
        ):
            record["skipped"] = True
            self._save()
            return record["summary"]
        self.manifest["steps"][name] = {"status": "running", "fingerprint": fingerprint}
        self._save()
        start = time.perf_counter()
        summary = fn()
        self.manifest["steps"][name] = {
            "status": "done",
            "fingerprint": fingerprint,
            "params": params_json,
            "inputs": sorted(hashes),
            "outputs": [str(p.relative_to(self.path)) for p in output_paths],
            "seconds": round(time.perf_counter() - start, 3),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "skipped": False,
            "summary": summary,
        }
        self._save()
        return summary

    @staticmethod
    def _intact(name: str, summary: dict[str, Any], check: Callable[..., None] | None) -> bool:
        if check is None:
            return True
        try:
            check(summary)
        except (ValueError, OSError) as err:
            log.warning("step %s: %s; running it again", name, err)
            return False
        return True
