"""Full SFT on the pretraining trainer: ``finetune_sft(config, run) -> dict``.

No second training loop: the instruction rows are read, templated, masked and packed once
(``RUN/sft/``, see :mod:`.sft_data`); a Hugging Face start model becomes a bloomkit checkpoint
(:func:`~bloomkit.pretraining.convert.import_hf`, see :func:`import_layout`); then
:func:`~bloomkit.pretraining.pretrain.pretrain` trains with ``data.sft`` = the rows and
``checkpoint.load`` = the start model; finally :func:`~bloomkit.pretraining.convert.export_hf`
writes the tuned checkpoint as a Hugging Face folder. Outputs::

    RUN/sft/             packed rows and report.json (read, kept, dropped_<reason>, truncated)
    RUN/init/            the imported start model (``kind: weights`` checkpoint)
    RUN/checkpoints/     the trainer's step-N checkpoints; RUN/metrics.jsonl, RUN/loss.png
    RUN/hf/              the tuned BloomForCausalLM with tokenizer, model card, LICENSE-RAIL
    RUN/summary.json     trainer summary (losses, valid_loss) + data report + a sample generation

Running the command again on the same run directory resumes: the rows and the import are
reused, training continues from the newest checkpoint, and a finished run only re-exports.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator

from bloomkit.config import Section
from bloomkit.console import log
from bloomkit.finetuning.formats import Example, FormatName
from bloomkit.finetuning.sft_data import HFTokenizer, Tokenizer, load_tokenizer, prepare_sft_data
from bloomkit.finetuning.templates import PromptTemplate, resolve_template
from bloomkit.pretraining import launch
from bloomkit.pretraining.checkpoint import META, CheckpointConfig, read_meta
from bloomkit.pretraining.data import DataConfig
from bloomkit.pretraining.model.config import BloomModelConfig
from bloomkit.pretraining.optim import OptimConfig
from bloomkit.pretraining.parallel import ParallelConfig
from bloomkit.pretraining.train import PretrainConfig, TrainConfig
from bloomkit.rundir import RunDir, atomic_write_json


class SFTSource(Section):
    """One file or dataset of instruction rows."""

    path: str
    """``.jsonl``, ``.json``, or ``hf:NAME[:SPLIT]`` / ``hf:LOCAL_PATH`` (``datasets``)."""
    format: FormatName = "auto"
    template: str = "alpaca"
    """Prompt template for rows that name none (a row may carry its own ``template``)."""
    name: str | None = None
    """Name in the report (default: the path)."""


class SFTDataConfig(Section):
    """What to tune on and how it is turned into packed, masked rows."""

    sources: Annotated[list[SFTSource], Field(min_length=1)]
    templates: dict[str, PromptTemplate] = {}
    """Extra templates by name, beside the built-in ones (``finetuning/templates/``)."""
    tokenizer: str | None = None
    """``bytes``, or a Hugging Face tokenizer folder; ``null``: the ``init_from`` folder's."""
    packing: bool = True
    """Several examples per row, attention blocked between them (``false``: one per row)."""
    overlong: Literal["truncate", "drop"] = "truncate"
    """Examples longer than ``model.seq_length``: cut the response, or drop the example."""
    on_bad_row: Literal["skip", "refuse"] = "skip"
    """Bad rows (missing fields, empty responses, prompts longer than the sequence, unknown
    templates): log ``file:row`` and skip them, or refuse the whole data set."""
    valid_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Share of the examples held out for the eval loss (split before packing)."""
    seed: int = 1234

    @model_validator(mode="after")
    def _known_templates(self) -> SFTDataConfig:
        for source in self.sources:  # refuse an unknown default template before any work
            try:
                resolve_template(source.template, self.templates)
            except ValueError as err:
                raise ValueError(f"sources[{source.path}].template: {err}") from None
        return self


class SFTConfig(Section):
    """``bloomkit finetune sft`` config: start model, layout, data, optimizer, loop."""

    init_from: str | None = None
    """The model to tune: a Hugging Face ``BloomForCausalLM`` folder or hub name (imported into
    ``RUN/init`` at this run's TP × PP), or a bloomkit checkpoint folder (one with
    ``bloomkit.json``, e.g. a pretraining run's ``checkpoints/step-N``); ``null`` = a fresh
    ``model`` (tests, ablations)."""
    model: BloomModelConfig = BloomModelConfig(preset="tiny")
    """Shapes when ``init_from`` is null; with it only the fields in :data:`RUN_FIELDS` are
    taken from here, the shapes from the start model."""
    parallel: ParallelConfig = ParallelConfig()
    data: SFTDataConfig
    optim: OptimConfig = OptimConfig(lr=1e-4, warmup_steps=2, weight_decay=0.0)
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    """Saving and stopping, as in pretraining; ``load`` is set from ``init_from``."""
    export_hf: bool = True
    """Write the tuned model to ``RUN/hf`` as a ``BloomForCausalLM`` folder."""

    @model_validator(mode="after")
    def _one_start(self) -> SFTConfig:
        if self.checkpoint.load is not None:
            raise ValueError("checkpoint.load is set by SFT; give the start model as init_from")
        return self


RUN_FIELDS = ("seq_length", "attention_backend", "hidden_dropout", "attention_dropout",
              "recompute", "recompute_num_layers")  # fmt: skip
"""Model fields that belong to the run, not to the start model's weights."""
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def is_checkpoint(init_from: str | None) -> bool:
    """Whether ``init_from`` names a bloomkit checkpoint (not a Hugging Face model)."""
    return init_from is not None and (Path(init_from) / META).is_file()


def resolve_model(config: SFTConfig) -> BloomModelConfig:
    """The model to tune: the start model's shapes with this run's :data:`RUN_FIELDS`."""
    if config.init_from is None:
        return config.model
    run_fields = {k: getattr(config.model, k) for k in RUN_FIELDS}
    if is_checkpoint(config.init_from):
        saved = read_meta(Path(config.init_from))["model"]
        fields = {k: v for k, v in saved.items() if k != "ffn_size"}
        return BloomModelConfig(**{**fields, **run_fields})
    from transformers import AutoConfig

    from bloomkit.pretraining.hf import model_config_from_hf

    local = Path(config.init_from)
    if local.is_dir() and not (local / "config.json").is_file():
        raise FileNotFoundError(f"init_from: {local} has no config.json (nor {META})")
    try:
        hf_config = AutoConfig.from_pretrained(config.init_from)
    except OSError as err:
        raise OSError(f"init_from {config.init_from}: {err}") from None
    return model_config_from_hf(hf_config, **run_fields)


def resolve_tokenizer(config: SFTConfig) -> Tokenizer:
    """``data.tokenizer``; else a Hugging Face ``init_from``'s own (a hub name's, or a folder's
    when it has tokenizer files); else UTF-8 bytes (a bloomkit checkpoint carries none)."""
    if config.data.tokenizer is not None:
        return load_tokenizer(config.data.tokenizer)
    init = config.init_from
    if init is None or is_checkpoint(init):
        return load_tokenizer("bytes")
    folder = Path(init)
    has_own = not folder.is_dir() or any((folder / f).is_file() for f in _TOKENIZER_FILES)
    return load_tokenizer(init if has_own else "bytes")


def prepare_rows(
    config: SFTConfig, tokenizer: Tokenizer, model: BloomModelConfig, folder: Path
) -> dict[str, Any]:
    """The packed rows' report; rank 0 prepares them once per run directory, the other
    ``torchrun`` ranks wait for them."""
    report_path = folder / "report.json"
    rank = int(os.environ["RANK"]) if launch.is_launched() else 0
    if report_path.is_file():
        log.info("reusing the packed rows in %s (delete it to prepare them again)", folder)
    elif rank == 0:
        return prepare_sft_data(
            config.data, tokenizer, folder, seq_length=model.seq_length,
            vocab_size=model.vocab_size,
        )  # fmt: skip
    deadline = time.monotonic() + 3600
    while not report_path.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 did not write {report_path} within an hour")
        time.sleep(0.5)
    return json.loads(report_path.read_text(encoding="utf-8"))


def import_layout(model: BloomModelConfig, parallel: ParallelConfig) -> ParallelConfig:
    """Where to import a HF model: TP1 × PP1 in this process (one copy of the weights, no
    processes to start; the trainer's load reshards it) unless the padded vocabulary differs
    at this run's TP, whose layout (DP 1) is then used."""
    if model.padded_vocab_size(1) == model.padded_vocab_size(parallel.tensor_parallel):
        return ParallelConfig()
    return ParallelConfig(
        tensor_parallel=parallel.tensor_parallel, pipeline_parallel=parallel.pipeline_parallel
    )


def start_checkpoint(config: SFTConfig, model: BloomModelConfig, out: Path) -> Path | None:
    """The checkpoint training starts from: ``init_from`` itself, or its import in
    ``RUN/init`` (made once, see :func:`import_layout`)."""
    from bloomkit.pretraining.convert import import_hf

    if config.init_from is None:
        return None
    if is_checkpoint(config.init_from):
        return Path(config.init_from)
    target = out / "init"
    if (target / META).is_file():
        return target
    layout = import_layout(model, config.parallel)
    if launch.is_launched():
        raise ValueError(
            f"init_from {config.init_from} is a Hugging Face model; under torchrun import it "
            f"first (bloomkit import hf {config.init_from} CKPT --tp {layout.tensor_parallel} "
            f"--pp {layout.pipeline_parallel}) and set init_from: CKPT"
        )
    return import_hf(config.init_from, target, layout)


def pretrain_config(
    config: SFTConfig, model: BloomModelConfig, out: Path, load: Path | None
) -> PretrainConfig:
    """The trainer's config for this SFT run: the packed rows, from the start checkpoint."""
    return PretrainConfig(
        model=model,
        parallel=config.parallel,
        data=DataConfig(sft=out / "sft", seed=config.data.seed),
        optim=config.optim,
        train=config.train,
        checkpoint=config.checkpoint.model_copy(update={"load": load}),
    )


def finetune_sft(config: SFTConfig, run: RunDir) -> dict[str, Any]:
    """Prepare the rows, import the start model, train, export; the summary (also
    ``RUN/summary.json``). Under ``torchrun`` every rank calls this; rank 0 writes the summary
    and the export is left to ``bloomkit export hf``."""
    from bloomkit.pretraining.pretrain import pretrain

    out = run.path
    model = resolve_model(config)
    tokenizer = resolve_tokenizer(config)
    report = prepare_rows(config, tokenizer, model, out / "sft")
    load = start_checkpoint(config, model, out)
    summary = pretrain(pretrain_config(config, model, out, load), run)
    if launch.is_launched() and os.environ["RANK"] != "0":
        return summary
    summary["init_from"] = config.init_from
    summary["data"] = {k: v for k, v in report.items() if k != "problems"}
    summary["loss_tokens_per_step"] = _loss_tokens_per_step(report, config.train)
    if (
        config.export_hf
        and summary["checkpoint"]
        and summary.get("finished", not summary["stopped"])
    ):
        summary.update(_export(config, Path(summary["checkpoint"]), out, tokenizer, report))
    atomic_write_json(out / "summary.json", summary)
    return summary


def _export(
    config: SFTConfig, checkpoint: Path, out: Path, tokenizer: Tokenizer, report: dict[str, Any]
) -> dict[str, Any]:
    """``RUN/hf`` from the final checkpoint (once), and a sample generation by it."""
    from bloomkit.pretraining.convert import export_hf

    folder = out / "hf"
    if launch.is_launched():
        log.info("export the tuned model with: bloomkit export hf %s %s", checkpoint, folder)
        return {}
    if not (folder / "config.json").is_file():
        tokenizer_dir = None
        if isinstance(tokenizer, HFTokenizer):
            tokenizer_dir = out / "tokenizer"
            save_tuned_tokenizer(tokenizer, training_template(config.data), tokenizer_dir)
        languages = sorted(k for k in report["per_language"] if k != "mul")
        export_hf(checkpoint, folder, tokenizer=tokenizer_dir, languages=languages)
    return {"hf": str(folder), "generation": _sample_generation(config, folder, tokenizer)}


def _loss_tokens_per_step(report: dict[str, Any], train: TrainConfig) -> float:
    """Response tokens the loss sees per step, on average (packing fills rows with them)."""
    rows = report["train"]["rows"]
    return report["train"]["loss_tokens"] / rows * train.global_batch_size if rows else math.nan


def generate(folder: Path, tokenizer: Tokenizer, prompt: str, max_new_tokens: int = 48) -> str:
    """Greedy continuation of ``prompt`` by the HF model in ``folder`` (stops at EOS)."""
    from transformers import BloomForCausalLM

    net = BloomForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([tokenizer.encode(prompt)])
    with torch.no_grad():
        output = net.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
            do_sample=False, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.eos_id,
        )  # fmt: skip
    return tokenizer.decode(output[0, ids.size(1) :].tolist())


def training_template(data: SFTDataConfig) -> PromptTemplate:
    """The first source's template: the tuned model's chat template and sample prompt (a
    warning says so when sources name different ones)."""
    names = list(dict.fromkeys(source.template for source in data.sources))
    if len(names) > 1:
        log.warning("sources use templates %s; the exported chat template is %r, the first "
                    "source's", ", ".join(names), names[0])  # fmt: skip
    return resolve_template(names[0], data.templates)


def save_tuned_tokenizer(tokenizer: HFTokenizer, template: PromptTemplate, folder: Path) -> None:
    """The tokenizer, with ``template`` as its chat template (the prompts it was tuned on)."""
    tokenizer.tokenizer.chat_template = template.chat_template()
    tokenizer.tokenizer.save_pretrained(folder)


def _sample_generation(config: SFTConfig, folder: Path, tokenizer: Tokenizer) -> dict[str, str]:
    """The first source's template applied to a fixed instruction, and the model's answer."""
    template = training_template(config.data)
    instruction = "Give three tips for staying healthy."
    prompt = template.segments(Example(messages=[("user", instruction), ("assistant", "")]))
    text = prompt[0][0]
    return {"prompt": text, "response": generate(folder, tokenizer, text)}
