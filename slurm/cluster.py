"""Talking to the installed Slurm: sbatch, scontrol, sinfo, squeue and sacct, nothing mocked.

The clients find their cluster the usual way (``/etc/slurm/slurm.conf``, ``SLURM_CONF``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bloomkit.slurm.profiles import Profile, time_seconds


class SlurmError(RuntimeError):
    """Slurm is missing, refuses a request, or cannot give what a profile asks for."""


def command(name: str) -> str:
    """The path of a Slurm client, or a :class:`SlurmError` saying what to do."""
    found = shutil.which(name)
    if found is None:
        raise SlurmError(
            f"{name} not found on PATH: run this on a login node of the cluster (or load its "
            "slurm module); `bloomkit slurm submit … --dry-run` prints the script without Slurm"
        )
    return found


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client; on failure raise with its own message."""
    proc = subprocess.run([command(argv[0]), *argv[1:]], capture_output=True, text=True)
    if check and proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        raise SlurmError(f"{' '.join(argv[:2])} failed (exit {proc.returncode}): {message}")
    return proc


def parse_record(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` (one ``scontrol … -o`` line) as a dict."""
    return dict(re.findall(r"(\w[\w:/]*)=(\S*)", line))


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    total_nodes: int
    max_nodes: int | None
    max_time: int | None
    """Seconds; None = unlimited."""
    cpus_per_node: int
    gpus_per_node: int


def _gpus(gres: str) -> int:
    """GPUs per node from a gres string such as ``gpu:a100:8(S:0-1),nic:1``."""
    match = re.search(r"gpu(?::[^:,(]+)?:(\d+)", gres)
    return int(match[1]) if match else 0


def _limit_seconds(text: str) -> int | None:
    if text in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    if ":" not in text:  # minutes
        return int(text) * 60 if text.isdigit() else None
    if text.count(":") == 1:
        text = f"00:{text}"
    return time_seconds(text)


def partition(name: str | None) -> Partition:
    """What a partition offers (the default partition when ``name`` is None)."""
    lines = run("scontrol", "show", "partition", "-o").stdout.splitlines()
    records = [parse_record(line) for line in lines if line.strip()]
    if name is None:
        chosen = [r for r in records if r.get("Default") == "YES"]
        if not chosen:
            raise SlurmError("the cluster has no default partition: set `partition` in the profile")
    else:
        chosen = [r for r in records if r.get("PartitionName") == name]
        if not chosen:
            known = ", ".join(r.get("PartitionName", "?") for r in records)
            raise SlurmError(f"partition {name!r} not found on this cluster (it has: {known})")
    record = chosen[0]
    nodes = run("sinfo", "-h", "-p", record["PartitionName"], "-o", "%c %G").stdout.split("\n")
    cpus, gpus = 0, 0
    for line in filter(None, (n.strip() for n in nodes)):
        cpu_text, _, gres = line.partition(" ")
        cpus = max(cpus, int(cpu_text.rstrip("+")) if cpu_text.rstrip("+").isdigit() else 0)
        gpus = max(gpus, _gpus(gres))
    max_nodes = record.get("MaxNodes", "UNLIMITED")
    return Partition(
        name=record["PartitionName"],
        total_nodes=int(record.get("TotalNodes", "0")),
        max_nodes=None if max_nodes == "UNLIMITED" else int(max_nodes),
        max_time=_limit_seconds(record.get("MaxTime", "UNLIMITED")),
        cpus_per_node=cpus,
        gpus_per_node=gpus,
    )


def check_request(profile: Profile, nodes: int, profile_name: str) -> list[str]:
    """Problems with asking the cluster for ``nodes`` nodes under ``profile``; [] if none."""
    part = partition(profile.partition)
    where = f"profile {profile_name}: partition {part.name}"
    problems = []
    if nodes > part.total_nodes:
        problems.append(f"{where} has {part.total_nodes} node(s), the job asks for {nodes}")
    elif part.max_nodes is not None and nodes > part.max_nodes:
        problems.append(f"{where} allows at most {part.max_nodes} node(s) per job, asked {nodes}")
    if profile.gpus_per_node > part.gpus_per_node:
        problems.append(
            f"{where} has {part.gpus_per_node} GPU(s) per node, "
            f"gpus_per_node asks for {profile.gpus_per_node}"
        )
    if profile.cpus_per_task and part.cpus_per_node and profile.cpus_per_task > part.cpus_per_node:
        problems.append(
            f"{where} has {part.cpus_per_node} CPU(s) per node, "
            f"cpus_per_task asks for {profile.cpus_per_task}"
        )
    if part.max_time is not None and time_seconds(profile.time) > part.max_time:
        problems.append(f"{where}: time {profile.time} is over the partition's limit")
    return problems


def sbatch(script: Path, *args: str) -> str:
    """Submit ``script`` (options in ``args`` override its ``#SBATCH`` lines); the job id."""
    proc = run("sbatch", "--parsable", *args, str(script))
    return proc.stdout.strip().split(";")[0]


def queued(job_ids: list[str]) -> dict[str, str]:
    """``{job id: state}`` of these jobs still in the queue (array tasks as ``A_T``)."""
    if not job_ids:
        return {}
    wanted = set(job_ids)
    proc = run("squeue", "-h", "-r", "-o", "%i|%T|%F|%A")
    states = {}
    for line in proc.stdout.splitlines():
        name, state, array_id, job_id = [*line.split("|"), "", "", ""][:4]
        if array_id in wanted or job_id in wanted:
            states[name] = state
    return states
