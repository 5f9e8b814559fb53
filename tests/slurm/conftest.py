"""A real multi-node Slurm cluster on this host, for the whole test session.

munged, slurmctld and ``slurmd -N nX`` (one per node, each on its own free port, all with
``NodeAddr=127.0.0.1``) run in the foreground as children of the test process, with every
state, spool, log and socket file under a temporary folder; they are stopped by PID at the
end. Clients find the cluster through ``SLURM_CONF`` (set per test by ``slurm_env``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NODES = ("n1", "n2", "n3")
PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _daemon(path: str) -> str:
    found = shutil.which(path) or shutil.which(path, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{path} not found: install Slurm and munge (scripts/install-system-deps.sh)")
    return found


@dataclass
class Cluster:
    """A running local cluster: its config file, nodes, partition and daemon processes."""

    root: Path
    conf: Path
    nodes: tuple[str, ...] = NODES
    partition: str = PARTITION
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=check)

    def logs(self) -> str:
        """The daemons' logs, for failure messages."""
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in
                         sorted(self.root.glob("*.log")))  # fmt: skip

    def wait_idle(self, timeout: float = 30) -> None:
        """Until every node answers and no job is left in the queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split()
            queue = self.run("squeue", "-h", "-o", "%i", check=False).stdout.strip()
            states = info[1::2]
            if len(states) == len(self.nodes) and all(s == "idle" for s in states) and not queue:
                return
            time.sleep(0.3)
        raise TimeoutError(f"cluster not idle after {timeout} s\n{self.logs()}")

    def wait_jobs(self, timeout: float = 120) -> None:
        """Until the queue is empty."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-o", "%i").stdout.strip():
            if time.monotonic() > deadline:
                queue = self.run("squeue", check=False).stdout
                raise TimeoutError(f"jobs still queued after {timeout} s:\n{queue}")
            time.sleep(0.3)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_conf(root: Path, ctld_port: int, node_ports: list[int], munge_socket: Path) -> Path:
    host = socket.gethostname()
    node_lines = "\n".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
        "CPUs=2 RealMemory=1000 State=UNKNOWN"
        for name, port in zip(NODES, node_ports, strict=True)
    )
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=bloomkit-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket},cred_expire=20
SlurmUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=120
{node_lines}
PartitionName={PARTITION} Nodes={",".join(NODES)} Default=YES MaxTime=INFINITE State=UP
""",
        encoding="utf-8",
    )
    return conf


def start_cluster(root: Path) -> Cluster:
    """Start munged, slurmctld and one slurmd per node under ``root``; wait until idle."""
    (root / "state").mkdir(mode=0o700)
    (root / "munge").mkdir(mode=0o700)
    (root / "munge-socket").mkdir()
    (root / "munge-socket").chmod(0o755)  # munged wants it open to all (--force: parents)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = root / "munge-socket" / "munge.socket"
    ctld_port, *node_ports = _free_ports(1 + len(NODES))
    conf = write_conf(root, ctld_port, node_ports, munge_socket)
    cluster = Cluster(root=root, conf=conf)
    env = cluster.env
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    try:
        cluster.processes.append(subprocess.Popen([
            _daemon("munged"), "-F", "--force", f"--socket={munge_socket}", f"--key-file={key}",
            f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munged.log",
            f"--seed-file={root}/munge/munged.seed", "--num-threads=4",
        ], **quiet))  # fmt: skip
        deadline = time.monotonic() + 10
        while not munge_socket.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"munged did not start\n{cluster.logs()}")
            time.sleep(0.05)
        cluster.processes.append(
            subprocess.Popen([_daemon("slurmctld"), "-D", "-i", "-f", str(conf)], **quiet)
        )
        for name in NODES:
            cluster.processes.append(
                subprocess.Popen([_daemon("slurmd"), "-D", "-N", name, "-f", str(conf)], **quiet)
            )
        cluster.wait_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node local Slurm cluster (partition ``debug``, 2 CPUs per node)."""
    for daemon in DAEMONS:
        _daemon(daemon)
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm_env(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """The cluster, with ``SLURM_CONF`` pointing at it for this test."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    yield slurm_cluster
    slurm_cluster.run("scancel", "--user=root", check=False)  # whatever a failed test left
    slurm_cluster.wait_idle(timeout=60)
