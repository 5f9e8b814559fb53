"""Budget forcing against the real ``bloomkit serve`` with tiny random models.

What these tests show, honestly: a random model almost never writes an end-of-thinking
delimiter, so with it the *maximum* is what ends the thinking. To exercise the *minimum* the
tests build a model biased toward a one-token delimiter ``<|end_think|>`` (the final layer
norm's bias points at that token's embedding: about 1 token in 5 is the delimiter, so the
unforced thinking ends after a handful of tokens). The texts are gibberish; the tests check the
control loop and the token accounting, not reasoning quality.
"""

from __future__ import annotations

import json

import pytest
import torch
import typer
from transformers import AutoTokenizer, BloomConfig, BloomForCausalLM
from typer.testing import CliRunner

from bloomkit.finetuning.budget import (
    BudgetForcing,
    CompletionsClient,
    EndpointError,
    budget_force,
)
from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread
from bloomkit.finetuning.serve_cli import generate_command

END = "<|end_think|>"
PROMPT = "Question: how many fruits are in a basket of three apples and two pears?\n"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model runs faster on one thread, and shared CI cores are not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def biased_model(sft_tokenizer, tmp_path_factory):
    """A random 2-layer BLOOM whose every next-token distribution puts ~20% on ``END``."""
    folder = tmp_path_factory.mktemp("biased-bloom")
    tokenizer = AutoTokenizer.from_pretrained(sft_tokenizer)
    tokenizer.add_tokens([END])
    torch.manual_seed(0)
    model = BloomForCausalLM(BloomConfig(
        vocab_size=len(tokenizer), hidden_size=64, n_layer=2, n_head=4,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    ))  # fmt: skip
    with torch.no_grad():
        target = model.transformer.word_embeddings.weight[tokenizer.convert_tokens_to_ids(END)]
        # logits are ln_f(h) · E (tied): adding 5·E_t/|E_t|² to the bias adds 5 to END's logit
        model.transformer.ln_f.bias += 5 * target / target.square().sum()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def random_server(tiny_bloom):
    with serve_in_thread(create_app(tiny_bloom, ServeConfig(model_name="random"))) as url:
        yield url


@pytest.fixture(scope="module")
def biased_server(biased_model):
    with serve_in_thread(create_app(biased_model, ServeConfig(model_name="biased"))) as url:
        yield url


def forcing(**fields) -> BudgetForcing:
    return BudgetForcing(think_start="<think>\n", think_end=END, wait=" Wait", **fields)


@pytest.mark.parametrize("local", [False, True], ids=["usage", "tokenizer"])
def test_maximum_forces_the_end_of_thinking(random_server, tiny_bloom, local):
    """The random model never ends its thinking, so it runs into the maximum; thinking is
    then closed by the delimiter and an answer follows."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bloom)
    client = CompletionsClient(random_server)
    config = BudgetForcing(max_thinking_tokens=12, max_answer_tokens=5, temperature=0)
    result = budget_force(client, PROMPT, config, tokenizer if local else None)
    assert client.model == "random"
    assert result.forced_end and result.waits == 0 and result.calls == 2
    assert result.thinking_tokens == (len(tokenizer.encode(result.thinking)) if local else 12)
    assert result.thinking_tokens <= 12
    assert result.answer and result.answer_tokens <= 5
    assert result.text(config).count(config.think_end) == 1


def test_the_biased_model_ends_its_thinking_early_without_forcing(biased_server):
    """The control for the next test: left alone, the model stops thinking within a few
    tokens, below the minimum of 20 used there."""
    result = budget_force(CompletionsClient(biased_server), PROMPT,
                          forcing(max_thinking_tokens=64, temperature=1, seed=0))  # fmt: skip
    assert not result.forced_end and result.waits == 0
    assert result.thinking_tokens < 16


@pytest.mark.parametrize(
    ("local", "low", "high"),
    # min == max only with a local tokenizer: from usage alone the size of a "Wait" is unknown
    # until measured, so it is budgeted at its UTF-8 bytes + 1 and may not fit under the max
    [(False, 20, 48), (True, 20, 48), (True, 16, 16)],
    ids=["usage", "tokenizer", "tokenizer-exact"],
)
def test_minimum_appends_wait_and_bounds_hold(biased_server, biased_model, local, low, high):
    tokenizer = AutoTokenizer.from_pretrained(biased_model)
    config = forcing(min_thinking_tokens=low, max_thinking_tokens=high, max_answer_tokens=4,
                     temperature=1, seed=0)  # fmt: skip
    result = budget_force(CompletionsClient(biased_server), PROMPT, config,
                          tokenizer if local else None)  # fmt: skip
    assert result.waits >= 1  # the model tried to stop early and was sent on
    assert result.thinking.count("Wait") >= result.waits and END not in result.thinking
    assert low <= result.thinking_tokens <= high
    if local:  # exact: the count is the thinking re-tokenized
        assert result.thinking_tokens == len(tokenizer.encode(result.thinking))


def test_generate_command_with_budget_forcing(biased_server, tmp_path):
    app = typer.Typer()
    app.command()(generate_command)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": PROMPT}) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["--url", f"{biased_server}/v1", "--input", str(prompts), "--output", str(out),
            "--budget-forcing", "--min-thinking-tokens", "10", "--max-thinking-tokens", "30",
            "--think-end", END, "--wait", " Wait", "--max-tokens", "4", "--temperature", "1",
            "--seed", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert 10 <= row["thinking_tokens"] <= 30 and row["prompt"] == PROMPT
    assert "usage:" in result.output

    result = CliRunner().invoke(app, ["--url", "http://127.0.0.1:9", "hello"])
    assert result.exit_code == 2 and "ConnectError" in result.output


def test_bad_bounds_and_endpoints_say_what_is_wrong(random_server):
    with pytest.raises(ValueError, match="min <= max"):
        BudgetForcing(min_thinking_tokens=10, max_thinking_tokens=5)
    with pytest.raises(EndpointError, match="does not exist"):
        CompletionsClient(random_server, model="nope").complete("x", max_tokens=1)
