"""Deliberately broken and scripted OpenAI-compatible teachers for the recipe tests.

``FakeTeacher(script)`` serves on 127.0.0.1 (stdlib ``http.server``, one thread per request);
``script(body, hit)`` gets the request's JSON and the 0-based hit number and returns a
:class:`Answer` (status, body, headers, delay). ``hits`` records every request body, so a test
counts exactly what a run paid for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(text: str, *, finish: str = "stop", thinking: str = "", usage=(100, 50)) -> Answer:
    """A well-formed chat completion (``usage=None``: no usage block)."""
    message = {"role": "assistant", "content": text}
    if thinking:
        message["reasoning_content"] = thinking
    data: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        data["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return Answer(body=json.dumps(data).encode())


def error(status: int, message: str = "boom", **headers: str) -> Answer:
    body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
    return Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


MALFORMED = Answer(body=b'{"choices": [{"message": {"content": "unterminated')
NO_CHOICES = Answer(body=json.dumps({"object": "oops", "usage": {"prompt_tokens": 7}}).encode())


def prompt_of(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"] if "messages" in body else body["prompt"]


class FakeTeacher:
    def __init__(self, script: Callable[[dict[str, Any], int], Answer]):
        self.script = script
        self.hits: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    hit = len(outer.hits)
                    outer.hits.append(body)
                answer = outer.script(body, hit)
                time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:  # the client gave up (timeout tests)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
