"""``LanguageID``: the pipeline step that sets ``doc.language`` and ``doc.language_score``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

from bloomkit.data_tooling.lid.codes import code_language
from bloomkit.data_tooling.lid.identifier import UNKNOWN, LanguageIdentifier, default_identifier
from bloomkit.data_tooling.pipeline.base import Document, Step


class LanguageID(Step):
    """Identify each document's language (one of the 46 BLOOM codes, or ``unknown``).

    A document whose ``metadata["language_hint"]`` names a programming language (``python``,
    ``Java``, ...) keeps it as its language with score 1.0 and is not re-identified. For an
    ``unknown`` answer the best guess goes to ``metadata["lid_best_guess"]`` and the reason to
    ``metadata["lid_unknown_reason"]``. With ``drop_unknown`` such documents are removed
    (reason ``lid_unknown``); otherwise they pass on with language ``unknown``.
    """

    name: ClassVar[str] = "lid"

    def __init__(
        self, identifier: LanguageIdentifier | None = None, drop_unknown: bool = False
    ) -> None:
        super().__init__()
        self.identifier = identifier or default_identifier()
        self.drop_unknown = drop_unknown

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            code = code_language(doc.metadata.get("language_hint"))
            if code is not None:
                doc.language, doc.language_score = code, 1.0
                self.stats.add("code_hint", doc.language)
            else:
                prediction = self.identifier.predict(doc.text)
                doc.language, doc.language_score = prediction.language, prediction.score
                if prediction.language == UNKNOWN:
                    doc.metadata["lid_best_guess"] = prediction.best
                    doc.metadata["lid_unknown_reason"] = prediction.reason
                    if self.drop_unknown:
                        self.stats.add("seen", doc.language)
                        self.drop(doc, "lid_unknown")
                        continue
            self.stats.add("seen", doc.language)
            self.stats.add("kept", doc.language)
            yield doc
