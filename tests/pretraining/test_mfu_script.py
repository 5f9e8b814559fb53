"""benchmarks/mfu_gpu.py without a GPU: arguments, the FLOPs/MFU formula, the results table,
and the refusal to run (or write results) without CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mfu_gpu.py"


@pytest.fixture(scope="module")
def mfu_gpu():
    spec = importlib.util.spec_from_file_location("mfu_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_and_per_shape_layouts(mfu_gpu):
    opts = mfu_gpu.parse_args([])
    assert opts.shapes == ["bloom-1b7", "bloom-7b1"] and opts.seq_length == 2048
    assert opts.layouts["bloom-7b1"] == {"tp": 2, "micro_batch": 2}
    opts = mfu_gpu.parse_args(["--shapes", "bloom-7b1", "--tp", "bloom-7b1=4",
                               "--micro-batch", "bloom-1b7=8"])  # fmt: skip
    assert opts.layouts == {"bloom-1b7": {"tp": 1, "micro_batch": 8},
                            "bloom-7b1": {"tp": 4, "micro_batch": 2}}  # fmt: skip
    config = mfu_gpu.train_config("bloom-7b1", opts, gpus=8)
    assert (config.parallel.tensor_parallel, config.parallel.data_parallel) == (4, 2)
    assert config.train.bf16 and not config.checkpoint.save and config.model.num_layers == 30


@pytest.mark.parametrize(
    "argv", [["--tp", "bloom-9b=2"], ["--micro-batch", "bloom-1b7=0"], ["--steps", "3"]]
)
def test_bad_arguments_are_refused(mfu_gpu, argv):
    with pytest.raises(SystemExit):
        mfu_gpu.parse_args(argv)  # unknown shape, micro-batch 0, warmup 3 of 3 steps


def test_flops_and_mfu_formula(mfu_gpu):
    # bloom-1b7: L 24, h 2048, ffn 8192, vocab 250,880; N = 24·(4h² + 2h·ffn) + vocab·h
    n = 24 * (4 * 2048**2 + 2 * 2048 * 8192) + 250_880 * 2048
    assert mfu_gpu.flops_per_token("bloom-1b7", 2048) == 6 * n + 12 * 24 * 2048 * 2048
    flops = mfu_gpu.flops_per_token("bloom-1b7", 2048)
    tokens_per_s = 8 * 989e12 * 0.45 / flops  # what 8 H100s at 45% MFU process
    assert mfu_gpu.mfu(tokens_per_s, flops, 8, 989.0) == pytest.approx(0.45)
    assert mfu_gpu.peak_of("NVIDIA H100 80GB HBM3", None) == 989.0
    assert mfu_gpu.peak_of("NVIDIA H100 80GB HBM3", 700.0) == 700.0
    with pytest.raises(SystemExit, match="give --peak-tflops"):
        mfu_gpu.peak_of("Some GPU", None)


def test_timing_and_results_table(mfu_gpu):
    rows = [{"step_s": s, "memory_gib": 30.0} for s in (9.0, 2.0, 2.0, 2.0)]
    assert mfu_gpu.timed(rows, 1, 1000) == {"tokens_per_s": 500.0, "step_s": 2.0,
                                            "memory_gib": 30.0}  # fmt: skip
    result = {"shape": "bloom-1b7", "layout": "tp1×pp1×dp8", "micro_batch": 4,
              "parameters": 1_722_408_960, "tokens_per_s": 180_000.0, "step_s": 2.91,
              "tflops_per_gpu": 445.0, "mfu": 0.45, "memory_gib": 41.0}  # fmt: skip
    text = mfu_gpu.results_markdown(
        [result], device="NVIDIA H100 80GB HBM3", gpus=8, peak=989.0,
        opts=mfu_gpu.parse_args([]), command="python benchmarks/mfu_gpu.py", versions="torch x",
    )  # fmt: skip
    assert "8 × NVIDIA H100 80GB HBM3" in text
    row = "| bloom-1b7 | tp1×pp1×dp8 | 4 | 1,722,408,960 | 180,000 | 2.91 | 445.0 | **45.0%** |"
    assert row in text
    assert text.rstrip().endswith("python benchmarks/mfu_gpu.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_refuses_without_cuda_and_writes_nothing(mfu_gpu, tmp_path):
    out = tmp_path / "mfu.md"
    with pytest.raises(SystemExit, match=r"needs CUDA.*nothing measured"):
        mfu_gpu.main(["--out", str(out)])
    assert not out.exists()
