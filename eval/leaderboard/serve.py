"""``bloomkit leaderboard serve``: serve a built site on localhost (standard library only)."""

from __future__ import annotations

from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(site: Path, port: int = 0, *, quiet: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for ``site`` bound to 127.0.0.1 (``port`` 0: any free port)."""
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site}: no index.html; run `bloomkit leaderboard build` first")
    handler = _QuietHandler if quiet else SimpleHTTPRequestHandler
    return ThreadingHTTPServer(("127.0.0.1", port), partial(handler, directory=str(site)))
