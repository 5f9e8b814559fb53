"""Cluster profiles (``configs/slurm/NAME.yaml``): where and how jobs run on one cluster.

Every value that ends up in an ``#SBATCH`` header is checked against a strict pattern here
(headers cannot be shell-quoted); values that go into the script body are shell-quoted when
rendered.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from bloomkit.config import ConfigError, Section, load_config

TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+:,=/-]*$")
"""Partition, account, qos, constraint and module names: no spaces, quotes or shell syntax."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIME = re.compile(r"^(?:(\d+)-)?(\d{1,3}):(\d{2}):(\d{2})$")
SBATCH_ARG = re.compile(r"^--[a-z][a-z-]*(?:=[A-Za-z0-9_.@+:,=/%-]+)?$")
REPO = Path(__file__).resolve().parent.parent


def _token(value: str) -> str:
    if not TOKEN.match(value):
        raise ValueError("expected letters, digits and _.@+:,=/- only (no spaces or shell syntax)")
    return value


def _time(value: str) -> str:
    match = TIME.match(value)
    if not match or int(match[3]) > 59 or int(match[4]) > 59:
        raise ValueError("expected HH:MM:SS or D-HH:MM:SS")
    return value


def _env(value: dict[str, str]) -> dict[str, str]:
    bad = [name for name in value if not ENV_NAME.match(name)]
    if bad:
        raise ValueError(f"invalid environment variable name(s) {bad}")
    return value


def _sbatch_args(value: list[str]) -> list[str]:
    bad = [arg for arg in value if not SBATCH_ARG.match(arg)]
    if bad:
        raise ValueError(f"expected --option or --option=value without spaces, got {bad}")
    return value


Token = Annotated[str, AfterValidator(_token)]


class Profile(Section):
    """One cluster: partition, account, resources per node, time limit, software setup."""

    description: str = ""
    partition: Token | None = None
    """``null``: the cluster's default partition."""
    account: Token | None = None
    account_required: bool = False
    """The cluster refuses jobs without ``--account`` (Jean Zay: ``six@a100``)."""
    qos: Token | None = None
    constraint: Token | None = None
    nodes: Annotated[int, Field(ge=1)] = 1
    """Default node count of torchrun stages (``--nodes`` overrides)."""
    gpus_per_node: Annotated[int, Field(ge=0)] = 0
    processes_per_node: Annotated[int, Field(ge=1)] | None = None
    """torchrun ranks per node; ``null`` = ``gpus_per_node`` (1 without GPUs)."""
    cpus_per_task: Annotated[int, Field(ge=1)] | None = None
    """CPUs of the one task per node (torchrun) or of each array task."""
    mem: Annotated[str, AfterValidator(_token)] | None = None
    """``--mem`` per node, e.g. ``0`` (all) or ``64G``."""
    time: Annotated[str, AfterValidator(_time)] = "01:00:00"
    signal_seconds: Annotated[int, Field(ge=0)] = 300
    """``--signal=B:USR1@N``: warn the job N s before its time limit (0 = no signal)."""
    requeue: bool = True
    """``--requeue``, and a job warned by USR1 requeues itself when it is not in a chain."""
    max_array_parallel: Annotated[int, Field(ge=1)] | None = None
    """At most this many array tasks at once (``--array=…%N``)."""
    modules: list[Token] = []
    """``module load`` these, in order, after ``module purge``."""
    venv: Path | None = None
    """Python environment whose ``bin/`` goes first on PATH; ``null`` = the submitting one."""
    env: Annotated[dict[str, str], AfterValidator(_env)] = {}
    """Exported in the job (NCCL settings, thread counts); values are shell-quoted."""
    master_port: Annotated[int, Field(ge=1024, le=65535)] | None = None
    """Rendezvous port; ``null`` = 20000 + job id mod 20000."""
    sbatch_args: Annotated[list[str], AfterValidator(_sbatch_args)] = []
    """Extra ``#SBATCH`` lines, e.g. ``--hint=nomultithread``, ``--exclusive``."""

    @model_validator(mode="after")
    def _signal_within_time(self) -> Profile:
        if self.signal_seconds >= time_seconds(self.time):
            raise ValueError(
                f"signal_seconds {self.signal_seconds} must be shorter than time {self.time}"
            )
        return self

    @property
    def ranks_per_node(self) -> int:
        return self.processes_per_node or self.gpus_per_node or 1


def time_seconds(value: str) -> int:
    """``D-HH:MM:SS`` or ``HH:MM:SS`` in seconds."""
    match = TIME.match(value)
    if not match:
        raise ValueError(f"bad time {value!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def profile_dirs() -> list[Path]:
    """Where ``--profile NAME`` is looked up: ``./configs/slurm``, then the source tree's."""
    return list(dict.fromkeys([Path.cwd() / "configs" / "slurm", REPO / "configs" / "slurm"]))


def find_profile(name: str) -> Path:
    """A profile file from a name (``jean-zay-a100``) or a path to a YAML file."""
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        return as_path
    for folder in profile_dirs():
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in profile_dirs() for p in folder.glob("*.yaml")})
    raise ConfigError([f"--profile {name}: no such profile (known: {', '.join(known)})"])


def load_profile(name: str, overrides: list[str] | None = None) -> tuple[str, Profile]:
    """``(profile name, Profile)`` for ``--profile NAME``, with ``--set``-style overrides."""
    path = find_profile(name)
    return path.stem, load_config(Profile, path, overrides or [])
