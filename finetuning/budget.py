"""Budget forcing (s1, Muennighoff et al. 2025, "s1: Simple test-time scaling", §3.1) on any
OpenAI-compatible ``/v1/completions`` endpoint: ``bloomkit serve``, vLLM or a hosted API.

The model thinks after ``think_start`` until it writes ``think_end``. Too early (fewer than
``min_thinking_tokens``): the delimiter is dropped, ``wait`` ("Wait") is appended and it thinks
on. At ``max_thinking_tokens`` the delimiter is forced. Then the answer is generated after it::

    prompt + think_start + thinking (… + "Wait" + …) + think_end + answer

Thinking tokens are the tokens of the thinking text. With a local tokenizer (the model's)
they are counted exactly, and thinking cut past the maximum is trimmed to it. Without one
they come from the endpoint's ``usage``: ``prompt_tokens`` of each call minus those of the first
(the thinking so far, as the server tokenizes it) plus ``completion_tokens``; a ``wait`` of
unknown size is budgeted at one token per UTF-8 byte plus one until a call has measured it, and
the server re-tokenizing generated text may move the count by a token (nothing is trimmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(kw_only=True, slots=True)
class BudgetForcing:
    """Thinking bounds and delimiters; the defaults are s1's (Qwen chat markers)."""

    min_thinking_tokens: int = 0
    max_thinking_tokens: int = 1024
    max_answer_tokens: int = 256
    think_start: str = "<|im_start|>think\n"
    """Appended to the prompt before thinking starts."""
    think_end: str = "<|im_start|>answer\n"
    """End-of-thinking delimiter: a stop string while thinking, forced at the maximum."""
    wait: str = "Wait"
    """Appended in place of a too-early ``think_end``."""
    stop: list[str] = field(default_factory=list)
    """More stop strings for both phases (e.g. ``<|im_end|>``)."""
    temperature: float = 0.0
    seed: int | None = None
    """Seed of the first call; call ``k`` gets ``seed + k``, so a run is reproducible without
    every continuation replaying the same random draws."""

    def call_seed(self, call: int) -> int | None:
        return None if self.seed is None else self.seed + call

    def __post_init__(self):
        if not 0 <= self.min_thinking_tokens <= self.max_thinking_tokens:
            raise ValueError(
                f"thinking bounds: need 0 <= min <= max, got min={self.min_thinking_tokens}, "
                f"max={self.max_thinking_tokens}"
            )
        if self.max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1, got {self.max_answer_tokens}")
        if not self.think_end:
            raise ValueError("think_end must not be empty: it is the end-of-thinking stop string")
        if self.min_thinking_tokens and not self.wait:
            raise ValueError("wait must not be empty when min_thinking_tokens > 0")


@dataclass(slots=True)
class Completion:
    """One choice of a ``/v1/completions`` answer; token counts are ``None`` without usage."""

    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None


class EndpointError(RuntimeError):
    """The endpoint failed or answered something that is not a completion."""


class CompletionsClient:
    """A minimal client of an OpenAI-compatible ``/v1/completions`` endpoint.

    ``base_url`` is the API root, with or without ``/v1``: ``http://127.0.0.1:8000``,
    ``https://api.example.com/v1``. ``model`` defaults to the first one ``/v1/models`` lists.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
    ):
        root = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=root if root.endswith("/v1") else f"{root}/v1",
            headers=headers,
            timeout=timeout,
        )
        self.model = model or self._first_model()
        self.prompt_tokens = self.completion_tokens = 0
        """Totals over every call (for cost accounting), when the endpoint reports usage."""

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{self.http.base_url}{path}"
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise EndpointError(f"{where}: {type(err).__name__}: {err}") from None
        try:
            body = response.json()
        except ValueError:
            raise EndpointError(
                f"{where}: HTTP {response.status_code}, not JSON: {response.text[:200]!r}"
            ) from None
        if response.is_error or "error" in body:
            error = body.get("error") if isinstance(body, dict) else None
            message = error.get("message") if isinstance(error, dict) else error or body
            raise EndpointError(f"{where}: HTTP {response.status_code}: {message}")
        return body

    def _first_model(self) -> str:
        listed = self._call("GET", "/models").get("data") or []
        if not listed:
            raise EndpointError(f"{self.http.base_url}/models lists no model; pass model=")
        return listed[0]["id"]

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: list[str] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Completion:
        """One completion of ``prompt``."""
        request: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stop:
            request["stop"] = stop
        if seed is not None:
            request["seed"] = seed
        body = self._call("POST", "/completions", json=request)
        try:
            choice = body["choices"][0]
            text, finish = choice["text"], choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"not a completion: {str(body)[:200]!r}") from None
        usage = body.get("usage") or {}
        prompt_tokens, completion_tokens = (
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
        )
        self.prompt_tokens += prompt_tokens or 0
        self.completion_tokens += completion_tokens or 0
        return Completion(text, finish, prompt_tokens, completion_tokens)


@dataclass(slots=True)
class BudgetResult:
    """What budget forcing produced, and how."""

    prompt: str
    thinking: str
    answer: str
    thinking_tokens: int
    answer_tokens: int
    waits: int
    """How many times ``wait`` replaced a too-early end of thinking."""
    forced_end: bool
    """Whether the end of thinking was forced by the maximum."""
    calls: int

    def text(self, config: BudgetForcing) -> str:
        """The whole sequence: prompt, delimited thinking, answer."""
        return self.prompt + config.think_start + self.thinking + config.think_end + self.answer


class _Counter:
    """Thinking tokens so far: from a local tokenizer, or from the endpoint's ``usage``."""

    def __init__(self, tokenizer: Any | None, wait: str):
        self.tokenizer = tokenizer
        self.wait = wait
        self.base: int | None = None  # prompt tokens of the first call (usage mode)
        self.wait_cost = len(wait.encode()) + 1  # usage mode: an upper bound until measured
        self.before_wait: int | None = None

    def local(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def after_call(self, thinking: str, out: Completion) -> int:
        if self.tokenizer is not None:
            return self.local(thinking)
        if out.prompt_tokens is None or out.completion_tokens is None:
            raise EndpointError(
                "the endpoint reports no usage, so thinking tokens cannot be counted: "
                "pass the model's tokenizer (--tokenizer)"
            )
        if self.base is None:
            self.base = out.prompt_tokens
        so_far = out.prompt_tokens - self.base
        if self.before_wait is not None:
            self.wait_cost, self.before_wait = max(1, so_far - self.before_wait), None
        return so_far + out.completion_tokens

    def with_wait(self, thinking: str, count: int) -> int:
        """The count once ``wait`` is appended (usage mode: an estimate the next call checks)."""
        if self.tokenizer is not None:
            return self.local(thinking + self.wait)
        self.before_wait = count
        return count + self.wait_cost

    def trim(self, thinking: str, limit: int) -> tuple[str, int]:
        """``thinking`` cut to ``limit`` local tokens, and its count re-tokenized."""
        ids = self.tokenizer.encode(thinking, add_special_tokens=False)[:limit]
        thinking = self.tokenizer.decode(ids)
        return thinking, self.local(thinking)


def budget_force(
    client: CompletionsClient, prompt: str, config: BudgetForcing, tokenizer: Any | None = None
) -> BudgetResult:
    """Think between ``config``'s bounds, then answer (see the module doc).

    ``tokenizer`` (a Hugging Face tokenizer of the served model) counts thinking tokens
    locally; without it the endpoint's ``usage`` does.
    """
    head = prompt + config.think_start
    counter = _Counter(tokenizer, config.wait)
    thinking, count, waits, calls, forced = "", 0, 0, 0, False
    while True:
        remaining = config.max_thinking_tokens - count
        if remaining <= 0:
            forced = True
            break
        out = client.complete(
            head + thinking,
            max_tokens=remaining,
            stop=[config.think_end, *config.stop],
            temperature=config.temperature,
            seed=config.call_seed(calls),
        )
        calls += 1
        thinking += out.text
        count = counter.after_call(thinking, out)
        if count > config.max_thinking_tokens and tokenizer is not None:
            thinking, count = counter.trim(thinking, config.max_thinking_tokens)
        if out.finish_reason == "length" or count >= config.max_thinking_tokens:
            forced = True
            break
        if count >= config.min_thinking_tokens:
            break
        with_wait = counter.with_wait(thinking, count)
        if with_wait > config.max_thinking_tokens:
            forced = True  # no room for another "Wait" under the maximum
            break
        thinking += config.wait
        waits += 1
        count = with_wait
    out = client.complete(
        head + thinking + config.think_end,
        max_tokens=config.max_answer_tokens,
        stop=config.stop or None,
        temperature=config.temperature,
        seed=config.call_seed(calls),
    )
    calls += 1
    answer_tokens = out.completion_tokens
    if answer_tokens is None:
        answer_tokens = counter.local(out.text) if tokenizer is not None else 0
    return BudgetResult(prompt, thinking, out.text, count, answer_tokens, waits, forced, calls)
