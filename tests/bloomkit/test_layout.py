"""Packaging: the stage folders install under ``bloomkit.`` only, with their data files."""

import subprocess
import sys
import zipfile

import pytest


def test_stages_are_not_top_level_modules(tmp_path):
    code = (
        "import importlib.util as u, bloomkit.eval, bloomkit.slurm, bloomkit.data_tooling;"
        "print([n for n in ('eval','slurm','pretraining','finetuning','data_tooling')"
        " if u.find_spec(n)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheel_carries_packages_and_data(repo_root, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(repo_root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("bloomkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "bloomkit/cli.py",
        "bloomkit/data_tooling/pipeline/base.py",
        "bloomkit/data_tooling/tables/languages.tsv",
        "bloomkit/sample/catalogue.yaml",
        "bloomkit/sample/sib200/zhs/dev.tsv",
        "bloomkit/sample/code/python/heapq.py",
        "bloomkit/eval/cli.py",
        "bloomkit/slurm/cli.py",
    ):
        assert expected in names, f"{expected} missing from the wheel"
    assert not any(n.startswith(("eval/", "slurm/", "tests/")) for n in names)
