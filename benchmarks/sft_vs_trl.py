"""Instruction tuning throughput and held-out loss: bloomkit full SFT and LoRA vs TRL SFTTrainer.

Same tiny random BLOOM (the tests': 2 layers, hidden 64, BPE vocab 512 trained on the seeds),
same data (the 175 Alpaca seed tasks, Alpaca template, every 10th held out), same rows of 256
positions, steps, batch, LR schedule and CPU threads, in one process:

- bloomkit full SFT (``finetune_sft``: the megatron-core trainer, packed rows, block mask);
- bloomkit LoRA (``finetune_lora``: peft, the same packed rows);
- TRL ``SFTTrainer``, full and with the same LoRA adapters, completion-only loss on
  prompt/completion rows, three ways (:data:`TRL_PACKING`): ``bfd`` packing (TRL's default:
  best-fit decreasing, padding-free, one flattened sequence per batch), ``wrapped`` packing
  (rows of 256 positions, examples cut at row ends) and no packing (each example padded to the
  longest in its batch).

tokens/s = non-padding tokens trained on / seconds of all training steps. Eval loss = mean
response-token loss of the held-out examples, each scored alone, by one function for all.
Writes ``benchmarks/results/sft_vs_trl.md``::

    .venv/bin/python benchmarks/sft_vs_trl.py --steps 40 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "sft_vs_trl.md"
SEQ, BATCH, R, ALPHA = 256, 8, 8, 32
LR = {"full": 1e-2, "lora": 5e-2}
TRL_PACKING: dict[str, dict[str, Any]] = {
    "bfd": {"packing": True, "packing_strategy": "bfd"},
    "wrapped": {"packing": True, "packing_strategy": "wrapped"},
    "unpacked": {"packing": False},
}
"""TRL ``SFTConfig`` packing settings compared (names as in the results table)."""


def _conftest() -> Any:
    path = REPO / "tests/finetuning/conftest.py"
    spec = importlib.util.spec_from_file_location("finetune_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_model(work: Path, seeds: Path) -> Path:
    """The SFT tests' BPE tokenizer (vocab 512, BLOOM's special ids) and tiny BLOOM."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from bloomkit.finetuning.templates import builtin_templates

    texts = [seeds.read_text(encoding="utf-8")]
    texts += [t.prompt + (t.prompt_with_input or "") for t in builtin_templates().values()]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ))  # fmt: skip
    PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>",
    ).save_pretrained(work / "tokenizer")  # fmt: skip
    return _conftest().save_tiny_bloom(work / "model", work / "tokenizer")


def split_seeds(seeds: Path, work: Path) -> tuple[Path, Path]:
    """The seeds as Alpaca rows: every 10th in ``valid.jsonl``, the rest in ``train.jsonl``."""
    rows: dict[str, list[str]] = {"train": [], "valid": []}
    for i, line in enumerate(seeds.read_text(encoding="utf-8").splitlines()):
        task = json.loads(line)
        instance = task["instances"][0]
        row = {"instruction": task["instruction"], "input": instance["input"],
               "output": instance["output"]}  # fmt: skip
        rows["valid" if i % 10 == 9 else "train"].append(json.dumps(row, ensure_ascii=False))
    for name, lines in rows.items():
        (work / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return work / "train.jsonl", work / "valid.jsonl"


def data_config(path: Path) -> dict[str, Any]:
    return {"sources": [{"path": str(path), "format": "alpaca", "template": "alpaca"}],
            "valid_fraction": 0.0}  # fmt: skip


def eval_loss(model: Any, rows: Path) -> float:
    """Mean response loss over the packed held-out rows (examples isolated: 4-D mask)."""
    from bloomkit.finetuning.lora import held_out_loss, packed_alibi

    model.transformer.build_alibi_tensor = packed_alibi
    return held_out_loss(model, rows, SEQ)


def run_sft(model: Path, train: Path, steps: int, work: Path) -> dict[str, Any]:
    from bloomkit.finetuning.sft import SFTConfig, finetune_sft
    from bloomkit.rundir import RunDir

    config = SFTConfig.model_validate({
        "init_from": str(model), "model": {"seq_length": SEQ}, "data": data_config(train),
        "optim": {"lr": LR["full"], "warmup_steps": 2, "weight_decay": 0.0},
        "train": {"steps": steps, "micro_batch_size": BATCH, "global_batch_size": BATCH,
                  "eval_batches": 0, "log_interval": steps},
    })  # fmt: skip
    run = RunDir(work / "sft", "bench sft", config)
    summary = finetune_sft(config, run)
    metrics = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    seconds = sum(row["step_s"] for row in metrics)
    tokens = summary["data"]["train"]["fill"] * summary["tokens"]  # real share of the rows
    return {"tokens": tokens, "seconds": seconds, "hf": Path(summary["hf"])}


def run_lora(model: Path, train: Path, steps: int, work: Path) -> dict[str, Any]:
    from bloomkit.finetuning.lora import LoRAConfig, finetune_lora
    from bloomkit.rundir import RunDir

    config = LoRAConfig.model_validate({
        "init_from": str(model), "seq_length": SEQ, "r": R, "alpha": ALPHA, "dropout": 0.05,
        "data": data_config(train), "steps": steps, "batch_size": BATCH, "log_interval": steps,
        "optim": {"lr": LR["lora"], "warmup_steps": 2, "weight_decay": 0.0},
    })  # fmt: skip
    summary = finetune_lora(config, RunDir(work / "lora", "bench lora", config))
    return {"tokens": summary["tokens"], "seconds": summary["train_seconds"],
            "hf": Path(summary["hf"])}  # fmt: skip


def trl_rows(train: Path, tokenizer_dir: Path) -> list[dict[str, str]]:
    """Prompt/completion rows from the same templated examples bloomkit trains on (the same
    ones dropped: prompts longer than a row)."""
    from collections import Counter

    from bloomkit.finetuning.sft import SFTDataConfig
    from bloomkit.finetuning.sft_data import (
        BadRow,
        encode_example,
        load_tokenizer,
        mask_example,
        read_examples,
    )

    config = SFTDataConfig.model_validate(data_config(train))
    tokenizer = load_tokenizer(tokenizer_dir)
    rows = []
    for example, template, _ in read_examples(config.sources, {}, Counter(), []):
        segments = template.segments(example)
        try:
            mask_example(*encode_example(segments, tokenizer), SEQ, "truncate")
        except BadRow:
            continue
        rows.append({"prompt": "".join(t for t, trained in segments if not trained),
                     "completion": "".join(t for t, trained in segments if trained)})  # fmt: skip
    return rows


def run_trl(
    model: Path, train: Path, steps: int, work: Path, lora: bool, packing: str
) -> dict[str, Any]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, BloomForCausalLM
    from trl import SFTConfig, SFTTrainer

    from bloomkit.finetuning.lora import BLOOM_LINEAR

    args = SFTConfig(
        output_dir=str(work / f"trl-{packing}-{'lora' if lora else 'full'}"), max_steps=steps,
        per_device_train_batch_size=BATCH, max_length=SEQ, **TRL_PACKING[packing],
        completion_only_loss=True, learning_rate=LR["lora" if lora else "full"],
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": 0.1},
        warmup_steps=2, weight_decay=0.0, adam_beta2=0.95, max_grad_norm=1.0, use_cpu=True,
        report_to=[], save_strategy="no", logging_steps=steps, seed=1234,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
    )  # fmt: skip
    adapters = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.05, task_type="CAUSAL_LM",
                          target_modules=list(BLOOM_LINEAR)) if lora else None  # fmt: skip
    trainer = SFTTrainer(
        model=BloomForCausalLM.from_pretrained(model), args=args,
        train_dataset=Dataset.from_list(trl_rows(train, model)),
        processing_class=AutoTokenizer.from_pretrained(model), peft_config=adapters,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    net = trainer.model.merge_and_unload() if lora else trainer.model
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": seconds, "model": net}


def report(
    results: dict[str, dict[str, Any]], opts: argparse.Namespace, scored: int, start_loss: float
) -> list[str]:
    """The results file's tables and notes (all but the machine and the command)."""
    lines = [
        "# bloomkit full SFT and LoRA vs TRL SFTTrainer",
        "",
        f"Tiny random BLOOM (2 layers, hidden 64, vocab 512), {opts.steps} steps × {BATCH} rows "
        f"× {SEQ} positions, loss on responses only; Alpaca seed tasks, every 10th held out "
        f"({scored} examples scored); {opts.threads} CPU threads.",
        "",
        "| run | tokens | train s | tokens/s | eval loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        cells = [f"{r['tokens']:,.0f}", f"{r['seconds']:.2f}", f"{r['tokens_per_s']:,.0f}",
                 f"{r['loss']:.4f}"]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", "bloomkit against each TRL setting (same model, data, steps, LR):", "",
              "| bloomkit | TRL | tokens/s ÷ TRL | loss bloomkit | loss TRL | loss − TRL |",
              "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for ours, kind in (("bloomkit SFT (full)", "full"), ("bloomkit LoRA", "LoRA")):
        r = results[ours]
        for packing in TRL_PACKING:
            peer = results[f"TRL {packing} ({kind})"]
            lines.append(
                f"| {ours} | {packing} | **{r['tokens_per_s'] / peer['tokens_per_s']:.2f}×** | "
                f"{r['loss']:.4f} | {peer['loss']:.4f} | {r['loss'] - peer['loss']:+.4f} |"
            )
    return [
        *lines,
        "",
        f"- eval loss of the untuned model: {start_loss:.4f} (ln 512 = 6.238); LoRA on this "
        "random base cannot go far below it: the frozen tied embeddings (std 0.02) keep every "
        "logit small.",
        "- tokens: non-padding tokens trained on (bloomkit: the packed rows' fill × positions; "
        "TRL: `num_input_tokens_seen`, non-padding); seconds: all training steps, the first "
        "included; same LR (full 1e-2, LoRA 5e-2), warmup 2, cosine to 10%, β2 0.95, clip 1.0.",
        "- what each one computes: bloomkit packs whole examples into rows of 256 and blocks "
        "attention between them (block-diagonal mask). TRL `bfd` is padding-free: a batch is "
        "flattened into one sequence whose examples are marked only by `position_ids`, which "
        "BLOOM (ALiBi, eager attention) ignores, so examples attend to the ones before them and "
        "eager attention spans the whole flattened batch (quadratic in batch × length). TRL "
        "`wrapped` makes rows of 256 like bloomkit's but cuts examples at row ends and lets "
        "the examples of a row attend to each other; the closest to bloomkit in cost, not in "
        "what is learnt. Unpacked TRL pads each batch to its longest example: nothing is "
        "shared, but the padding is computed too (not counted in tokens).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seeds = REPO.parent / "shared/data/finetune/alpaca_seed_tasks.jsonl"
    parser.add_argument("--seeds", type=Path, default=seeds)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    opts = parser.parse_args()
    load_before = os.getloadavg()[0]
    import trl
    from transformers import BloomForCausalLM

    from bloomkit.finetuning.sft import SFTDataConfig
    from bloomkit.finetuning.sft_data import load_tokenizer, prepare_sft_data

    torch.set_num_threads(opts.threads)
    work = Path(tempfile.mkdtemp(prefix="sft-bench-"))
    model = tiny_model(work, opts.seeds)
    train, valid = split_seeds(opts.seeds, work)
    held_out = prepare_sft_data(SFTDataConfig.model_validate(data_config(valid)),
                                load_tokenizer(model), work / "eval", seq_length=SEQ)  # fmt: skip
    rows = work / "eval" / "train"
    start_loss = eval_loss(BloomForCausalLM.from_pretrained(model), rows)
    results: dict[str, dict[str, Any]] = {}
    for name, run in (("bloomkit SFT (full)", run_sft), ("bloomkit LoRA", run_lora)):
        result = run(model, train, opts.steps, work)
        result["loss"] = eval_loss(BloomForCausalLM.from_pretrained(result.pop("hf")), rows)
        results[name] = result
    for kind, lora in (("full", False), ("LoRA", True)):
        for packing in TRL_PACKING:
            result = run_trl(model, train, opts.steps, work, lora, packing)
            result["loss"] = eval_loss(result.pop("model").eval(), rows)
            results[f"TRL {packing} ({kind})"] = result
    for result in results.values():
        result["tokens_per_s"] = result["tokens"] / result["seconds"]
    command = shlex.join([sys.executable, *sys.argv]).replace(str(REPO) + "/", "")
    lines = report(results, opts, held_out["kept"], start_loss)
    lines += [
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, 1-min load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other jobs make absolute "
        f"tokens/s noisy, the ratios less so), Python {platform.python_version()}, torch "
        f"{torch.__version__}, trl {trl.__version__}",
        "",
        "Reproduce:",
        "",
        f"    {command}",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
