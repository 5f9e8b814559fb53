"""Named BLOOM run configs: each loads, fits the cluster its header states, and carries
BigScience's hyperparameters (bigscience-workshop/bigscience, train/tr11-176B-ml/*.slurm)."""

from __future__ import annotations

import re

import pytest

from bloomkit.config import load_config
from bloomkit.pretraining.parallel import check_world_size
from bloomkit.pretraining.rampup import BatchSchedule
from bloomkit.pretraining.train import PretrainConfig

TRAIN_SAMPLES = 220_000_000  # TRAIN_SAMPLES of every tr11 script (450B tokens)
# name: global batch, ramp-up, peak LR, min LR (--min-lr), of the tr11 script for that model
PUBLISHED = {
    "bloom-560m": (256, (192, 16, 9_765_625), 3.0e-4, 1e-5),
    "bloom-1b1": (256, (192, 16, 9_765_625), 2.5e-4, 1e-5),
    "bloom-1b7": (512, (192, 16, 9_765_625), 2.0e-4, 1e-5),
    "bloom-3b": (512, (192, 32, 9_765_625), 1.6e-4, 1e-5),
    "bloom-7b1": (512, (192, 32, 9_765_625), 1.2e-4, 1e-5),
    "bloom-176b": (2048, (192, 16, 9_765_625), 6.0e-5, 6e-6),
}
CHECKPOINT_ACTIVATIONS = {"bloom-1b7", "bloom-3b", "bloom-7b1", "bloom-176b"}
"""The sizes whose BigScience script passes --checkpoint-activations (full, one layer a chunk)."""
NODES = re.compile(r"on (one|\d+) nodes? of (\d+) GPUs")
PROCESSES = re.compile(
    r"tensor_parallel (\d+) × pipeline_parallel (\d+) × data_parallel (\d+) = (\d+) GPUs"
)


def test_every_published_size_has_a_config(repo_root):
    names = {p.stem for p in (repo_root / "configs/pretrain").glob("bloom-*.yaml")}
    assert names == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_config_fits_the_cluster_its_header_states(repo_root, name):
    path = repo_root / f"configs/pretrain/{name}.yaml"
    config = load_config(PretrainConfig, path)
    header = path.read_text(encoding="utf-8")
    nodes, per_node = NODES.search(header).groups()
    gpus = (1 if nodes == "one" else int(nodes)) * int(per_node)
    tp, pp, dp, stated = map(int, PROCESSES.search(header).groups())
    p = config.parallel
    assert (p.tensor_parallel, p.pipeline_parallel, p.data_parallel) == (tp, pp, dp)
    assert tp * pp * dp == stated == gpus
    check_world_size(p, gpus)
    torchrun = re.search(r"--nnodes (\d+)", header)
    assert int(torchrun.group(1) if torchrun else 1) == gpus // int(per_node)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_config_carries_bigscience_hyperparameters(repo_root, name):
    config = load_config(PretrainConfig, repo_root / f"configs/pretrain/{name}.yaml")
    global_batch, rampup, lr, min_lr = PUBLISHED[name]
    m, o, t = config.model, config.optim, config.train
    assert m.preset == name and m.seq_length == 2048 and m.init_method_std == 0.0048
    assert (t.global_batch_size, t.rampup_batch_size) == (global_batch, rampup)
    assert m.recompute == ("full" if name in CHECKPOINT_ACTIVATIONS else "none")
    assert m.recompute_num_layers == 1
    assert o.lr == lr and o.lr * o.min_lr_ratio == pytest.approx(min_lr, rel=1e-9)
    assert (o.warmup_samples, o.decay_samples) == (183_105, 200_000_000)
    schedule = BatchSchedule(
        t.steps, global_batch, t.micro_batch_size, config.parallel.data_parallel, rampup
    )
    assert TRAIN_SAMPLES <= schedule.total < TRAIN_SAMPLES + global_batch
    assert schedule.sizes[0] == rampup[0] and schedule.sizes[-1] == global_batch
