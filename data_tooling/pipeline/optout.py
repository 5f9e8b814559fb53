"""Opt-outs: documents their owners asked to leave out, removed and proven gone.

An opt-out list is a YAML file of three kinds of entry::

    ids: [sib200-en-0003]                         # document ids
    urls: [https://example.com/blog/post-1]       # one page (metadata["url"])
    domains: [example.org]                        # a site and all its subdomains

URLs match after normalisation (host lower-cased; scheme, default port, trailing slash and
fragment ignored, so ``http://Example.com/a/`` = ``https://example.com/a``). A document is
removed for the first entry it matches (id, then URL, then domain) with reason
``optout:<kind>:<entry>``, so :func:`optout_report` can count every entry, and
:func:`verify_optouts` checks an output holds none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, field_validator

from bloomkit.config import Section, load_config
from bloomkit.data_tooling.pipeline.base import Document, Filter, StepStats

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """A URL's matching key: ``HTTPS://Example.com:443/a/#x`` -> ``//example.com/a``.

    Raises ``ValueError`` for a URL without a host.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname
    if not host or not parts.scheme:
        raise ValueError("expected an absolute URL (scheme://host/path)")
    netloc = host.rstrip(".")
    if parts.port not in (None, DEFAULT_PORTS.get(parts.scheme.lower())):
        netloc += f":{parts.port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"//{netloc}{parts.path.rstrip('/')}{query}"


def normalise_domain(domain: str) -> str:
    """A domain entry lower-cased without a trailing dot; refuses URLs and paths."""
    value = domain.strip().lower().rstrip(".")
    if not value or any(c in value for c in "/:@ ") or "." not in value:
        raise ValueError("expected a bare domain such as example.com")
    return value


def _unique(values: list[str], key: Callable[[str], str], kind: str) -> list[str]:
    """``values`` unchanged, unless two of them are the same entry under ``key``."""
    seen: dict[str, str] = {}
    for value in values:
        normal = key(value)
        if normal in seen:
            raise ValueError(f"{kind} {value!r} repeats {seen[normal]!r}")
        seen[normal] = value
    return values


def _check(normalise: Callable[[str], str]) -> AfterValidator:
    """Validate an entry with ``normalise`` (per item, so errors carry the item's line)."""

    def check(value: str) -> str:
        normalise(value)
        return value

    return AfterValidator(check)


class OptOutList(Section):
    """Document ids, URLs and domains whose documents the pipeline must remove."""

    ids: list[str] = []
    urls: list[Annotated[str, _check(normalise_url)]] = []
    domains: list[Annotated[str, _check(normalise_domain)]] = []

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return _unique(value, str, "id")

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _unique(value, normalise_url, "URL")

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return _unique(value, normalise_domain, "domain")

    def entries(self) -> list[str]:
        """Every entry as its drop-reason suffix (``id:…``, ``url:…``, ``domain:…``)."""
        return [
            *(f"id:{v}" for v in self.ids),
            *(f"url:{v}" for v in self.urls),
            *(f"domain:{v}" for v in self.domains),
        ]


def load_optouts(path: Path) -> OptOutList:
    """Read an opt-out list; problems raise ``ConfigError`` as ``file:line: field: …``."""
    return load_config(OptOutList, path)


class _Matcher:
    """Finds the entry a document matches, in O(1) per id/URL and O(labels) per host."""

    def __init__(self, optouts: OptOutList) -> None:
        self.ids = {v: f"id:{v}" for v in optouts.ids}
        self.urls = {normalise_url(v): f"url:{v}" for v in optouts.urls}
        self.domains = {normalise_domain(v): f"domain:{v}" for v in optouts.domains}

    def match(self, doc: Document) -> str | None:
        if doc.id in self.ids:
            return self.ids[doc.id]
        url = doc.metadata.get("url")
        if not isinstance(url, str):
            return None
        host, entry = "", None
        with suppress(ValueError):  # malformed (e.g. a bad port): the host may still be listed
            host = urlsplit(url.strip()).hostname or ""
            entry = self.urls.get(normalise_url(url))
        if entry is not None:
            return entry
        labels = host.rstrip(".").split(".")
        for start in range(len(labels) - 1):
            entry = self.domains.get(".".join(labels[start:]))
            if entry is not None:
                return entry
        return None


class OptOut(Filter):
    """Remove every document an opt-out entry names (reason ``optout:<kind>:<entry>``)."""

    name: ClassVar[str] = "optout"

    def __init__(self, optouts: OptOutList) -> None:
        super().__init__()
        self.optouts = optouts
        self._matcher = _Matcher(optouts)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        entry = self._matcher.match(doc)
        return True if entry is None else (False, f"optout:{entry}")


def optout_report(stats: StepStats, optouts: OptOutList) -> list[dict[str, str | int]]:
    """Documents removed per entry, every entry listed (0 when it matched nothing)."""
    return [
        {"entry": entry, "removed": stats.counts[f"removed_optout:{entry}"]}
        for entry in optouts.entries()
    ]


def verify_optouts(docs: Iterable[Document], optouts: OptOutList) -> list[str]:
    """Ids of documents in ``docs`` that an entry names; ``[]`` proves none remain."""
    matcher = _Matcher(optouts)
    return [doc.id for doc in docs if matcher.match(doc) is not None]
