"""``bloomkit serve``: an OpenAI-compatible HTTP server over a Hugging Face causal LM.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (fields
``max_tokens``, ``stop``, ``temperature``, ``top_p``, ``seed``, ``n``, ``stream``) and
``GET /health``. Completions also take prompts as token ids and ``logprobs`` (0–5) and
``echo``, answered in OpenAI's shape (``choices[].logprobs``: ``tokens``, ``token_logprobs``,
``top_logprobs``, ``text_offset``, offsets into the choice's ``text``): with ``echo``,
``max_tokens`` 1 and ``logprobs`` 1 this is how lm-eval's ``local-completions`` model scores
log-likelihoods. Errors use OpenAI's body ``{"error": {"message", "type", "param", "code"}}``.
Streams are server-sent events ending in ``data: [DONE]``. Fields it does not implement
(chat ``logprobs``, ``tools``, ``logprobs`` or ``echo`` in a stream, …) are refused with a 400
naming them, never silently ignored.

It is the local teacher of the tests and demos and the target of budget forcing; the clients
that use it work the same against vLLM or a hosted API. Requests run one at a time (the model
is not shared between threads); a client cannot ask for more than the configured ``max_tokens``,
``n``, prompt tokens or body bytes. It binds to 127.0.0.1 unless told otherwise, and checks
``Authorization: Bearer <api_key>`` on ``/v1`` when a key is set.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from bloomkit.config import Section
from bloomkit.finetuning.openai_api import (
    COMPLETIONS_DEFAULT_MAX_TOKENS,
    APIError,
    BaseRequest,
    ChatRequest,
    CompletionRequest,
)
from bloomkit.finetuning.textgen import Piece, Sampling, TextGenerator


class ServeConfig(Section):
    """How ``bloomkit serve`` runs and what one request may ask for."""

    host: str = "127.0.0.1"
    """Interface to bind; ``0.0.0.0`` exposes the model to the network (set ``api_key``)."""
    port: int = Field(8000, ge=0, le=65535)
    model_name: str | None = None
    """The ``model`` clients must name (default: the model folder's name)."""
    api_key: str | None = None
    """When set, ``/v1`` requests need ``Authorization: Bearer <api_key>``."""
    max_tokens_limit: int = Field(1024, gt=0)
    """Largest ``max_tokens`` a request may ask for (larger → 400)."""
    max_prompt_tokens: int = Field(4096, gt=0)
    """Longest prompt in tokens (longer → 400 ``context_length_exceeded``)."""
    max_n: int = Field(8, gt=0)
    """Most choices per request: ``n`` × the number of prompts."""
    max_request_bytes: int = Field(1 << 20, gt=0)
    """Largest request body (larger → 413)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` …"""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto``: bfloat16 on CUDA, float32 on CPU."""


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


class _Server:
    """The state behind the routes: the generator, the limits and a lock around the model."""

    def __init__(self, model_dir: Path, config: ServeConfig):
        self.config = config
        self.name = config.model_name or Path(model_dir).resolve().name
        self.generator = TextGenerator(Path(model_dir), config.device, config.dtype)
        self.lock = asyncio.Lock()
        self.created = int(time.time())

    def check_key(self, request: Request) -> None:
        if self.config.api_key is None:
            return
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(sent.encode(), self.config.api_key.encode()):
            raise APIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer "
                "<key>' with the key `bloomkit serve --api-key` was given.",
                code="invalid_api_key",
            )

    async def read(self, request: Request, schema: type[BaseRequest]) -> Any:
        """The body as ``schema``: 401 without the key, 413 when too large, 400 when invalid."""
        self.check_key(request)
        limit = self.config.max_request_bytes
        too_large = APIError(
            413, f"request body exceeds {limit} bytes (max_request_bytes)", code="request_too_large"
        )
        if int(request.headers.get("content-length") or 0) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        try:
            parsed = schema.model_validate_json(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = f"{where}: {first['msg']}" if where else first["msg"]
            raise APIError(400, message, param=str(first["loc"][0]) if where else None) from None
        if parsed.model not in (None, self.name):
            raise APIError(
                404,
                f"model {parsed.model!r} does not exist; this server has {self.name!r}",
                param="model",
                code="model_not_found",
            )
        return parsed

    def sampling(self, req: BaseRequest, prompts: int, default_max_tokens: int) -> Sampling:
        cfg = self.config
        asked = req.max_tokens or getattr(req, "max_completion_tokens", None)
        max_tokens = asked or min(default_max_tokens, cfg.max_tokens_limit)
        if max_tokens > cfg.max_tokens_limit:
            raise APIError(
                400,
                f"max_tokens={max_tokens} is over this server's limit of {cfg.max_tokens_limit}",
                param="max_tokens",
            )
        if req.n * prompts > cfg.max_n:
            raise APIError(
                400,
                f"n={req.n} × {prompts} prompt(s) is over this server's limit of {cfg.max_n} "
                "choices per request",
                param="n",
            )
        stop = [req.stop] if isinstance(req.stop, str) else req.stop or []
        return Sampling(
            max_tokens, req.temperature, req.top_p, req.n, [s for s in stop if s], req.seed
        )

    def encode(self, prompt: str | list[int], special_tokens: bool = True) -> list[int]:
        """Token ids of a prompt (ids are checked against the vocabulary), within the limit."""
        if isinstance(prompt, str):
            ids = self.generator.encode(prompt, special_tokens)
        else:
            ids, vocab = prompt, len(self.generator.tokenizer)
            if max(ids) >= vocab:
                raise APIError(
                    400, f"token id {max(ids)} is outside the vocabulary (size {vocab})",
                    param="prompt",
                )  # fmt: skip
        if len(ids) > self.config.max_prompt_tokens:
            raise APIError(
                400,
                f"the prompt has {len(ids)} tokens, over this server's limit "
                f"of {self.config.max_prompt_tokens}",
                param="prompt",
                code="context_length_exceeded",
            )
        return ids

    async def pieces(self, prompts: list[list[int]], sampling: Sampling) -> AsyncIterator[Piece]:
        """Every piece of every prompt in order, choice indices numbered across prompts
        (prompt ``i``, choice ``j`` → ``i * n + j``); the model runs in a worker thread."""
        async with self.lock:
            for number, ids in enumerate(prompts):
                steps = self.generator.generate(ids, sampling)
                while (step := await run_in_threadpool(next, steps, None)) is not None:
                    for piece in step:
                        piece.index += number * sampling.n
                        yield piece

    def usage(self, prompts: list[list[int]], pieces: list[Piece]) -> dict[str, int]:
        prompt = sum(len(ids) for ids in prompts)
        completion = sum(p.completion_tokens for p in pieces)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def _logprobs_body(piece: Piece) -> dict[str, Any] | None:
    """OpenAI's ``choices[].logprobs`` of a final piece; offsets count characters of tokens."""
    if piece.logprobs is None:
        return None
    offsets, at = [], 0
    for token in piece.logprobs.tokens:
        offsets.append(at)
        at += len(token)
    return {
        "tokens": piece.logprobs.tokens,
        "token_logprobs": piece.logprobs.token_logprobs,
        "top_logprobs": piece.logprobs.top_logprobs,
        "text_offset": offsets,
    }


async def _answer(
    server: _Server,
    req: BaseRequest,
    prompts: list[list[int]],
    sampling: Sampling,
    chat: bool,
    echoes: list[str] | None = None,
) -> Any:
    """The JSON response, or the event stream, for validated prompts; ``echoes``: the prompt
    texts that start each choice's text (completions with ``echo``)."""
    head = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": server.name,
    }
    total = len(prompts) * sampling.n
    if not req.stream:
        texts, finals = [""] * total, []
        if echoes:
            texts = [echoes[i // sampling.n] for i in range(total)]
        async for piece in server.pieces(prompts, sampling):
            texts[piece.index] += piece.text
            if piece.finish_reason:
                finals.append(piece)
        choices = []
        for piece in sorted(finals, key=lambda p: p.index):
            text = texts[piece.index]
            body = (
                {"message": {"role": "assistant", "content": text}}
                if chat
                else {"text": text, "logprobs": _logprobs_body(piece)}
            )
            choices.append({"index": piece.index, **body, "finish_reason": piece.finish_reason})
        return {**head, "choices": choices, "usage": server.usage(prompts, finals)}

    if chat:
        head["object"] = "chat.completion.chunk"

    def chunk(piece: Piece) -> str:
        body = (
            {"delta": {"content": piece.text}} if chat else {"text": piece.text, "logprobs": None}
        )
        choice = {"index": piece.index, **body, "finish_reason": piece.finish_reason}
        return _sse({**head, "choices": [choice]})

    async def events() -> AsyncIterator[str]:
        if chat:
            for index in range(total):
                yield _sse(
                    {
                        **head,
                        "choices": [
                            {
                                "index": index,
                                "finish_reason": None,
                                "delta": {"role": "assistant", "content": ""},
                            }
                        ],
                    }
                )
        finals = []
        async for piece in server.pieces(prompts, sampling):
            if piece.text or piece.finish_reason:
                yield chunk(piece)
            if piece.finish_reason:
                finals.append(piece)
        if (req.stream_options or {}).get("include_usage"):
            yield _sse({**head, "choices": [], "usage": server.usage(prompts, finals)})
        yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream")


def create_app(model_dir: Path | str, config: ServeConfig | None = None) -> FastAPI:
    """The server app for the HF model (and tokenizer) in ``model_dir``; loads the model now."""
    server = _Server(Path(model_dir), config or ServeConfig())
    app = FastAPI(title=f"bloomkit serve: {server.name}", docs_url=None, redoc_url=None)

    @app.exception_handler(APIError)
    async def api_error(_: Request, err: APIError) -> JSONResponse:
        return err.response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return APIError(err.status_code, str(err.detail)).response()

    @app.exception_handler(Exception)
    async def server_error(_: Request, err: Exception) -> JSONResponse:
        return APIError(500, f"{type(err).__name__}: {err}", kind="server_error").response()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": server.name}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        server.check_key(request)
        card = {
            "id": server.name,
            "object": "model",
            "created": server.created,
            "owned_by": "bloomkit",
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        req = await server.read(request, CompletionRequest)
        single = isinstance(req.prompt, str) or isinstance(req.prompt[0], int)
        texts = [req.prompt] if single else req.prompt
        if req.stream and (req.logprobs is not None or req.echo):
            param = "logprobs" if req.logprobs is not None else "echo"
            raise APIError(400, f"{param} is not supported with stream", param=param)
        sampling = server.sampling(req, len(texts), COMPLETIONS_DEFAULT_MAX_TOKENS)
        sampling.logprobs, sampling.echo = req.logprobs, req.echo
        prompts = [server.encode(t) for t in texts]
        decode = server.generator.tokenizer.decode
        echoes = [t if isinstance(t, str) else decode(t) for t in texts] if req.echo else None
        return await _answer(server, req, prompts, sampling, False, echoes)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        req = await server.read(request, ChatRequest)
        sampling = server.sampling(req, 1, server.config.max_tokens_limit)
        text, templated = server.generator.chat_prompt([(m.role, m.text()) for m in req.messages])
        return await _answer(server, req, [server.encode(text, not templated)], sampling, True)

    return app


def serve(model_dir: Path | str, config: ServeConfig | None = None) -> None:
    """Run the server in the foreground until interrupted."""
    config = config or ServeConfig()
    uvicorn.run(create_app(model_dir, config), host=config.host, port=config.port, log_level="info")


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` on a free port in a background thread (tests, notebooks); yields its base URL
    (``http://127.0.0.1:PORT``) once it accepts connections and stops it on exit."""
    sock = socket.socket()
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server thread exited before it started")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
