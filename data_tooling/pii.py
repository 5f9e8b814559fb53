"""Redact personal data and secrets: each match becomes a typed placeholder.

Types, in the order they are applied (a later pattern never sees an earlier placeholder):
``secret`` (well-known key shapes: AWS ``AKIA…``, GitHub ``ghp_…``, Slack ``xox…``, OpenAI
``sk-…``, and the value of ``api_key = "..."``-like assignments), ``email``, ``credit_card``
(13-19 digits, optionally in space/dash groups, issuer digit 2-6, Luhn-valid only), ``ipv6``
(validated by :mod:`ipaddress`), ``ipv4`` (four octets 0-255, so ``1.2.3.4`` counts but
``999.1.1.1`` does not) and ``handle`` (``@user``, never inside an e-mail address).

Every pattern is ASCII and its boundaries are ASCII-only lookarounds, so a match is found inside
Chinese or Thai text without spaces, while digits of other scripts (``٣``, ``३``) never match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar, Literal

import regex
from pydantic import Field

from bloomkit.config import Section
from bloomkit.data_tooling.pipeline.base import Document, Step

PIIType = Literal["secret", "email", "credit_card", "ipv6", "ipv4", "handle"]

PLACEHOLDERS: dict[str, str] = {
    "secret": "<SECRET>",
    "email": "<EMAIL>",
    "credit_card": "<CREDIT_CARD>",
    "ipv6": "<IP_ADDRESS>",
    "ipv4": "<IP_ADDRESS>",
    "handle": "<HANDLE>",
}
"""Type -> placeholder, in application order."""

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

PATTERNS: dict[str, regex.Pattern[str]] = {
    "secret": regex.compile(
        r"""
        (?<![A-Za-z0-9_])
        (?:
            (?:AKIA|ASIA)[0-9A-Z]{16}
          | gh[pousr]_[A-Za-z0-9]{36,255}
          | github_pat_[A-Za-z0-9_]{22,255}
          | xox[abposr]-[A-Za-z0-9-]{10,}
          | sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}
        )
        (?![A-Za-z0-9_])
      | (?<![A-Za-z0-9])
        (?i:
            (?:api|access|auth|secret|private|client)[_-]?(?:key|token|secret)
          | password | passwd | secret
        )
        ["']?\s*[:=]\s*(?P<q>["']?)
        (?P<value>(?=[A-Za-z0-9_+/=.-]*[0-9])[A-Za-z0-9_+/=.-]{8,})
        (?P=q)
        """,
        regex.VERBOSE,
    ),
    "email": regex.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])"
    ),
    "credit_card": regex.compile(
        r"""
        (?<![0-9A-Za-z_-])
        (?:
            [2-6][0-9]{12,18}
          | [2-6][0-9]{3}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{1,4}
            (?:(?P=sep)[0-9]{3})?
          | 3[0-9]{3}(?P<amex>[ -])[0-9]{6}(?P=amex)[0-9]{4,5}
        )
        (?![0-9A-Za-z_]|-[0-9])
        """,
        regex.VERBOSE,
    ),
    "ipv6": regex.compile(
        rf"(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}})?"
        r"(?![0-9A-Za-z_:])"
    ),
    "ipv4": regex.compile(rf"(?<![0-9A-Za-z_.])(?<![0-9]\.){_IPV4}(?!\.?[0-9A-Za-z_])"),
    "handle": regex.compile(
        r"(?<![A-Za-z0-9_.+@-])@(?=[A-Za-z0-9_.]*[A-Za-z])"
        r"[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?(?![A-Za-z0-9_@])"
    ),
}


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of ASCII digits holds."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _is_card(match: regex.Match[str]) -> bool:
    digits = regex.sub(r"[ -]", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_ipv6(match: regex.Match[str]) -> bool:
    text = match.group()
    if not any(c.isdigit() for c in text):  # "abc::def" is C++, not an address
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


VALIDATORS: dict[str, Callable[[regex.Match[str]], bool]] = {
    "credit_card": _is_card,
    "ipv6": _is_ipv6,
}
"""Checks a regex match must also pass to count as that type."""


def _redact_one(kind: str, text: str) -> tuple[str, int]:
    """``text`` with the valid matches of ``kind`` replaced, and how many there were."""
    valid = VALIDATORS.get(kind)
    parts: list[str] = []
    last = n = 0
    for match in PATTERNS[kind].finditer(text):
        if valid is not None and not valid(match):
            continue
        start, end = match.span("value") if match.groupdict().get("value") else match.span()
        parts += [text[last:start], PLACEHOLDERS[kind]]
        last = end
        n += 1
    return ("".join(parts) + text[last:], n) if n else (text, 0)


def redact(text: str, types: Iterable[str] = PLACEHOLDERS) -> tuple[str, dict[str, int]]:
    """``text`` with every match of ``types`` replaced, and the number of matches per type."""
    counts: dict[str, int] = {}
    wanted = set(types)
    for kind in PATTERNS:
        if kind in wanted:
            text, n = _redact_one(kind, text)
            if n:
                counts[kind] = n
    return text, counts


class PIIConfig(Section):
    """Which PII types :class:`RedactPII` replaces."""

    enabled: bool = True
    types: list[PIIType] = Field(default_factory=lambda: list(PLACEHOLDERS))


class RedactPII(Step):
    """Replace PII by typed placeholders; counts ``pii_<type>`` per language, never drops."""

    name: ClassVar[str] = "pii"

    def __init__(self, config: PIIConfig | None = None) -> None:
        super().__init__()
        self.config = config or PIIConfig()

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            self.stats.add("seen", doc.language)
            if self.config.enabled:
                doc.text, counts = redact(doc.text, self.config.types)
                for kind, n in counts.items():
                    doc.history.append(f"pii:{kind}")
                    self.stats.add(f"pii_{kind}", doc.language, n)
                if counts:
                    self.stats.add("modified", doc.language)
            self.stats.add("kept", doc.language)
            yield doc
