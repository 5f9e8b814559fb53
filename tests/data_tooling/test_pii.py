"""PII redaction: each type in English and inside non-Latin sentences; clean text untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.sib200 import read_sentences
from bloomkit.data_tooling.pii import PLACEHOLDERS, PIIConfig, RedactPII, luhn_valid, redact
from bloomkit.data_tooling.pipeline.base import Document

GITHUB = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"
CASES: list[tuple[str, str, str]] = [
    # (type, text inserted, the part that must become the placeholder)
    ("email", "jane.doe+news@example.org", "jane.doe+news@example.org"),
    ("email", "a_b@mail.co.uk", "a_b@mail.co.uk"),
    ("ipv4", "192.168.0.17", "192.168.0.17"),
    ("ipv4", "1.2.3.4", "1.2.3.4"),
    ("ipv6", "2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
    ("ipv6", "fe80::1", "fe80::1"),
    ("handle", "@bigscience_w", "@bigscience_w"),
    ("secret", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", GITHUB, GITHUB),
    ("secret", "xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("secret", "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12", "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12"),
    ("secret", 'api_key = "a1b2c3d4e5f6g7h8"', "a1b2c3d4e5f6g7h8"),
    ("secret", "SECRET_KEY=9f8e7d6c5b4a3210", "9f8e7d6c5b4a3210"),
    ("credit_card", "4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("credit_card", "5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("credit_card", "378282246310005", "378282246310005"),
    ("credit_card", "3782 822463 10005", "3782 822463 10005"),
]
NON_LATIN = ["zhs", "zht", "ar", "hi", "ta", "bn", "ur"]


def expected(text: str, kind: str, secret: str) -> str:
    return text.replace(secret, PLACEHOLDERS[kind])


def embed(sentence: str, value: str) -> str:
    """``value`` in the middle of ``sentence``: at a space, or between two non-ASCII chars."""
    mid = len(sentence) // 2
    for k in sorted(range(1, len(sentence)), key=lambda k: abs(k - mid)):
        if sentence[k] == " ":
            return f"{sentence[:k]} {value}{sentence[k:]}"
        if not sentence[k - 1].isascii() and not sentence[k].isascii():
            return sentence[:k] + value + sentence[k:]
    raise AssertionError(f"no place to insert into {sentence!r}")


@pytest.mark.parametrize(("kind", "value", "secret"), CASES)
def test_each_type_redacted_in_english(kind: str, value: str, secret: str) -> None:
    text = f"Please write to {value} before Friday, thanks."
    out, counts = redact(text)
    assert counts == {kind: 1}
    assert out == expected(text, kind, secret)


@pytest.mark.parametrize(("kind", "value", "secret"), CASES)
def test_each_type_redacted_inside_non_latin_sentences(
    shared_data: Path, kind: str, value: str, secret: str
) -> None:
    for lang in NON_LATIN:
        sentence = read_sentences(shared_data, lang, "dev")[3]
        text = embed(sentence, value)
        out, counts = redact(text)
        assert counts == {kind: 1}, (lang, text)
        assert out == expected(text, kind, secret), lang


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112 was declined.",  # Luhn-invalid
        "Order 4111111111111112 shipped.",
        "Reference 1234 5678 9012 3456.",  # Luhn-invalid
        "ISBN 9780306406157 is a book.",  # 13 digits, issuer digit 9
        "Host 999.1.1.1 and 256.1.1.1 are not addresses.",
        "Version 1.2.3.4.5 and 01.02.03.04 are not addresses.",
        "Dates 2024-01-15, 12.03.2024 and times 4:41.30, 12:30:45.",
        "In C++ write std::vector and abc::def.",
        "Mail me at jane@example.org, not @ all.",
        "The password is long but secret: nobody knows.",
        "Arabic digits ٤١١١ ١١١١ ١١١١ ١١١١ and Devanagari ४१११ ११११ ११११ ११११.",
    ],
)
def test_lookalikes_untouched(text: str) -> None:
    out, counts = redact(text)
    if "jane@example.org" in text:
        assert counts == {"email": 1}
        assert out == text.replace("jane@example.org", "<EMAIL>")
    else:
        assert counts == {}
        assert out == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("79927398710")


def test_clean_sib200_text_is_not_redacted(shared_data: Path) -> None:
    touched: dict[str, list[str]] = {}
    total = 0
    for lang in language_codes():
        sentences = read_sentences(shared_data, lang, "dev")
        total += len(sentences)
        hits = [s for s in sentences if redact(s)[1]]
        if hits:
            touched[lang] = hits
        assert len(hits) <= 1, (lang, hits)
    assert sum(map(len, touched.values())) <= 0.01 * total, touched


def test_step_history_and_stats_per_language() -> None:
    docs = [
        Document("a", "Mail jane@example.org or @jane, twice: bob@example.com", language="en"),
        Document("b", "请发邮件至 li@example.cn 或访问 10.0.0.1。", language="zhs"),
        Document("c", "No personal data here.", language="en"),
    ]
    step = RedactPII()
    out = list(step.run(docs))
    assert [d.id for d in out] == ["a", "b", "c"]
    assert out[0].text == "Mail <EMAIL> or <HANDLE>, twice: <EMAIL>"
    assert out[0].history == ["pii:email", "pii:handle"]
    assert out[1].text == "请发邮件至 <EMAIL> 或访问 <IP_ADDRESS>。"
    assert out[1].history == ["pii:email", "pii:ipv4"]
    assert out[2].history == []
    assert step.stats.by_language["en"]["pii_email"] == 2
    assert step.stats.by_language["en"]["pii_handle"] == 1
    assert step.stats.by_language["zhs"]["pii_ipv4"] == 1
    assert step.stats.counts["seen"] == step.stats.counts["kept"] == 3
    assert step.stats.counts["modified"] == 2


def test_config_selects_types_and_disables() -> None:
    text = "jane@example.org at 10.0.0.1"
    only_ip = next(RedactPII(PIIConfig(types=["ipv4"])).run([Document("a", text)]))
    assert only_ip.text == "jane@example.org at <IP_ADDRESS>"
    off = next(RedactPII(PIIConfig(enabled=False)).run([Document("a", text)]))
    assert off.text == text
    assert off.history == []
    with pytest.raises(ValidationError):
        PIIConfig(types=["phone"])
    with pytest.raises(ValidationError):
        PIIConfig(enable=True)
