"""WARC input (``.warc``, ``.warc.gz``): text/html and text/plain response records → Documents.

HTML is reduced to its visible text with the standard library's parser (scripts and styles
dropped, one line per block element); the record's target URI goes into ``metadata["url"]``
(which the opt-out step matches) and its ``WARC-Record-ID`` is the document id.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.readers import ReadContext


class _TextExtractor(HTMLParser):
    """Crude HTML → text: drop script/style, break lines at block elements."""

    BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "table", "section", "article", "header", "footer", "pre"}
        | {f"h{level}" for level in range(1, 7)}
    )
    SKIP = frozenset(("script", "style", "noscript", "template"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one line per block, blank lines squeezed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def read_warc(path: Path, ctx: ReadContext) -> Iterator[Document]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    file, name = str(path), path.name
    number = records = 0
    with open(path, "rb") as handle:
        try:
            for number, record in enumerate(ArchiveIterator(handle), 1):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                content_type = record.http_headers.get_header("Content-Type") or ""
                mime, _, params = content_type.partition(";")
                if mime.strip().lower() not in ("text/html", "text/plain"):
                    continue
                records += 1
                url = record.rec_headers.get_header("WARC-Target-URI")
                body = record.content_stream().read()
                try:
                    text = body.decode(_charset(params))
                except (UnicodeDecodeError, LookupError) as err:
                    ctx.bad(file, name, number, body, "content", f"undecodable body ({err})")
                    continue
                if mime.strip().lower() == "text/html":
                    text = html_to_text(text)
                row = {ctx.text_field: text, "url": url}
                if record_id := record.rec_headers.get_header("WARC-Record-ID"):
                    row[ctx.id_field] = record_id
                yield from ctx.documents([(number, row)], file, name)
        except (ArchiveLoadFailed, EOFError, OSError, zlib.error, ValueError) as err:
            ctx.bad(file, name, number + 1, b"", "file", f"truncated or corrupt WARC ({err})")
            return
    if records == 0:
        ctx.bad(file, name, 1, b"", "file", "no text/html or text/plain response records")


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return "utf-8"
