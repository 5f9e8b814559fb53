"""Render a stage into a readable sbatch script (Jinja2 templates beside this module).

Nothing reaches a script unchecked: the template environment's ``finalize`` refuses any value
that is not a :class:`Shell` (already validated or shell-quoted) or an int, so a template that
forgets ``| q`` fails at render time instead of shipping an injectable script.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from bloomkit.slurm.profiles import Profile
from bloomkit.slurm.stages import Stage

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./@+,=-]+$")
"""Paths that go into ``#SBATCH`` headers (logs, work dir): no spaces, quotes, ``$`` or ``%``."""


class Shell(str):
    """Text that is safe to paste into a script as is."""


def quote(value: Any) -> Shell:
    return Shell(shlex.quote(str(value)))


def _finalize(value: Any) -> Any:
    if isinstance(value, Shell) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise jinja2.TemplateError(f"unquoted value {value!r}: validate it or render it with | q")


def check_name(value: str, what: str = "run name") -> Shell:
    """A job/run name: letters, digits and ``_.+-`` (at most 64), refused otherwise."""
    if not NAME.match(value):
        raise ValueError(
            f"{what} {value!r}: use letters, digits and _.+- only (no spaces or shell syntax)"
        )
    return Shell(value)


def check_path(path: Path, what: str) -> Shell:
    """An absolute path for an ``#SBATCH`` header, refused when it holds unsafe characters."""
    text = str(path)
    if not SAFE_PATH.match(text):
        raise ValueError(
            f"{what} {text!r}: #SBATCH lines cannot quote, so use letters, digits and "
            "_./@+,=- only (no spaces, quotes, $ or %)"
        )
    return Shell(text)


@dataclass(kw_only=True)
class Job:
    """Everything one script needs; validated when rendered."""

    stage: Stage
    profile: Profile
    profile_name: str
    run_dir: Path
    workdir: Path
    venv_bin: Path
    name: str
    config: Path | None = None
    overrides: list[str] = field(default_factory=list)
    stage_args: list[str] = field(default_factory=list)
    nodes: int = 1
    num_tasks: int = 1
    chain: int = 1

    def argv(self) -> list[Shell]:
        """The stage command line, every word quoted."""
        words: list[Shell] = []
        for word in self.stage.argv:
            if word == "{config}":
                if self.config is None:
                    raise ValueError(f"stage {self.stage.name} needs a CONFIG file")
                words.append(quote(self.config))
            else:
                words.append(quote(word.replace("{run_dir}", str(self.run_dir))))
        for override in self.overrides:
            words += [Shell("--set"), quote(override)]
        return words + [quote(arg) for arg in self.stage_args]

    def array_spec(self) -> Shell | None:
        """``--array`` value: tasks of an array stage, or ``1-K%1`` for a chain of K jobs."""
        if self.stage.launch == "array":
            limit = self.profile.max_array_parallel
            return Shell(f"0-{self.num_tasks - 1}" + (f"%{limit}" if limit else ""))
        if self.chain > 1:
            return Shell(f"1-{self.chain}%1")
        return None


def header_lines(job: Job) -> list[Shell]:
    """The ``#SBATCH`` options, in the order a person would write them."""
    p = job.profile
    state = job.run_dir / "slurm"
    array = job.array_spec()
    log = "%x-%A_%a.out" if array else "%x-%j.out"
    options = [
        f"--job-name={check_name(job.name, 'job name')}",
        f"--chdir={check_path(job.workdir, 'work directory')}",
        f"--output={check_path(state / 'logs', 'run directory')}/{log}",
        "--open-mode=append",
    ]
    options += [f"--{key}={value}" for key, value in (
        ("partition", p.partition), ("account", p.account), ("qos", p.qos),
        ("constraint", p.constraint),
    ) if value]  # fmt: skip
    launch = job.stage.launch
    options.append(f"--nodes={job.nodes if launch == 'torchrun' else 1}")
    options.append("--ntasks-per-node=1")
    if p.cpus_per_task:
        options.append(f"--cpus-per-task={p.cpus_per_task}")
    if p.gpus_per_node:
        options.append(f"--gres=gpu:{p.gpus_per_node}")
    if p.mem:
        options.append(f"--mem={p.mem}")
    options.append(f"--time={p.time}")
    if p.signal_seconds:
        options.append(f"--signal=B:USR1@{p.signal_seconds}")
    options.append("--requeue" if p.requeue else "--no-requeue")
    if array:
        options.append(f"--array={array}")
    options += p.sbatch_args
    return [Shell(f"#SBATCH {option}") for option in options]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = quote
    return env


def render(job: Job, script: Path) -> str:
    """The sbatch script of ``job``, to be written at ``script``."""
    p = job.profile
    port = Shell(str(p.master_port) if p.master_port else "$((20000 + SLURM_JOB_ID % 20000))")
    context = {
        "headers": header_lines(job),
        "comment": Shell(
            f"# bloomkit {check_name(job.stage.name, 'stage')} with profile "
            f"{check_name(job.profile_name, 'profile')}, rendered "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bloomkit slurm submit`"
        ),
        "script": quote(script),
        "run_dir": quote(job.run_dir),
        "workdir": quote(job.workdir),
        "path": quote(job.venv_bin),
        "modules": [quote(m) for m in p.modules],
        "env": [(Shell(k), quote(v)) for k, v in p.env.items()],
        "argv": Shell(" ".join(job.argv())),
        "array": job.stage.launch == "array",
        "chain": job.chain > 1,
        "requeue": p.requeue,
        "num_tasks": job.num_tasks,
        "nproc": p.ranks_per_node,
        "master_port": port,
        "finished_file": quote(job.run_dir / job.stage.finished_file)
        if job.stage.finished_file
        else None,
    }
    return environment().get_template(f"{job.stage.launch}.sbatch.j2").render(context)
