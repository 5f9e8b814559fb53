"""Maps the top-level stage folders under the ``bloomkit.`` namespace (metadata: pyproject)."""

from pathlib import Path

from setuptools import setup

PACKAGE_DIRS = {
    "bloomkit": "bloomkit",
    "bloomkit.data_tooling": "data_tooling",
    "bloomkit.pretraining": "pretraining",
    "bloomkit.finetuning": "finetuning",
    "bloomkit.eval": "eval",
    "bloomkit.slurm": "slurm",
}


def packages() -> list[str]:
    """Every folder with an ``__init__.py`` under a mapped folder, as a dotted name."""
    found = []
    for name, folder in PACKAGE_DIRS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            parts = init.parent.relative_to(folder).parts
            found.append(".".join((name, *parts)))
    return found


setup(package_dir=PACKAGE_DIRS, packages=packages())
