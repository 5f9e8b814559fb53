"""Measure LID accuracy per language on SIB-200 ``dev`` and publish the support table.

    python -m bloomkit.data_tooling.lid.evaluate SHARED_DATA_DIR

Documents are 5 consecutive dev sentences (the model never saw dev). For each language it
measures the ensemble's accuracy (an ``unknown`` answer counts as wrong), its accuracy on
single sentences, and, for contrast, each part alone: our n-gram model, pycld2 and py3langid
(their labels mapped to BLOOM codes by name: ``zh`` -> ``zhs``, ``zh-Hant`` -> ``zht``,
``kik`` -> ``ki``). A language is supported when the ensemble reaches ``SUPPORT_MIN_ACCURACY``
on documents. Writes ``tables/lid_support.tsv`` and the table in ``docs/lid.md``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from bloomkit.data_tooling.languages import language_codes, languages
from bloomkit.data_tooling.lid.detectors import DETECTORS
from bloomkit.data_tooling.lid.identifier import SUPPORT_TABLE, LanguageIdentifier
from bloomkit.data_tooling.lid.sib200 import documents, read_sentences
from bloomkit.rundir import atomic_write_text

SUPPORT_MIN_ACCURACY = 0.90
DOC_MARKDOWN = Path(__file__).parents[2] / "docs" / "lid.md"
START, END = "<!-- lid-table:start -->", "<!-- lid-table:end -->"
DETECTOR_TO_BLOOM = {"zh": "zhs", "zh-Hant": "zht", "kik": "ki"}
COLUMNS = (
    "language", "name", "documents", "accuracy", "supported", "main_confusion",
    "sentence_accuracy", "sentence_confusion", "ngram_only", "cld2_only", "langid_only",
)  # fmt: skip


def _confusion(answers: list[str], truth: str) -> str:
    wrong = Counter(a for a in answers if a != truth)
    if not wrong:
        return "-"
    label, count = wrong.most_common(1)[0]
    return f"{label} ({count}/{len(answers)})"


def evaluate(shared_data: Path) -> list[dict[str, str]]:
    ident = LanguageIdentifier(support=None)
    rows = []
    for lang in language_codes():
        docs = documents(shared_data, lang, "dev")
        answers = [ident.predict(d).language for d in docs]
        sentences = read_sentences(shared_data, lang, "dev")
        sentence_answers = [ident.predict(s).language for s in sentences]
        ngram = [ident.model.languages[int(np.argmax(ident.model.scores(d)))] for d in docs]
        alone = {
            name: [DETECTOR_TO_BLOOM.get(x, x) for x, _ in map(detect, docs)]
            for name, detect in DETECTORS.items()
        }
        accuracy = answers.count(lang) / len(docs)
        rows.append(
            {
                "language": lang,
                "name": languages()[lang].name,
                "documents": str(len(docs)),
                "accuracy": f"{accuracy:.3f}",
                "supported": "yes" if accuracy >= SUPPORT_MIN_ACCURACY else "no",
                "main_confusion": _confusion(answers, lang),
                "sentence_accuracy": f"{sentence_answers.count(lang) / len(sentences):.3f}",
                "sentence_confusion": _confusion(sentence_answers, lang),
                "ngram_only": f"{ngram.count(lang) / len(docs):.3f}",
                "cld2_only": f"{alone['cld2'].count(lang) / len(docs):.3f}",
                "langid_only": f"{alone['langid'].count(lang) / len(docs):.3f}",
            }
        )
    return rows


def to_tsv(rows: list[dict[str, str]]) -> str:
    lines = ["\t".join(COLUMNS)] + ["\t".join(row[c] for c in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict[str, str]]) -> str:
    def count(column: str) -> int:
        return sum(float(r[column]) >= SUPPORT_MIN_ACCURACY for r in rows)

    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(r[c] for c in COLUMNS) + " |\n" for r in rows)
    summary = (
        f"Languages at accuracy >= {SUPPORT_MIN_ACCURACY:.2f} on 5-sentence dev documents: "
        f"ensemble {count('accuracy')}/{len(rows)}, n-gram model alone {count('ngram_only')}, "
        f"pycld2 alone {count('cld2_only')}, py3langid alone {count('langid_only')}; "
        f"single sentences (ensemble) {count('sentence_accuracy')}.\n\n"
    )
    return summary + header + body


def publish(rows: list[dict[str, str]], table: Path, markdown: Path) -> None:
    atomic_write_text(table, to_tsv(rows))
    text = markdown.read_text(encoding="utf-8") if markdown.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(markdown, f"{head}{START}\n{to_markdown(rows)}{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path, help="folder holding sib200/<lang>/dev.tsv")
    parser.add_argument("--table", type=Path, default=SUPPORT_TABLE)
    parser.add_argument("--markdown", type=Path, default=DOC_MARKDOWN)
    args = parser.parse_args(argv)
    rows = evaluate(args.shared_data)
    publish(rows, args.table, args.markdown)
    print(to_markdown(rows).split("\n")[0])


if __name__ == "__main__":
    main()
