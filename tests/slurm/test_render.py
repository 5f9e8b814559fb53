"""Rendering and validation without a cluster: scripts, profiles, refused and inert values."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.config import ConfigError
from bloomkit.slurm.profiles import load_profile
from bloomkit.slurm.render import environment
from bloomkit.slurm.stages import STAGES
from bloomkit.slurm.submit import Request, SubmitError, submit

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
PRETRAIN = REPO / "configs" / "pretrain" / "demo.yaml"


def dry(tmp_path: Path, stage: str = "probe", **kwargs) -> str:
    request = Request(stage=stage, config=kwargs.pop("config", None),
                      profile=kwargs.pop("profile", "local-cpu"),
                      run_dir=kwargs.pop("run_dir", tmp_path / "run"), **kwargs)  # fmt: skip
    return submit(request, dry_run=True).text


@pytest.mark.parametrize("name", ["local-cpu", "gpu", "jean-zay-a100"])
def test_shipped_profiles_load(name: str) -> None:
    assert load_profile(name)[0] == name


def test_torchrun_script(tmp_path: Path) -> None:
    text = dry(tmp_path, nodes=2)
    assert "#SBATCH --nodes=2" in text
    assert "#SBATCH --signal=B:USR1@60" in text
    assert "#SBATCH --requeue" in text
    assert f"#SBATCH --output={tmp_path}/run/slurm/logs/%x-%j.out" in text
    assert "--rdzv-backend=c10d" in text and 'MASTER_ADDR="${head_addr:-$head_node}"' in text
    assert "python -m bloomkit.slurm.probe --run-dir" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_array_and_chain_scripts(tmp_path: Path) -> None:
    array = dry(tmp_path, stage="probe-array", tasks=4)
    assert "#SBATCH --array=0-3" in array and "%x-%A_%a.out" in array
    assert 'DONE="$STATE/done/task-$BLOOMKIT_TASK_ID"' in array
    chain = dry(tmp_path, chain=3)
    assert "#SBATCH --array=1-3%1" in chain
    assert "scontrol requeue" not in chain  # a chain goes on with its next job instead
    for text in (array, chain):
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_jean_zay_profile(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="requires an account"):
        dry(tmp_path, stage="pretrain", config=PRETRAIN, profile="jean-zay-a100")
    eight = ["parallel.tensor_parallel=8", "model.num_attention_heads=8"]
    text = dry(tmp_path, stage="pretrain", config=PRETRAIN, profile="jean-zay-a100",
               account="six@a100", overrides=eight)  # fmt: skip
    for line in ("--account=six@a100", "--gres=gpu:8", "--time=20:00:00", "--hint=nomultithread",
                 "--signal=B:USR1@600", "--constraint=a100", "--qos=qos_gpu-t3"):  # fmt: skip
        assert f"#SBATCH {line}\n" in text
    assert "module load pytorch-gpu/py3/2.5.0" in text
    assert "--nproc-per-node=8" in text and "--set parallel.tensor_parallel=8" in text


def test_pretrain_script_marks_done_only_when_finished(tmp_path: Path) -> None:
    """Pretraining exits 0 when it stops early too: only RUN/finished.json means done."""
    text = dry(tmp_path, stage="pretrain", config=PRETRAIN, nodes=2, chain=3)
    run = tmp_path / "run"
    assert f"bloomkit pretrain run {run}/slurm/config.yaml --run-dir {run} &\n" in text
    assert f'[ "$signals" -eq 0 ] && [ -e {run}/finished.json ]; then' in text
    assert "#SBATCH --array=1-3%1" in text and "--nproc-per-node=1" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_commands_exist(stage: str) -> None:
    """Every stage renders a command that this bloomkit has (its --help works)."""
    words = list(itertools.takewhile(lambda w: not w.startswith(("{", "--")), STAGES[stage].argv))
    if words[0] == "bloomkit":
        result = runner.invoke(app, [*words[1:], "--help"])
        assert result.exit_code == 0, result.output
    else:
        subprocess.run([sys.executable, *words[1:], "--help"], check=True, capture_output=True)


@pytest.mark.parametrize("bad", ["x; rm -rf ~", "$(id)", "`id`", "a b", "x\nid"])
def test_hostile_names_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SubmitError, match=r"job name|run name"):
        dry(tmp_path, name=bad)
    with pytest.raises(SubmitError, match="run directory"):
        dry(tmp_path, run_dir=tmp_path / bad)
    with pytest.raises(SubmitError, match="account"):
        dry(tmp_path, account=bad)


def test_hostile_values_quoted_inert(tmp_path: Path) -> None:
    """Values allowed in the script body are shell-quoted: running the line runs no command."""
    pwned = tmp_path / "pwned"
    text = dry(tmp_path, stage_args=[f"$(touch {pwned})", f"; touch {pwned}"])
    line = next(ln for ln in text.splitlines() if "bloomkit.slurm.probe" in ln)
    echo = subprocess.run(["bash", "-c", f"printf '%s\\n' {line}"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert f"$(touch {pwned})\n; touch {pwned}\n" in echo
    assert not pwned.exists()


def test_template_refuses_unquoted_values() -> None:
    template = environment().from_string("echo {{ value }}")
    with pytest.raises(jinja2.TemplateError, match="unquoted value"):
        template.render(value="$(id)")
    assert environment().from_string("echo {{ value | q }}").render(value="$(id)") == "echo '$(id)'"


def test_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="needs a CONFIG"):
        dry(tmp_path, stage="pretrain")
    with pytest.raises(SubmitError, match="resumes where it stopped"):
        dry(tmp_path, stage="probe-array", chain=2)
    with pytest.raises(SubmitError, match="takes no CONFIG"):
        dry(tmp_path, config=PRETRAIN)
    with pytest.raises(SubmitError, match="needs 2 ranks"):
        dry(tmp_path, stage="pretrain", config=PRETRAIN, nodes=1)
    with pytest.raises(ValueError, match="did you mean 'pretrain'"):
        dry(tmp_path, stage="pretrian")
    with pytest.raises(ConfigError, match="no such profile"):
        dry(tmp_path, profile="nope")
    bad_profile = tmp_path / "bad.yaml"
    bad_profile.write_text('partition: "debug; id"\ntime: "1h"\nenv: {"A B": x}\n')
    with pytest.raises(ConfigError) as err:
        dry(tmp_path, profile=str(bad_profile))
    assert len(err.value.problems) == 3 and "bad.yaml:1: partition" in str(err.value)


def test_sbatch_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["slurm", "submit", "probe", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "sbatch not found on PATH" in result.output
    assert not (tmp_path / "r").exists()  # nothing written before the refusal


def test_cli_dry_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["slurm", "submit", "probe", "--nodes", "2", "--dry-run",
                                 "--run-dir", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("#!/bin/bash\n#SBATCH --job-name=bk-probe-r\n")
    assert not (tmp_path / "r").exists()


def test_tokenize_is_an_array_then_one_merge_job(tmp_path: Path) -> None:
    text = dry(tmp_path, stage="tokenize", config=REPO / "configs" / "data" / "tokenize-demo.yaml",
               tasks=3)  # fmt: skip
    assert "#SBATCH --array=0-2" in text
    assert "'data' 'tokenize'" in text or "data tokenize" in text
    assert "--merge" in text


def test_eval_is_an_array_then_one_merge_job(tmp_path: Path) -> None:
    text = dry(tmp_path, stage="eval", config=REPO / "configs" / "eval" / "demo.yaml", tasks=4)
    array, _, merge = text.partition("eval-merge.sbatch: sbatch --dependency=afterany:")
    assert "#SBATCH --array=0-3" in array and "--merge" not in array
    assert "'--merge'" in merge or " --merge" in merge
    assert "#SBATCH --array" not in merge
