"""`.ci/run` runs exactly `make test` and fails when a test fails.

The real Makefile and `.ci/run` run in a scratch tree whose `.venv` holds stub tools, so the
check takes a second and shows the exit status of pytest reaching CI.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def ci_tree(repo_root: Path, root: Path, pytest_status: int) -> Path:
    """A copy of the Makefile and `.ci/run`, an installed-looking `.venv` with stub tools
    (pytest exits ``pytest_status``) and a system-deps script that does nothing."""
    (root / ".ci").mkdir(parents=True)
    shutil.copy2(repo_root / "Makefile", root / "Makefile")
    shutil.copy2(repo_root / ".ci" / "run", root / ".ci" / "run")
    (root / "scripts").mkdir()
    (root / "scripts" / "install-system-deps.sh").write_text("#!/usr/bin/env bash\nexit 0\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool, status in (("pytest", pytest_status), ("ruff", 0), ("python", 0)):
        stub = bin_dir / tool
        stub.write_text(f'#!/usr/bin/env bash\necho {tool} "$@" >> calls.log\nexit {status}\n')
        stub.chmod(0o755)
    for dependency in ("pyproject.toml", "setup.py"):
        (root / dependency).write_text("")
        os.utime(root / dependency, (1_000_000_000, 1_000_000_000))
    (root / ".venv" / ".installed-stamp").touch()  # newer than both: no reinstall
    return root


@pytest.mark.parametrize(("pytest_status", "ci_fails"), [(1, True), (0, False)])
def test_ci_fails_exactly_when_a_test_fails(repo_root, tmp_path, pytest_status, ci_fails):
    root = ci_tree(repo_root, tmp_path / "checkout", pytest_status)
    result = subprocess.run(
        ["bash", ".ci/run"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode != 0) == ci_fails, result.stdout + result.stderr
    assert (root / "calls.log").read_text().splitlines() == ["ruff check .", "pytest tests"]
