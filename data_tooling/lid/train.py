"""Train the LID n-gram model and the ensemble's detector tables on SIB-200 ``train`` only.

    python -m bloomkit.data_tooling.lid.train SHARED_DATA_DIR

Writes ``ngram_model.npz`` and ``ensemble.json`` beside this file. Three things are learned:

1. the hashed character n-gram naive Bayes model (:mod:`.ngram`) on all train sentences;
2. its temperature: logits are ``tau * mean_loglik * sqrt(n_ngrams)`` (length-aware, as
   py3langid scales by sqrt(bytes)); ``tau`` minimises the log loss on documents of 1, 2 and 5
   sentences from a held-out fifth of train, scored by a model fit on the other four fifths;
3. how each detector's labels relate to our 46 codes: counts of (detector label, true
   language) on train documents of 1 and 5 sentences. The identifier turns them into
   P(label | language) and multiplies them in (naive Bayes stacking of classifiers).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.lid.detectors import DETECTORS
from bloomkit.data_tooling.lid.ngram import MODEL_FILE, NgramModel, features
from bloomkit.data_tooling.lid.sib200 import group, read_sentences
from bloomkit.rundir import atomic_path, atomic_write_json

ENSEMBLE_FILE = Path(__file__).parent / "ensemble.json"
BITS = 16
"""2**16 buckets x 46 languages in int8 = 3 MB raw, ~1.8 MB compressed."""
ALPHA = 0.1
HELD_OUT = 5
"""Every 5th train sentence is held out to fit the temperature."""
DOC_SIZES = (1, 2, 5)


def _logits(model: NgramModel, text: str) -> np.ndarray:
    n = len(features(text[: model.max_chars], model.bits))
    return model.scores(text) * math.sqrt(max(n, 1))


def fit_temperature(model: NgramModel, docs: list[tuple[str, str]]) -> float:
    """The ``tau`` minimising mean negative log-likelihood of the true language."""
    index = {lang: i for i, lang in enumerate(model.languages)}
    logits = np.stack([_logits(model, text) for text, _ in docs])
    truth = np.array([index[lang] for _, lang in docs])
    best_tau, best_nll = 1.0, math.inf
    for tau in np.geomspace(0.01, 10, 61):
        z = logits * tau
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -float(logp[np.arange(len(truth)), truth].mean())
        if nll < best_nll:
            best_tau, best_nll = float(tau), nll
    return best_tau


def detector_counts(sentences: dict[str, list[str]]) -> dict[str, dict[str, dict[str, int]]]:
    """``{detector: {label: {language: count}}}`` over train documents of 1 and 5 sentences."""
    tables: dict[str, dict[str, Counter[str]]] = {name: {} for name in DETECTORS}
    for lang, sents in sentences.items():
        docs = sents + group(sents, 5)
        for name, detect in DETECTORS.items():
            for doc in docs:
                label, _ = detect(doc)
                tables[name].setdefault(label, Counter())[lang] += 1
    return {
        name: {label: dict(counts) for label, counts in sorted(table.items())}
        for name, table in tables.items()
    }


def train(shared_data: Path, out_dir: Path = MODEL_FILE.parent) -> dict[str, object]:
    langs = language_codes()
    sentences = {lang: read_sentences(shared_data, lang, "train") for lang in langs}
    fit_part = {lang: [s for i, s in enumerate(v) if i % HELD_OUT] for lang, v in sentences.items()}
    held_docs = [
        (doc, lang)
        for lang, v in sentences.items()
        for size in DOC_SIZES
        for doc in group(v[::HELD_OUT], size, " ")
    ]
    tau = fit_temperature(NgramModel.fit(fit_part, BITS, ALPHA), held_docs)
    model = NgramModel.fit(sentences, BITS, ALPHA)
    with atomic_path(out_dir / MODEL_FILE.name) as tmp, open(tmp, "wb") as handle:
        model.save(handle)
    ensemble = {
        "source": "sib200 train (SIB-200 / FLORES-200, CC BY-SA 4.0)",
        "languages": langs,
        "documents_per_language": {
            lang: len(v) + len(group(v, 5)) for lang, v in sentences.items()
        },
        "temperature": tau,
        "detectors": detector_counts(sentences),
    }
    atomic_write_json(out_dir / ENSEMBLE_FILE.name, ensemble)
    return {"temperature": tau, "model_bytes": (out_dir / MODEL_FILE.name).stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shared_data", type=Path, help="folder holding sib200/<lang>/train.tsv")
    parser.add_argument("--out-dir", type=Path, default=MODEL_FILE.parent)
    args = parser.parse_args(argv)
    print(json.dumps(train(args.shared_data, args.out_dir)))


if __name__ == "__main__":
    main()
