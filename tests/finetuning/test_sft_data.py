"""Masking, packing and the written rows: the loss sees response tokens only (checked token by
token), packing keeps every example intact, and a packed row gives the logits of its examples
run one by one (attention blocked across examples, ALiBi needing no position reset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from bloomkit.finetuning.formats import BadRow, Example, normalise
from bloomkit.finetuning.sft import SFTDataConfig
from bloomkit.finetuning.sft_data import (
    ByteTokenizer,
    HFTokenizer,
    encode_example,
    mask_example,
    pack,
    prepare_sft_data,
)
from bloomkit.finetuning.templates import resolve_template


@pytest.fixture(scope="module")
def seed_examples(seeds) -> list[Example]:
    lines = seeds.read_text(encoding="utf-8").splitlines()
    return [ex for n, line in enumerate(lines, 1) for ex in normalise(json.loads(line), "auto",
                                                                      f"seeds:{n}")]  # fmt: skip


def _masked(example: Example, template: str, tokenizer, seq_length: int = 4096):
    ids, trained = encode_example(resolve_template(template).segments(example), tokenizer)
    return mask_example(ids, trained, seq_length, "truncate")


def test_loss_mask_covers_exactly_the_response_token_by_token(seed_examples, sft_tokenizer):
    tokenizer = HFTokenizer(sft_tokenizer)
    example = next(ex for ex in seed_examples if ex.context)  # Alpaca's prompt with input
    segments = resolve_template("alpaca").segments(example)
    prompt_ids = tokenizer.encode(segments[0][0])
    inputs, labels, mask, truncated = _masked(example, "alpaca", tokenizer)
    assert not truncated and len(inputs) == len(labels) == len(mask)
    for i in range(len(labels)):  # label i is token i + 1: trained exactly past the prompt
        assert mask[i] == int(i + 1 >= len(prompt_ids)), i
    trained = labels[mask == 1]
    assert trained[-1] == tokenizer.eos_id
    assert tokenizer.decode(trained[:-1].tolist()) == example.messages[1][1]
    assert tokenizer.decode(inputs[: len(prompt_ids)].tolist()) == segments[0][0]
    assert "### Input:" in segments[0][0] and example.context in segments[0][0]


def test_dolly_trains_its_end_marker_and_chat_only_assistant_turns(seed_examples):
    bytes_ = ByteTokenizer()
    _, labels, mask, _ = _masked(seed_examples[0], "dolly", bytes_)
    assert bytes(labels[mask == 1][:-1].tolist()).decode() == (
        seed_examples[0].messages[1][1] + "\n\n### End"
    )
    a, b = seed_examples[:2]
    chat = Example(
        messages=[
            ("system", "Réponds brièvement."), ("user", a.messages[0][1]),
            ("assistant", a.messages[1][1]), ("user", b.messages[0][1]),
            ("assistant", b.messages[1][1]),
        ]
    )  # fmt: skip
    inputs, labels, mask, _ = _masked(chat, "chat", bytes_)
    trained = bytes(labels[mask == 1][:-1].tolist()).decode()
    assert trained == a.messages[1][1] + b.messages[1][1]
    untrained = bytes(labels[mask == 0].tolist()).decode()
    assert b.messages[0][1] in untrained and "Réponds" in bytes(inputs.tolist()).decode()


def test_long_examples_are_truncated_dropped_or_refused(seed_examples):
    bytes_ = ByteTokenizer()
    ids, trained = encode_example(resolve_template("alpaca").segments(seed_examples[0]), bytes_)
    prompt = trained.index(1)
    inputs, _, mask, truncated = mask_example(ids, trained, prompt + 5, "truncate")
    assert truncated and len(inputs) == prompt + 5 and mask.sum() == 6
    with pytest.raises(BadRow, match="too_long"):
        mask_example(ids, trained, prompt + 5, "drop")
    with pytest.raises(BadRow, match="prompt_too_long"):
        mask_example(ids, trained, prompt - 1, "truncate")


def test_packing_keeps_every_example_once_and_intact(seed_examples):
    bytes_ = ByteTokenizer()
    examples = []
    for example in seed_examples:
        try:
            examples.append(_masked(example, "alpaca", bytes_, 1024)[:3])
        except BadRow:  # the few seeds whose prompt alone is longer than the row
            continue
    assert len(examples) > 0.9 * len(seed_examples)
    arrays = pack(examples, 1024)
    assert arrays["tokens"].shape[1] == 1024
    assert arrays["tokens"].shape[0] < len(examples)  # several examples share rows
    found = []
    for r in range(arrays["tokens"].shape[0]):
        segments = arrays["segment_ids"][r]
        for s in np.unique(segments):
            at = segments == s
            part = tuple(arrays[k][r][at].tolist() for k in ("tokens", "labels", "loss_mask"))
            if not any(part[2]):  # the row's padding (every example trains at least its EOS)
                assert not any(part[0])
                continue
            found.append(part)
    expected = [tuple(a.tolist() for a in example) for example in examples]
    assert sorted(found) == sorted(expected)
    unpacked = pack(examples, 1024, packing=False)
    assert unpacked["tokens"].shape[0] == len(examples)


def test_prepare_writes_rows_and_a_report(seeds, multilingual_seeds, sft_tokenizer, tmp_path):
    config = SFTDataConfig(
        sources=[{"path": str(seeds), "name": "en"},
                 {"path": str(multilingual_seeds), "format": "alpaca", "name": "ml"}],
    )  # fmt: skip
    tokenizer = HFTokenizer(sft_tokenizer)
    report = prepare_sft_data(config, tokenizer, tmp_path, seq_length=256, vocab_size=512)
    assert report["rows"] == 350
    dropped = sum(v for k, v in report.items() if k.startswith("dropped_"))
    assert report["kept"] + dropped == report["examples"] and report["truncated"] > 0
    assert set(report["per_language"]) == {"en", "fr", "es", "zhs", "ar", "hi", "sw"}
    assert report["valid"]["examples"] == round(report["kept"] * 0.1)
    for split in ("train", "valid"):
        loss = np.load(tmp_path / split / "loss_mask.npy")
        assert loss.shape == (report[split]["rows"], 256)
        assert loss.sum() == report[split]["loss_tokens"]
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["problems"] == report["problems"]


def test_refuse_policy_lists_bad_rows(tmp_path, seeds):
    bad = tmp_path / "bad.jsonl"
    good = json.loads(seeds.read_text(encoding="utf-8").splitlines()[0])
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"instruction": "x"}) + "\n")
    config = SFTDataConfig(sources=[{"path": str(bad)}], on_bad_row="refuse")
    with pytest.raises(ValueError, match=rf"{bad}:2:instances: missing_field"):
        prepare_sft_data(config, ByteTokenizer(), tmp_path / "out", seq_length=512)
    assert not (tmp_path / "out" / "train").exists()


@pytest.mark.parametrize("backend", ["local", "sdpa"])
def test_packed_row_gives_the_logits_of_its_examples_run_alone(seed_examples, backend):
    from bloomkit.pretraining.launch import single_process_env
    from bloomkit.pretraining.model.config import BloomModelConfig
    from bloomkit.pretraining.model.init import portable_init_
    from bloomkit.pretraining.model.spec import build_model
    from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel
    from bloomkit.pretraining.step import forward_logits

    bytes_ = ByteTokenizer()
    examples = [_masked(ex, "alpaca", bytes_, 512)[:3] for ex in seed_examples[:3]]
    length = sum(len(e[0]) for e in examples) + 7  # 7 positions of padding at the end
    row = pack(examples, length)
    assert row["tokens"].shape[0] == 1
    model = BloomModelConfig(
        preset="tiny", init_method_std=0.3, seq_length=length, attention_backend=backend
    )
    with single_process_env():
        init_parallel(ParallelConfig())
        try:
            net = build_model(model, ParallelConfig())
            portable_init_(net, model, 0)
            tokens = torch.from_numpy(row["tokens"].astype(np.int64))
            segments = torch.from_numpy(row["segment_ids"].astype(np.int64))
            packed = forward_logits(net, tokens, segments)[0]
            unmasked = forward_logits(net, tokens)[0]
            alone = [forward_logits(net, torch.from_numpy(e[0][None]).long())[0] for e in examples]
        finally:
            destroy_parallel(process_group=True)
    at = 0
    for (inputs, labels, mask), logits in zip(examples, alone, strict=True):
        part = packed[at : at + len(inputs)]
        assert torch.allclose(part, logits, atol=1e-4), (part - logits).abs().max()
        loss = torch.nn.functional.cross_entropy(
            part, torch.from_numpy(labels).long(), reduction="none"
        )
        alone_loss = torch.nn.functional.cross_entropy(
            logits, torch.from_numpy(labels).long(), reduction="none"
        )
        weights = torch.from_numpy(mask).float()
        assert torch.allclose((loss * weights).sum(), (alone_loss * weights).sum(), atol=1e-3)
        at += len(inputs)
    second = slice(len(examples[0][0]), at)
    assert not torch.allclose(unmasked[second], packed[second], atol=1e-3)  # the mask matters


VI_TEMPLATE = {  # Alpaca's layout in Vietnamese, defined in the run's config
    "language": "vi",
    "prompt": "Dưới đây là một chỉ dẫn mô tả một nhiệm vụ.\n\n### Chỉ dẫn:\n{instruction}\n\n"
    "### Trả lời:\n",
    "prompt_with_input": "Dưới đây là một chỉ dẫn kèm dữ liệu.\n\n### Chỉ dẫn:\n{instruction}"
    "\n\n### Dữ liệu:\n{input}\n\n### Trả lời:\n",
}
VI_ROWS = [
    {"instruction": "Kể tên một loại trái cây nhiệt đới.", "output": "Xoài."},
    {"instruction": "Dịch sang tiếng Anh.", "input": "Xin chào", "output": "Hello"},
    {"instruction": "Thủ đô của Việt Nam là gì?", "output": "Hà Nội."},
    {"instruction": "Viết một câu về biển.", "output": "Biển hôm nay rất xanh.",
     "template": "chi-dan-vj"},
]  # fmt: skip


def test_a_config_template_in_vietnamese_frames_and_masks_the_rows(tmp_path):
    from bloomkit.config import load_config
    from bloomkit.finetuning.sft import SFTConfig

    rows = tmp_path / "vi.jsonl"
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in VI_ROWS), "utf-8")
    config_file = tmp_path / "sft.yaml"
    config_file.write_text(
        yaml.safe_dump({"data": {
            "templates": {"chi-dan-vi": VI_TEMPLATE}, "packing": False, "valid_fraction": 0.0,
            "sources": [{"path": str(rows), "format": "alpaca", "template": "chi-dan-vi"}],
        }}, allow_unicode=True),
        encoding="utf-8",
    )  # fmt: skip
    config = load_config(SFTConfig, config_file).data
    tokenizer = ByteTokenizer()
    report = prepare_sft_data(config, tokenizer, tmp_path / "out", seq_length=512)
    assert report["per_language"] == {"vi": 3} and report["dropped_unknown_template"] == 1
    assert "'chi-dan-vj' did you mean 'chi-dan-vi'" in report["problems"][0]
    arrays = {k: np.load(tmp_path / "out" / "train" / f"{k}.npy") for k in ("tokens", "labels",
                                                                          "loss_mask")}  # fmt: skip
    texts = {}
    for tokens, labels, mask in zip(*arrays.values(), strict=True):
        trained = labels[mask == 1]
        prompt = tokenizer.decode(tokens[: int(np.argmax(mask)) + 1].tolist())
        assert trained[-1] == tokenizer.eos_id
        texts[tokenizer.decode(trained[:-1].tolist())] = prompt
    assert texts["Xoài."] == VI_TEMPLATE["prompt"].format(instruction=VI_ROWS[0]["instruction"])
    assert texts["Hello"].endswith("### Dữ liệu:\nXin chào\n\n### Trả lời:\n")
    assert "Below is an instruction" not in "".join(texts.values())


def test_an_unknown_default_template_names_the_config_ones():
    from bloomkit.finetuning.sft import SFTDataConfig

    with pytest.raises(ValueError, match="did you mean 'chi-dan-vi'"):
        SFTDataConfig.model_validate(
            {"templates": {"chi-dan-vi": VI_TEMPLATE},
             "sources": [{"path": "vi.jsonl", "template": "chi-dan-v"}]}
        )  # fmt: skip
