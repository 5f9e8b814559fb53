"""What each stage runs under Slurm: its bloomkit command line and how it is launched.

Three launch kinds:

``torchrun``  one ``srun`` task per node, each a ``torchrun`` starting ``processes_per_node``
              ranks, with the c10d rendezvous on the allocation's first node (pretrain,
              finetune, the probe).
``array``     a job array, one task per index (corpus, tokenization, evaluation, the array
              probe); the task sees ``BLOOMKIT_TASK_ID`` (0-based) and ``BLOOMKIT_NUM_TASKS``.
``single``    one process on one node (an array stage's merge job).

An array stage may also have a ``merge_argv``: one more job, submitted with the array and
started after every task of it has ended (``--dependency=afterany``), runs that command once
(the corpus pipeline's dedup and report, the ``.bin/.idx`` merge, the eval results). The
command itself refuses to go on while any task's work is missing, so a failed task makes the
merge job fail too; ``bloomkit slurm resubmit RUN --failed`` then reruns the failed tasks alone
and a new merge job after them.

When is a run done? A job marks it done (``RUN/slurm/done/run``, or ``done/task-N`` for an
array task; the merge job of a stage that has one marks ``done/run``) when the stage command
exits 0, no USR1 reached the job, and, for a stage with a ``finished_file``, the stage wrote
that file: pretraining exits 0 after saving when it stops early (signal,
``checkpoint.exit_duration_minutes``, ``checkpoint.exit_interval``) and writes
``RUN/finished.json`` after its last step. Only stages that resume where they stopped can be
chained (``--chain K``): pretraining, and the stateless probe.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

Launch = Literal["torchrun", "array", "single"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One submittable stage."""

    name: str
    argv: tuple[str, ...]
    """Command line; ``{config}`` and ``{run_dir}`` are filled in."""
    launch: Launch
    help: str
    config_model: str | None = None
    """``module:Class`` of the stage's config, to validate CONFIG before submitting; ``None``
    for the stages that take no config."""
    resumes: bool = False
    """Started again on the same run directory, it goes on where it stopped (or has no state
    to lose): only such stages can be chained."""
    finished_file: str | None = None
    """File (in the run directory) the stage writes once the whole run is done."""
    merge_argv: tuple[str, ...] | None = None
    """Array stages only: the command of one job that runs after every array task ended."""

    def __post_init__(self) -> None:
        if self.merge_argv is not None and self.launch != "array":
            raise ValueError(f"stage {self.name}: merge_argv needs launch 'array'")

    def merge_stage(self) -> Stage:
        """The merge job as a ``single`` stage of its own (``STAGE-merge``)."""
        assert self.merge_argv is not None, f"stage {self.name} has no merge job"
        return Stage(
            name=f"{self.name}-merge",
            argv=self.merge_argv,
            launch="single",
            help=f"{self.name}: the job after every array task",
            config_model=self.config_model,
        )

    @property
    def needs_config(self) -> bool:
        return self.config_model is not None

    def model(self) -> type[BaseModel]:
        """The stage's config model (imported only when a config is checked)."""
        assert self.config_model is not None, f"stage {self.name} takes no config"
        module, _, name = self.config_model.partition(":")
        return getattr(importlib.import_module(module), name)


_RUN = ("--run-dir", "{run_dir}")
STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            name="pretrain",
            argv=("bloomkit", "pretrain", "run", "{config}", *_RUN),
            launch="torchrun",
            help="BLOOM pretraining, one torchrun per node, resumable",
            config_model="bloomkit.pretraining.train:PretrainConfig",
            resumes=True,
            finished_file="finished.json",
        ),
        Stage(
            name="finetune",
            argv=("bloomkit", "finetune", "sft", "{config}", *_RUN),
            launch="torchrun",
            help="supervised finetuning, one torchrun per node, resumable",
            config_model="bloomkit.finetuning.sft:SFTConfig",
            resumes=True,
            finished_file="finished.json",
        ),
        Stage(
            name="data",
            argv=("bloomkit", "data", "run", "{config}", *_RUN),
            launch="array",
            help="corpus pipeline: shards split over array tasks, then one dedup/report job",
            config_model="bloomkit.data_tooling.pipeline.config:DataRunConfig",
            merge_argv=("bloomkit", "data", "run", "{config}", *_RUN, "--merge"),
        ),
        Stage(
            name="tokenize",
            argv=("bloomkit", "data", "tokenize", "{config}", *_RUN),
            launch="array",
            help="corpus shards to megatron-core .bin/.idx over array tasks, then one merge job",
            config_model="bloomkit.data_tooling.indexed:TokenizeConfig",
            merge_argv=("bloomkit", "data", "tokenize", "{config}", *_RUN, "--merge"),
        ),
        Stage(
            name="eval",
            argv=("bloomkit", "eval", "run", "--config", "{config}", *_RUN),
            launch="array",
            help="evaluation suite: its tasks split over array tasks, then one merge job",
            config_model="bloomkit.eval.runner:EvalConfig",
            merge_argv=("bloomkit", "eval", "run", "--config", "{config}", *_RUN, "--merge"),
        ),
        Stage(
            name="probe",
            argv=("python", "-m", "bloomkit.slurm.probe", *_RUN),
            launch="torchrun",
            help="cluster smoke test: all-reduce over every rank of every node",
            resumes=True,
        ),
        Stage(
            name="probe-array",
            argv=("python", "-m", "bloomkit.slurm.probe", *_RUN),
            launch="array",
            help="cluster smoke test: one probe per array task",
        ),
    )
}


def get_stage(name: str) -> Stage:
    """The stage called ``name``; unknown names get near matches and the full list."""
    try:
        return STAGES[name]
    except KeyError:
        close = difflib.get_close_matches(name, STAGES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown stage {name!r}: {hint}known: {', '.join(STAGES)}") from None
