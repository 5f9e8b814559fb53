"""Self-instruct against a scripted fake teacher answering in English, Chinese and Hindi with
real SIB-200 sentences; filters in every script; budget stop and resume without repaying."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest

from bloomkit.finetuning.instruction_filters import (
    InstructionFilter,
    Novelty,
    rouge_l,
    rouge_tokens,
    script_share,
)
from bloomkit.finetuning.self_instruct import SelfInstructConfig, parse_instructions, self_instruct
from bloomkit.finetuning.teacher import BudgetExceeded, TeacherConfig
from tests.finetuning.fake_teacher import MALFORMED, FakeTeacher, completion, prompt_of

# how each language asks to explain a sentence, and the code of its SIB-200 folder
FRAMES = {
    "English": ("en", "Explain this statement: {}"),
    "Chinese (Simplified)": ("zhs", "解释这句话：{}"),
    "Hindi": ("hi", "इस वाक्य को सरल शब्दों में समझाइए: {}"),
}
# one fixed extra per language: blacklisted in English, a near-copy of a Chinese seed
EXTRAS = {"en": "Draw a picture of a cat.", "zhs": "把这句话翻译成法文。", "hi": ""}
CHINESE_SEED = "把这句话翻译成英文。"


def sentences(shared_data, code: str) -> list[str]:
    with open(shared_data / "sib200" / code / "train.tsv", encoding="utf-8", newline="") as f:
        return [r["text"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def answer_in(prompt: str, texts: dict[str, list[str]]) -> str:
    """Three SIB-200 sentences (picked by the prompt's hash) framed as instructions in the
    language the prompt asks for, numbered after the prompt's examples, plus the extra."""
    name = next(n for n in FRAMES if f"output in {n}." in prompt)
    code, frame = FRAMES[name]
    start = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 600
    instructions = [frame.format(s) for s in texts[code][start : start + 3]]
    instructions += [EXTRAS[code]] if EXTRAS[code] else []
    blocks = [
        f"{k}. Instruction: {text}\n{k}. Input:\n<noinput>\n{k}. Output:\nAn answer."
        for k, text in enumerate(instructions, 4)
    ]
    return "\n###\n".join(blocks)


@pytest.fixture(scope="module")
def texts(shared_data):
    return {code: sentences(shared_data, code) for code in ("en", "zhs", "hi")}


@pytest.fixture
def seeds(seeds, tmp_path):
    """The 175 Alpaca seeds plus one Chinese seed task."""
    path = tmp_path / "seeds.jsonl"
    extra = {
        "id": "zh_seed",
        "instruction": CHINESE_SEED,
        "instances": [{"input": "我爱你", "output": "I love you."}],
    }
    path.write_text(
        seeds.read_text(encoding="utf-8") + json.dumps(extra, ensure_ascii=False) + "\n"
    )
    return path


def make_config(seeds, url, **teacher) -> SelfInstructConfig:
    return SelfInstructConfig(
        seeds=str(seeds),
        num_instructions=12,
        languages=["en", "zhs", "hi"],
        prompts_per_round=2,
        teacher=TeacherConfig(
            base_url=url,
            api_key_env=None,
            backoff_s=0.01,
            concurrency=1,
            price_output_per_1m=1.0,
            **teacher,
        ),
    )


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rouge_splits_unspaced_scripts_into_characters():
    assert rouge_tokens("把这句话翻译成英文。") == list("把这句话翻译成英文")
    assert rouge_l(rouge_tokens("把这句话翻译成英文。"), rouge_tokens(CHINESE_SEED)) == 1.0
    near = rouge_l(rouge_tokens("把这句话翻译成法文。"), rouge_tokens(CHINESE_SEED))
    assert near == pytest.approx(8 / 9)  # whitespace tokens would give 0: one token each
    # Devanagari vowel signs stay inside their word
    assert rouge_tokens("इस वाक्य को समझाइए") == ["इस", "वाक्य", "को", "समझाइए"]
    score, similar = Novelty([CHINESE_SEED, "Give me a word."]).most_similar(
        "把这句话翻译成法文", 0.7
    )
    assert (similar, score > 0.7) == (CHINESE_SEED, True)


def test_parser_tolerates_markdown_preambles_and_full_width_colons():
    text = (
        "Sure! Here are the tasks.\n###\n4. **Instruction:** 写一首关于秋天的诗。\n"
        "4. **Input:** <noinput>\n4. **Output:** 秋风起……\n###\n"
        "5. Instruction：उदाहरण दीजिए।\n5. Output：एक उदाहरण।\n###\n6. Instruction: no output"
    )
    rows = parse_instructions(text)
    assert rows[0] == {"instruction": "写一首关于秋天的诗。", "input": "", "output": "秋风起……"}
    assert rows[1] == {"instruction": "उदाहरण दीजिए।", "input": "", "output": "एक उदाहरण।"}
    assert rows[2]["output"] == ""
    # a completion continuing the prompt's open "4. Instruction:"
    assert (
        parse_instructions(" Name a colour.\n4. Output: Red")[0]["instruction"] == "Name a colour."
    )


@pytest.mark.parametrize(
    ("instruction", "language", "reason"),
    [
        ("Draw a graph of the sales.", "en", "blacklisted"),
        ("Describe a graphical user interface.", "en", None),  # "graph" is a word, not a prefix
        ("画一幅秋天的风景。", "zhs", "blacklisted"),
        ("एक वीडियो बनाइए जिसमें बिल्ली हो।", "hi", "blacklisted"),
        ("इस वाक्य को सरल शब्दों में समझाइए।", "hi", None),  # Alpaca's ASCII rule dropped this
        ("Explain photosynthesis simply.", "hi", "wrong_script"),
        ("¿Qué es la fotosíntesis?", "es", None),  # opens with ¿, as Spanish questions do
        ("(a) Explain photosynthesis.", "en", None),  # an opening bracket
        (") Explain how photosynthesis works.", "en", "starts_with_punctuation"),
        ("Qué?", "es", "too_short"),
        ("Résume ce paragraphe en une phrase.", "fr", None),
    ],
)
def test_filters_in_every_script(instruction, language, reason):
    row = {"instruction": instruction, "input": "", "output": "x"}
    assert InstructionFilter().reason(row, language) == reason


def test_script_share():
    assert script_share("解释这句话：Paris", "Hans") == pytest.approx(5 / 10)
    assert script_share("1234", "Latn") == 0.0


def test_multilingual_run_writes_alpaca_rows_with_provenance(seeds, texts, tmp_path):
    with FakeTeacher(lambda body, hit: completion(answer_in(prompt_of(body), texts))) as fake:
        report = self_instruct(make_config(seeds, fake.url), tmp_path)
    rows = read_jsonl(tmp_path / "self-instruct" / "instructions.jsonl")
    assert report["kept"] == len(rows) == 12
    assert {r["language"] for r in rows} == {"en", "zhs", "hi"}
    hindi = next(r for r in rows if r["language"] == "hi")
    assert hindi["instruction"].startswith("इस वाक्य को सरल शब्दों में समझाइए")
    assert hindi["input"] == "" and hindi["provenance"]["journal_key"]
    assert len(hindi["provenance"]["seeds"]) == 3
    dropped = read_jsonl(tmp_path / "self-instruct" / "dropped.jsonl")
    reasons = {(d["instruction"], d["reason"]) for d in dropped}
    assert ("Draw a picture of a cat.", "blacklisted") in reasons
    near_copy = next(d for d in dropped if d["instruction"] == EXTRAS["zhs"])
    assert near_copy["reason"] == "not_novel"
    assert near_copy["provenance"]["most_similar"] == CHINESE_SEED
    assert report["dropped_blacklisted"] >= 1 and report["dropped_not_novel"] >= 1
    assert report["blacklist_missing"] == []
    assert report["teacher"]["spent_usd_total"] == pytest.approx(50e-6 * len(fake.hits))


def test_budget_stop_then_resume_pays_nothing_twice(seeds, texts, tmp_path):
    def script(body, hit):
        return completion(answer_in(prompt_of(body), texts))

    with FakeTeacher(script) as fake:
        cfg = make_config(
            seeds, fake.url, budget_usd=0.00012
        )  # $50e-6 an answer: 3 start under the cap
        with pytest.raises(BudgetExceeded, match="budget spent"):
            self_instruct(cfg, tmp_path / "run")
        assert len(fake.hits) == 3
        partial = read_jsonl(tmp_path / "run" / "self-instruct" / "instructions.jsonl")
        assert partial  # the paid answers were written out before stopping
        cfg.teacher.budget_usd = 1.0
        report = self_instruct(cfg, tmp_path / "run")
        resumed_hits = len(fake.hits)
        assert report["teacher"]["reused"] == 3
        self_instruct(cfg, tmp_path / "run")  # a finished run replays from the journal alone
        assert len(fake.hits) == resumed_hits
    with FakeTeacher(script) as fresh:
        self_instruct(make_config(seeds, fresh.url), tmp_path / "fresh")
    assert resumed_hits == len(fresh.hits)  # the interrupted run paid no more in total
    resumed = read_jsonl(tmp_path / "run" / "self-instruct" / "instructions.jsonl")
    assert resumed == read_jsonl(tmp_path / "fresh" / "self-instruct" / "instructions.jsonl")


def test_garbage_answers_are_counted_and_truncated_blocks_dropped(seeds, tmp_path):
    good = (
        "4. Instruction: Name three rivers of Africa.\n4. Output: Nile.\n5. Instruction: Name the"
    )

    def script(body, hit):
        return MALFORMED if hit % 2 else completion(good, finish="length")

    with FakeTeacher(script) as fake:
        cfg = make_config(seeds, fake.url, max_retries=0)
        cfg.languages, cfg.max_rounds = ["en"], 2
        report = self_instruct(cfg, tmp_path)
    assert report["answers_failed"] == 2 and report["teacher"]["malformed_json"] == 2
    assert report["dropped_truncated"] == 2 and report["kept"] == 1


def test_bad_seed_file_names_the_line_and_field(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(
        '{"instruction": "ok", "instances": [{"output": "x"}]}\n'
        '{"instances": [{"input": "", "output": "y"}]}\n'
        '{"instruction": "no instances"}\n'
        '{"instruction": "no output", "instances": [{"input": "z"}]}\n'
        "not json\n"
    )
    cfg = SelfInstructConfig(seeds=str(path), teacher=TeacherConfig(base_url="http://127.0.0.1:9"))
    with pytest.raises(ValueError) as caught:
        self_instruct(cfg, tmp_path)
    message = str(caught.value)
    assert "4 bad seed task(s)" in message
    assert "seeds.jsonl:2: missing field 'instruction'" in message
    assert "seeds.jsonl:3: missing field 'instances'" in message
    assert "seeds.jsonl:4: missing field 'instances[0].output'" in message
    assert "seeds.jsonl:5: invalid JSON" in message
    assert "KeyError" not in message


def test_unknown_language_is_a_config_error():
    with pytest.raises(ValueError, match="unknown language code"):
        SelfInstructConfig(seeds="s.jsonl", languages=["en", "klingon"])
    with pytest.raises(ValueError, match="unknown language code 'klingon'"):
        SelfInstructConfig(seeds="s.jsonl", blacklist={"klingon": ["nuqDaq"]})
    with pytest.raises(ValueError, match="single character"):
        SelfInstructConfig(seeds="s.jsonl", blacklist={"zhs": ["画"]})
