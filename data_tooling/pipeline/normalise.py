"""Unicode normalisation: NFC, line endings, control characters; unusable text is quarantined."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from bloomkit.data_tooling.pipeline.base import Document, Step

# Controls that act as line breaks (str.splitlines treats them so) become "\n"; every other
# C0/C1 control except "\t" is removed. Format characters (ZWJ, ZWNJ) are not controls and stay:
# Indic and Arabic scripts need them.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def normalise_text(text: str) -> str:
    """``\\r\\n`` and other line-break controls → ``\\n``, other controls removed, NFC, stripped."""
    text = _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))
    return unicodedata.normalize("NFC", text).strip()


class Normalise(Step):
    """Normalise text in place; quarantine documents that are empty or mostly undecodable.

    Counts ``seen``, ``kept`` and ``changed``; ``"normalise"`` is appended to a document's
    history only when its text changed.
    """

    name = "normalise"

    def __init__(self, max_replacement_ratio: float = 0.01):
        super().__init__()
        if not 0 <= max_replacement_ratio <= 1:
            raise ValueError(f"max_replacement_ratio={max_replacement_ratio}: must be in [0, 1]")
        self.max_replacement_ratio = max_replacement_ratio
        """Largest share of U+FFFD (text that was decoded with errors replaced) to keep."""

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            self.stats.add("seen", doc.language)
            text = normalise_text(doc.text)
            where = f"{doc.metadata.get('file', doc.id)}:{doc.metadata.get('line', '?')}"
            if not text:
                self.quarantine(doc, f"{where}: text: empty after normalisation")
                continue
            ratio = text.count("\ufffd") / len(text)
            if ratio > self.max_replacement_ratio:
                self.quarantine(
                    doc,
                    f"{where}: text: {ratio:.1%} replacement characters U+FFFD "
                    f"(> {self.max_replacement_ratio:.1%}); the source was decoded wrongly",
                )
                continue
            if text != doc.text:
                doc.text = text
                doc.history.append(self.name)
                self.stats.add("changed", doc.language)
            self.stats.add("kept", doc.language)
            yield doc
