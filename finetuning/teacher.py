"""A client for any OpenAI-compatible teacher (``bloomkit serve``, vLLM, a hosted API).

:class:`Teacher` posts to ``/v1/chat/completions`` or ``/v1/completions`` with ``httpx``:

- at most ``concurrency`` requests in flight;
- retries with exponential backoff on 429, 408, 5xx, timeouts, dropped connections and bodies
  that are not JSON, waiting at least as long as a ``Retry-After`` header asks;
- a spending cap: each response's ``usage`` token counts × the configured prices per 1M tokens
  (estimated as characters / 4 when a server sends no ``usage``, and counted as such). The cap is
  checked before every request, so the up-to-``concurrency`` requests already in flight may end
  a little above it; a journal that has already spent the cap refuses to start;
- a journal: every response body the server sent as JSON (paid for) is appended to a JSONL file
  and fsynced *before* the caller sees it. A request is keyed by endpoint, body and a caller
  tag, so a rerun after a crash or a budget stop answers those requests from the journal and
  pays for none of them again.

Failures that concern one request (retries used up, a 400, an answer with no ``choices``) come
back as a :class:`Reply` with ``error`` set and are counted; failures that concern every request
(401/403/404, a 400 blaming a configured field such as ``max_tokens``, an unreachable server, the
budget) raise :class:`TeacherError` with the fix.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from bloomkit.config import Section

_RETRY_STATUS = {408, 409, 429}
_FATAL_STATUS = {401: "check the API key", 403: "check the API key's permissions",
                 404: "check teacher.base_url and teacher.model"}  # fmt: skip
_CONFIG_PARAMS = {"model", "max_tokens", "temperature", "top_p", "stop"}
"""Request fields set from :class:`TeacherConfig`: a 400 naming one is wrong for every request
(e.g. ``max_tokens`` over the server's limit), so it stops the run instead of failing each."""


class TeacherConfig(Section):
    """Where the teacher is, how hard to push it, and what it may cost."""

    base_url: str = "http://127.0.0.1:8000/v1"
    """Up to and including ``/v1``; ``/chat/completions`` or ``/completions`` is appended."""
    model: str = "teacher"
    endpoint: Literal["chat", "completions"] = "chat"
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key (the key itself is never in a config);
    unset or empty: no ``Authorization`` header."""
    concurrency: Annotated[int, Field(gt=0)] = 8
    max_retries: Annotated[int, Field(ge=0)] = 5
    backoff_s: Annotated[float, Field(ge=0)] = 1.0
    """First retry wait; doubled on each further retry (with jitter), up to ``max_wait_s``."""
    max_wait_s: Annotated[float, Field(ge=0)] = 120.0
    """Longest single wait, ``Retry-After`` included."""
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_tokens: Annotated[int, Field(gt=0)] = 1024
    temperature: Annotated[float, Field(ge=0)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    stop: list[str] = []
    price_input_per_1m: Annotated[float, Field(ge=0)] = 0.0
    """USD per 1M prompt tokens."""
    price_output_per_1m: Annotated[float, Field(ge=0)] = 0.0
    """USD per 1M completion tokens."""
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    """Spending cap over the whole journal (all runs of this run directory); null: none."""


class TeacherError(RuntimeError):
    """A failure no retry fixes (budget spent, bad key, unreachable server); the message says
    what to do."""


class BudgetExceeded(TeacherError):
    pass


@dataclass(slots=True)
class Reply:
    """One answer. ``thinking`` is a separate reasoning field when the server sends one
    (``reasoning_content``/``reasoning``); ``truncated``: the answer stopped at ``max_tokens``."""

    text: str = ""
    thinking: str = ""
    finish_reason: str | None = None
    error: str | None = None
    reused: bool = False
    key: str = ""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class Journal:
    """Append-only JSONL of paid-for responses: ``{key, time, endpoint, request, response,
    prompt_tokens, completion_tokens, estimated, cost_usd}`` per line. A torn last line (a crash
    mid-write) is skipped and counted."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self.spent_usd = 0.0
        self.torn_lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    self.torn_lines += 1
                    continue
                self.spent_usd += entry.get("cost_usd", 0.0)
                self.entries[entry["key"]] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.torn_lines and not self.path.read_bytes().endswith(b"\n"):
            with open(self.path, "a", encoding="utf-8") as handle:  # end the torn line
                handle.write("\n")

    def append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.spent_usd += entry["cost_usd"]
        self.entries[entry["key"]] = entry


def request_key(endpoint: str, body: dict[str, Any], tag: str) -> str:
    blob = json.dumps({"endpoint": endpoint, "body": body, "tag": tag}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def retry_after_s(response: httpx.Response) -> float:
    """The ``Retry-After`` header in seconds (number or HTTP date); 0 when absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def parse_reply(data: Any, endpoint: str) -> Reply:
    """The first choice of an OpenAI response body; ``error`` set when it has none."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Reply(error="malformed_reply: no choices")
    choice = choices[0]
    if endpoint == "chat":
        message = choice.get("message")
        if not isinstance(message, dict):
            return Reply(error="malformed_reply: no message")
        text = message.get("content") or ""
        thinking = message.get("reasoning_content") or message.get("reasoning") or ""
    else:
        text, thinking = choice.get("text") or "", ""
    if not isinstance(text, str) or not isinstance(thinking, str):
        return Reply(error="malformed_reply: content is not text")
    return Reply(text=text, thinking=thinking, finish_reason=choice.get("finish_reason"))


class Teacher:
    """``async with Teacher(config, journal_path) as teacher: await teacher.ask(prompt, tag)``.

    ``stats`` counts requests, reused, retries, http_<status>, timeouts, connect_errors,
    malformed_json, malformed_reply, truncated, failed, usage_estimated and tokens.
    """

    def __init__(self, config: TeacherConfig, journal_path: Path | str):
        self.config = config
        self.journal = Journal(Path(journal_path))
        self.stats: Counter[str] = Counter()
        self.spent_at_start = self.journal.spent_usd
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(config.concurrency)

    async def __aenter__(self) -> Teacher:
        self.check_budget(starting=True)
        key = os.environ.get(self.config.api_key_env or "", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/"),
            headers=headers,
            timeout=self.config.timeout_s,
            limits=httpx.Limits(max_connections=self.config.concurrency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    def check_budget(self, starting: bool = False) -> None:
        cap = self.config.budget_usd
        if cap is None or self.journal.spent_usd < cap:
            return
        what = "refusing to start" if starting else "stopping"
        raise BudgetExceeded(
            f"teacher budget spent: ${self.journal.spent_usd:.4f} of teacher.budget_usd=${cap:g} "
            f"({what}). Every paid-for answer is in {self.journal.path} and a rerun reuses it; "
            "raise the cap (--set teacher.budget_usd=...) to continue"
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.config.price_input_per_1m
                + completion_tokens * self.config.price_output_per_1m) / 1e6  # fmt: skip

    def body(self, prompt: str, **params: Any) -> dict[str, Any]:
        """The request body for ``prompt`` (a user message on ``chat``); ``params`` override."""
        cfg = self.config
        body: dict[str, Any] = {"model": cfg.model, "max_tokens": cfg.max_tokens,
                                "temperature": cfg.temperature, "top_p": cfg.top_p}  # fmt: skip
        if cfg.stop:
            body["stop"] = cfg.stop
        if cfg.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        body.update(params)
        return body

    async def ask(self, prompt: str, tag: str = "", **params: Any) -> Reply:
        """Send ``prompt`` (or answer it from the journal); ``tag`` tells apart requests whose
        bodies are equal but must be asked separately (e.g. a batch number)."""
        cfg = self.config
        body = self.body(prompt, **params)
        key = request_key(cfg.endpoint, body, tag)
        entry = self.journal.entries.get(key)
        if entry is not None and not (reply := parse_reply(entry["response"], cfg.endpoint)).error:
            self.stats["reused"] += 1
            reply.reused, reply.key = True, key
            return self._count(reply)
        async with self._slots:
            reply = await self._post(body, key)
        reply.key = key
        return self._count(reply)

    def _count(self, reply: Reply) -> Reply:
        if reply.error:
            self.stats["failed"] += 1
            self.stats[f"failed_{reply.error.split(':')[0]}"] += 1
        elif reply.truncated:
            self.stats["truncated"] += 1
        return reply

    def _wait(self, attempt: int, at_least: float = 0.0) -> float:
        backoff = self.config.backoff_s * 2**attempt * random.uniform(0.5, 1.0)
        return min(self.config.max_wait_s, max(backoff, at_least))

    async def _post(self, body: dict[str, Any], key: str) -> Reply:
        assert self._client is not None, "use `async with Teacher(...)`"
        path = "/chat/completions" if self.config.endpoint == "chat" else "/completions"
        last = ""
        connect_failures = 0
        for attempt in range(self.config.max_retries + 1):
            self.check_budget()
            self.stats["requests"] += 1
            wait = 0.0
            try:
                response = await self._client.post(path, json=body)
            except httpx.TimeoutException:
                self.stats["timeouts"] += 1
                last = f"timeout: no answer within {self.config.timeout_s:g} s"
            except httpx.TransportError as err:
                self.stats["connect_errors"] += 1
                connect_failures += 1
                last = f"{type(err).__name__}: {err}"
            else:
                status = response.status_code
                if status == 200:
                    reply = self._read(response, body, key)
                    if not reply.error:
                        return reply
                    last = reply.error
                elif status in _FATAL_STATUS:
                    where = f"{self.config.base_url}{path}"
                    detail = f"{_error_text(response)}; {_FATAL_STATUS[status]}"
                    raise TeacherError(f"teacher {where} answered {status}: {detail}")
                elif status in _RETRY_STATUS or status >= 500:
                    self.stats[f"http_{status}"] += 1
                    wait = retry_after_s(response)
                    last = f"http_{status}"
                else:
                    self.stats[f"http_{status}"] += 1
                    param = _error_param(response)
                    if status == 400 and param in _CONFIG_PARAMS:
                        raise TeacherError(
                            f"teacher {self.config.base_url}{path} refused teacher.{param}: "
                            f"{_error_text(response)}; change it (--set teacher.{param}=...)"
                        )
                    return Reply(error=f"http_{status}: {_error_text(response)}")
            if attempt < self.config.max_retries:
                self.stats["retries"] += 1
                await asyncio.sleep(self._wait(attempt, wait))
        if connect_failures == self.config.max_retries + 1:
            raise TeacherError(
                f"teacher unreachable at {self.config.base_url}: {last}; is the server running "
                "(bloomkit serve MODEL_DIR) and teacher.base_url right?"
            )
        kind, _, detail = last.partition(":")
        return Reply(error=f"{kind}: gave up after {self.config.max_retries + 1} attempts"
                           + (f" ({detail.strip()})" if detail else ""))  # fmt: skip

    def _read(self, response: httpx.Response, body: dict[str, Any], key: str) -> Reply:
        """Journal a JSON body, then parse it; an ``error`` reply (retried) when the body is not
        JSON or not an OpenAI answer (journaled all the same: it was paid for)."""
        try:
            data = response.json()
        except ValueError:
            self.stats["malformed_json"] += 1
            return Reply(error="malformed_json: body is not JSON")
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        estimated = not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int)
        if estimated:  # no usage: charge characters / 4 rather than nothing
            self.stats["usage_estimated"] += 1
            prompt_tokens = math.ceil(len(json.dumps(body.get("messages", body.get("prompt")))) / 4)
            completion_tokens = math.ceil(len(response.text) / 4)
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["completion_tokens"] += completion_tokens
        self.journal.append({
            "key": key, "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "endpoint": self.config.endpoint, "request": body, "response": data,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "estimated": estimated, "cost_usd": self.cost(prompt_tokens, completion_tokens),
        })  # fmt: skip
        reply = parse_reply(data, self.config.endpoint)
        if reply.error:
            self.stats["malformed_reply"] += 1
        return reply

    def report(self) -> dict[str, Any]:
        """Cost report: this run's spending and counters, and the journal's total."""
        return {
            "model": self.config.model,
            "spent_usd_this_run": round(self.journal.spent_usd - self.spent_at_start, 6),
            "spent_usd_total": round(self.journal.spent_usd, 6),
            "budget_usd": self.config.budget_usd,
            "journal": str(self.journal.path),
            "journal_entries": len(self.journal.entries),
            "journal_torn_lines": self.journal.torn_lines,
            **dict(sorted(self.stats.items())),
        }


def _error_param(response: httpx.Response) -> str | None:
    """The OpenAI-format ``error.param`` of a response (the request field it blames), if any."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) else None


def _error_text(response: httpx.Response) -> str:
    """The OpenAI-format ``error.message`` of a response, else the start of its body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or response.text[:200] or response.reason_phrase)
