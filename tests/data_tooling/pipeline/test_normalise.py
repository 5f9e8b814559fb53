"""Normalise: NFC, line endings and controls; empty or mis-decoded text is quarantined."""

from __future__ import annotations

import unicodedata

import pytest

from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.normalise import Normalise, normalise_text
from bloomkit.data_tooling.sample import read_tsv


def run(texts: list[str], **kwargs) -> tuple[list[Document], list[str], Normalise]:
    step = Normalise(**kwargs)
    reasons: list[str] = []
    step.quarantine_sink = lambda doc, name, reason: reasons.append(f"{name} {reason}")
    docs = [
        Document(id=str(i), text=t, language="xx", metadata={"file": "in.jsonl", "line": i})
        for i, t in enumerate(texts, 1)
    ]
    return list(step.run(docs)), reasons, step


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cafe\u0301", "café"),  # combining accent composed (NFC)
        ("a\r\nb\rc", "a\nb\nc"),
        ("tab\tkept\x00\x07\x1b\x7f\x9b gone", "tab\tkept gone"),
        ("page\x0cbreak\x85next", "page\nbreak\nnext"),
        ("  \n padded \t\n", "padded"),
        ("क्\u200dष", "क्\u200dष"),  # ZWJ is a format character, not a control
    ],
)
def test_normalise_text(raw, clean):
    assert normalise_text(raw) == clean


def test_history_and_counts_only_when_changed():
    docs, reasons, step = run(["already clean", "cafe\u0301\r\n"])
    assert reasons == []
    assert [d.text for d in docs] == ["already clean", "café"]
    assert [d.history for d in docs] == [[], ["normalise"]]
    assert step.stats.counts == {"seen": 2, "kept": 2, "changed": 1}
    assert step.stats.by_language["xx"]["changed"] == 1


def test_empty_and_misdecoded_text_is_quarantined_with_file_and_line():
    garbled = "ok text " * 10 + "\ufffd" * 2  # 2 of 82 chars: 2.4 %
    fine = "ok text " * 20 + "\ufffd"  # 1 of 161 chars: 0.6 %
    docs, reasons, step = run([" \x00\r\n ", garbled, fine])
    assert [d.text for d in docs] == [fine.strip()]
    assert reasons == [
        "normalise in.jsonl:1: text: empty after normalisation",
        "normalise in.jsonl:2: text: 2.4% replacement characters U+FFFD (> 1.0%); "
        "the source was decoded wrongly",
    ]
    assert step.stats.counts["seen"] == step.stats.counts["kept"] + step.stats.counts["quarantined"]


def test_real_multilingual_text_only_changes_by_nfc_and_strip(shared_data):
    """Across 46 languages the step is NFC + strip, nothing else: ZWJ/ZWNJ and marks stay."""
    langs = sorted(p.name for p in (shared_data / "sib200").iterdir() if p.is_dir())
    assert len(langs) == 46
    texts = [
        row["text"] for lang in langs for row in read_tsv(shared_data / f"sib200/{lang}/dev.tsv")
    ]
    docs, reasons, step = run(texts)
    assert reasons == []
    expected = [unicodedata.normalize("NFC", t).strip() for t in texts]
    assert [d.text for d in docs] == expected
    changed = sum(e != t for e, t in zip(expected, texts, strict=True))
    assert step.stats.counts["changed"] == changed > 0
    assert [normalise_text(d.text) for d in docs] == [d.text for d in docs], "idempotent"


def test_bad_ratio_rejected():
    with pytest.raises(ValueError, match="max_replacement_ratio=2"):
        Normalise(max_replacement_ratio=2)
