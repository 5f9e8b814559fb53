"""``bloomkit serve`` end to end: the real uvicorn server in a thread over the tiny random BLOOM,
hit with httpx and the official ``openai`` client."""

from __future__ import annotations

import json
import shutil

import httpx
import openai
import pytest
import torch
import typer
from typer.testing import CliRunner

from bloomkit.finetuning.serve import ServeConfig, create_app, serve_in_thread
from bloomkit.finetuning.serve_cli import serve_command
from bloomkit.finetuning.textgen import TextGenerator

KEY = "test-key"
LIMITS = {"max_tokens_limit": 32, "max_n": 4, "max_request_bytes": 4096}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model runs faster on one thread, and shared CI cores are not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(tiny_bloom):
    app = create_app(tiny_bloom, ServeConfig(model_name="tiny", api_key=KEY, **LIMITS))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def http(server):
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


def complete(http, **body) -> dict:
    response = http.post("/v1/completions", json={"model": "tiny", **body})
    assert response.status_code == 200, response.text
    return response.json()


def stream(http, path: str, **body) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """Texts and finish reasons by choice index reassembled from an SSE stream, and its lines."""
    with http.stream("POST", path, json={"model": "tiny", "stream": True, **body}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    for line in lines[:-1]:
        for choice in json.loads(line.removeprefix("data: "))["choices"]:
            piece = choice["delta"].get("content", "") if "delta" in choice else choice["text"]
            texts[choice["index"]] = texts.get(choice["index"], "") + piece
            if choice["finish_reason"]:
                finish[choice["index"]] = choice["finish_reason"]
    return texts, finish, lines


def test_models_and_completion_usage(http, tiny_bloom):
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["tiny"]
    body = complete(http, prompt="Give three tips for staying healthy.", max_tokens=5)
    (choice,) = body["choices"]
    assert body["object"] == "text_completion" and choice["index"] == 0
    from transformers import AutoTokenizer

    prompt_ids = AutoTokenizer.from_pretrained(tiny_bloom).encode(
        "Give three tips for staying healthy."
    )
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(prompt_ids)
    assert 1 <= usage["completion_tokens"] <= 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 5 else "stop")


def test_openai_client_completion_and_chat_with_the_fallback_template(client):
    """The tiny tokenizer has no chat template, so chat renders the built-in ``chat`` one: the
    chat answer equals the greedy completion of that rendered prompt."""
    completion = client.completions.create(
        model="tiny", prompt="<|user|>\nName a colour.\n<|assistant|>\n", max_tokens=8,
        temperature=0,
    )  # fmt: skip
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=8,
        temperature=0,
    )  # fmt: skip
    assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"
    assert chat.choices[0].message.content == completion.choices[0].text
    assert chat.usage.prompt_tokens == completion.usage.prompt_tokens


def test_chat_uses_the_tokenizer_template_when_there_is_one(tiny_bloom, tmp_path):
    folder = shutil.copytree(tiny_bloom, tmp_path / "templated")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    prompt, templated = TextGenerator(folder).chat_prompt([("user", "Hi")])
    assert (prompt, templated) == ("[user] Hi\n", True)


def test_n_choices_are_reproducible_with_a_seed(client):
    def texts(seed: int) -> list[str]:
        answer = client.completions.create(
            model="tiny", prompt="Write a poem.", max_tokens=12, n=2, seed=seed, temperature=1
        )
        assert [c.index for c in answer.choices] == [0, 1]
        return [c.text for c in answer.choices]

    first = texts(7)
    assert texts(7) == first
    assert first[0] != first[1]  # the two choices sample independently
    assert texts(8) != first


def test_stop_strings_cut_the_text_before_them(http):
    full = complete(http, prompt="List five fruits.", max_tokens=24, temperature=0)
    text = full["choices"][0]["text"]
    stop = text[len(text) // 2 :][:2]
    cut = complete(http, prompt="List five fruits.", max_tokens=24, temperature=0,
                   stop=["never appears", stop])  # fmt: skip
    assert cut["choices"][0]["text"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_streams_reassemble_to_the_non_streamed_text(http):
    request = {"prompt": ["Tell me a story.", "Translate: hello"], "max_tokens": 16, "n": 2,
               "seed": 3, "temperature": 1}  # fmt: skip
    whole = complete(http, **request)
    texts, finish, lines = stream(http, "/v1/completions", **request)
    assert lines[-1] == "data: [DONE]"
    assert texts == {c["index"]: c["text"] for c in whole["choices"]}
    assert finish == {c["index"]: c["finish_reason"] for c in whole["choices"]}
    assert len(texts) == 4

    # a stop string held back while it might still be one
    stop = texts[0][len(texts[0]) // 2 :][:2]
    request.update(prompt="Tell me a story.", stop=stop)
    texts, finish, _ = stream(http, "/v1/completions", **request)
    assert texts == {c["index"]: c["text"] for c in complete(http, **request)["choices"]}

    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10, "seed": 1,
            "stream_options": {"include_usage": True}}  # fmt: skip
    texts, finish, lines = stream(http, "/v1/chat/completions", **chat)
    whole = http.post("/v1/chat/completions", json={**chat, "stream_options": None}).json()
    assert texts[0] == whole["choices"][0]["message"]["content"]
    assert json.loads(lines[-2].removeprefix("data: "))["usage"] == whole["usage"]


def test_openai_client_streams_chat(client):
    messages = [{"role": "user", "content": "Count to three."}]
    chunks = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=10, seed=5, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=10, seed=5)
    assert streamed == whole.choices[0].message.content


def test_api_key_is_required(server, client):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(f"{server}/v1/completions", json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert httpx.get(f"{server}/v1/models").status_code == 401
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    wrong = openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_echo_and_logprobs_score_the_prompt_like_the_model(http, tiny_bloom):
    """What lm-eval's ``local-completions`` sends to score a continuation: token ids, echo,
    ``max_tokens`` 1, ``logprobs`` 1; the prompt's log-probabilities are the model's own."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bloom)
    ids = tokenizer.encode("Name three colours: red, green")
    body = complete(http, prompt=[ids, ids[:3]], max_tokens=1, logprobs=2, echo=True,
                    temperature=0)  # fmt: skip
    first, second = body["choices"]
    logprobs = first["logprobs"]
    assert len(logprobs["tokens"]) == len(ids) + 1 == len(logprobs["text_offset"])
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert first["text"].startswith(tokenizer.decode(ids))
    assert "".join(logprobs["tokens"][: len(ids)]) == tokenizer.decode(ids)
    model = AutoModelForCausalLM.from_pretrained(tiny_bloom).eval()
    with torch.no_grad():
        expected = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1)
    want = expected.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    assert torch.allclose(torch.tensor(logprobs["token_logprobs"][1 : len(ids)]), want, atol=1e-5)
    for top in logprobs["top_logprobs"][1:]:
        assert len(top) <= 2
    greedy = max(logprobs["top_logprobs"][-1].values())
    assert logprobs["token_logprobs"][-1] == greedy  # temperature 0 samples the top token
    assert second["logprobs"]["token_logprobs"][1:3] == logprobs["token_logprobs"][1:3]
    plain = complete(http, prompt="Hi", max_tokens=3, logprobs=0)
    (choice,) = plain["choices"]
    assert len(choice["logprobs"]["tokens"]) == plain["usage"]["completion_tokens"]
    assert all(top == {} for top in choice["logprobs"]["top_logprobs"])


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"prompt": "x", "max_tokens": 33}, 400, "max_tokens"),
        ({"prompt": "x", "n": 5}, 400, "n"),
        ({"prompt": ["a", "b", "c"], "n": 2}, 400, "n"),  # 6 choices > max_n 4
        ({"prompt": "x", "stop": 3}, 400, "stop"),
        ({"prompt": "x", "logprobs": 6}, 400, "logprobs"),
        ({"prompt": "x", "logprobs": 1, "stream": True}, 400, "logprobs"),
        ({"prompt": [[5, 10**9]]}, 400, "prompt"),
        ({"prompt": "x", "temperature": 3}, 400, "temperature"),
        ({"prompt": "x", "model": "gpt-4"}, 404, "model"),
        ({"prompt": "x" * 5000}, 413, None),
    ],
)
def test_limits_and_bad_requests_answer_openai_errors(http, body, status, param):
    response = http.post("/v1/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


def test_malformed_json_and_unknown_routes(http, client):
    response = http.post("/v1/completions", content=b"{not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    assert http.get("/v1/nowhere").json()["error"]["message"] == "Not Found"
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="tiny", prompt="x", max_tokens=1000)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x"}], max_completion_tokens=33
        )


def test_serve_command_rejects_a_folder_without_a_model(tmp_path):
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, [str(tmp_path)])
    assert result.exit_code == 2 and "no config.json" in result.output
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(app, [str(tmp_path), "--dtype", "int3"])
    assert result.exit_code == 2 and "--dtype" in result.output


def test_prompt_over_max_prompt_tokens_is_context_length_exceeded(tiny_bloom):
    config = ServeConfig(model_name="tiny", max_prompt_tokens=16, max_tokens_limit=4)
    with serve_in_thread(create_app(tiny_bloom, config)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        at_limit = client.completions.create(model="tiny", prompt=[5] * 16, max_tokens=2)
        assert at_limit.usage.prompt_tokens == 16
        for prompt in ([5] * 17, "Explain in detail why the sky is blue and the sea is too. " * 4):
            with pytest.raises(openai.BadRequestError) as caught:
                client.completions.create(model="tiny", prompt=prompt, max_tokens=2)
            error = caught.value.body
            assert (error["code"], error["param"]) == ("context_length_exceeded", "prompt")
            assert "limit of 16" in error["message"]
        with pytest.raises(openai.BadRequestError, match="limit of 16"):
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "word " * 40}], max_tokens=2
            )


@pytest.fixture
def served_configs(monkeypatch, tmp_path):
    """Run ``bloomkit serve`` with ``serve`` replaced: the configs it would have served."""
    import bloomkit.finetuning.serve as serve_module

    configs: list[ServeConfig] = []
    monkeypatch.setattr(serve_module, "serve", lambda model_dir, config: configs.append(config))
    monkeypatch.delenv("BLOOMKIT_API_KEY", raising=False)
    (tmp_path / "config.json").write_text("{}")
    app = typer.Typer()
    app.command()(serve_command)

    def invoke(*args: str, **env: str):
        result = CliRunner().invoke(app, [str(tmp_path), *args], env=env)
        assert result.exit_code == 0, result.output
        return configs[-1], result.output

    return invoke


def test_serve_binds_to_localhost_by_default(monkeypatch):
    import bloomkit.finetuning.serve as serve_module

    runs = []
    monkeypatch.setattr(serve_module, "create_app", lambda model_dir, config: "app")
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kw: runs.append(kw))
    serve_module.serve("model")
    assert runs == [{"host": "127.0.0.1", "port": 8000, "log_level": "info"}]


def test_public_bind_without_a_key_warns(served_configs):
    config, output = served_configs()
    assert config.host == "127.0.0.1" and config.api_key is None and "warning" not in output
    config, output = served_configs("--host", "0.0.0.0")
    assert config.host == "0.0.0.0"
    assert "warning: serving on 0.0.0.0 without --api-key" in output
    config, output = served_configs("--host", "0.0.0.0", "--api-key", "k1")
    assert config.api_key == "k1" and "warning" not in output
    config, output = served_configs("--host", "0.0.0.0", BLOOMKIT_API_KEY="k2")
    assert config.api_key == "k2" and "warning" not in output
