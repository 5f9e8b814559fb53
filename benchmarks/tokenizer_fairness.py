"""Tokenizer fairness: script- vs language-balanced vs unbalanced BPE on a web-crawl-like corpus.

    .venv/bin/python benchmarks/tokenizer_fairness.py ../shared/data/sib200

Corpus: the SIB-200 ``train`` sentences (701 per language, translations of each other), cut to
the language skew of BLOOM's ROOTS corpus: English keeps all 701 sentences and every other
language ``701 × share / share_en`` of its own (ROOTS byte shares, :data:`ROOTS_SHARE`), at
least ``--floor`` sentences so that each language is present at all, as in a real crawl where
the rarest languages still have a few pages. Three tokenizers are trained on it with
``bloomkit``'s own trainer (:data:`DESIGNS`): balanced by script (the default, alpha 0.3 over
scripts, then over the languages of each script), balanced by language (BLOOM's recipe, alpha
0.3 over languages) and unbalanced (alpha 1.0, natural shares), at several vocabulary sizes;
:mod:`bloomkit.data_tooling.tokenizer.report` measures them on the held-out, aligned ``dev``
sentences (premium = tokens for the same content / tokens in English). Goals (issue 5):
highest premium ≤2.0×, median ≤1.3×, every language better than without balancing.

Robustness rows: the headline vocabulary with other sampling seeds (``--seeds``), with a
second skew, Zipf over the language table's order (language at rank ``r`` keeps ``701 / r``
sentences), and with no skew (every language the same number of sentences, as many in all as
the ROOTS-like corpus).

Writes ``benchmarks/results/tokenizer_fairness.{md,json,png}`` (tables, data, plot; the
Markdown comes from ``tokenizer_fairness_md.py``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tokenizer_fairness_md import DESIGNS, LABELS, markdown

from bloomkit.data_tooling.languages import language_codes, languages
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.writers import ShardWriter
from bloomkit.data_tooling.sample import read_tsv
from bloomkit.data_tooling.tokenizer.report import (
    aligned_rows,
    goals,
    measure,
    plot,
    versus_baseline,
)
from bloomkit.data_tooling.tokenizer.train import TokenizerTrainConfig, train_tokenizer
from bloomkit.rundir import RunDir, atomic_write_json, atomic_write_text

RESULTS = Path(__file__).parent / "results"
ROOTS_SHARE: dict[str, float] = {
    "en": 30.0, "zhs": 16.2, "fr": 12.9, "es": 10.8, "pt": 4.9, "ar": 4.6, "vi": 2.7,
    "id": 1.2, "ca": 1.1, "hi": 0.7, "bn": 0.5, "ur": 0.3, "ta": 0.2, "eu": 0.15,
    "ml": 0.1, "te": 0.09, "mr": 0.08, "ne": 0.07, "kn": 0.06, "zht": 0.05, "gu": 0.04,
    "pa": 0.04, "or": 0.04, "sw": 0.02, "as": 0.01, "yo": 0.006, "ig": 0.003, "rw": 0.003,
    "xh": 0.001, "zu": 0.001, "sn": 0.001, "lg": 0.0004, "wo": 0.0004, "rn": 0.0003,
    "fon": 0.0002, "nso": 0.0002, "ln": 0.0002, "tn": 0.0002, "st": 0.0002, "ny": 0.0001,
    "ts": 0.0001, "tw": 0.0001, "bm": 0.00004, "ki": 0.00004, "tum": 0.00003, "ak": 0.00002,
}  # fmt: skip
"""Percent of ROOTS bytes per language, rounded, after the BLOOM paper (Scao et al., 2022,
table 1) and the ROOTS paper (Laurençon et al., 2022); only the orders of magnitude matter."""


def skewed_rows(sib200: Path, floor: int) -> dict[str, list[str]]:
    """Each language's first ``max(floor, 701 × share / share_en)`` train sentences."""
    if set(ROOTS_SHARE) != set(language_codes()):
        raise ValueError("ROOTS_SHARE must list exactly the 46 BLOOM languages")
    out: dict[str, list[str]] = {}
    for lang in language_codes():
        rows = read_tsv(sib200 / lang / "train.tsv")
        keep = max(floor, round(len(rows) * ROOTS_SHARE[lang] / ROOTS_SHARE["en"]))
        out[lang] = [row["text"] for row in rows[:keep]]
    return out


def zipf_rows(sib200: Path) -> dict[str, list[str]]:
    """The language at rank ``r`` of the table's order keeps its first ``701 // r`` sentences."""
    out: dict[str, list[str]] = {}
    for rank, lang in enumerate(language_codes(), start=1):
        rows = read_tsv(sib200 / lang / "train.tsv")
        out[lang] = [row["text"] for row in rows[: len(rows) // rank]]
    return out


def even_rows(sib200: Path, per_language: int) -> dict[str, list[str]]:
    """No skew: every language's first ``per_language`` sentences."""
    return {
        lang: [row["text"] for row in read_tsv(sib200 / lang / "train.tsv")[:per_language]]
        for lang in language_codes()
    }


def write_corpus(rows: dict[str, list[str]], path: Path) -> Path:
    """The sentences as one corpus-pipeline shard (one document per sentence)."""
    with ShardWriter(path, "jsonl.zst") as out:
        for lang, texts in rows.items():
            for i, text in enumerate(texts):
                out.write(Document(id=f"{lang}-{i}", text=text, source="sib200",
                                   licence="CC-BY-SA-4.0", language=lang, language_score=1.0,
                                   history=["sib200"]))  # fmt: skip
    return path


def compare(
    corpus: Path, dev: dict[str, dict[str, str]], vocab: int, seed: int, work: Path
) -> dict[str, Any]:
    """Train the three :data:`DESIGNS` at ``vocab`` and measure them on ``dev``."""
    designs: dict[str, Any] = {}
    for name, (balance, alpha) in DESIGNS.items():
        config = TokenizerTrainConfig(
            inputs=[corpus], vocab_size=vocab, alpha=alpha, balance=balance, seed=seed
        )
        folder = work / f"v{vocab}-s{seed}-{name}"
        trained = train_tokenizer(config, RunDir(folder, "tokenizer_fairness", config))
        designs[name] = {
            "label": LABELS[name],
            "balance": balance,
            "alpha": alpha,
            "vocab_size": trained["vocab_size"],
            "sample_bytes": trained["sample_bytes"],
            "sampling_probability": {
                lang: stats["probability"] for lang, stats in trained["languages"].items()
            },
            "languages": measure(folder / "tokenizer", dev),
        }
    base = designs["unbalanced"]["languages"]
    for design in designs.values():
        design |= {"summary": goals(design["languages"])}
        design |= versus_baseline(design["languages"], base)
    return designs


def setting_row(setting: str, designs: dict[str, Any]) -> dict[str, Any]:
    """One line of the robustness table: goals and "better in" per design, and for each
    language not helped its sample share unbalanced and balanced."""
    natural = designs["unbalanced"]["sampling_probability"]
    row: dict[str, Any] = {"setting": setting}
    for name, d in designs.items():
        row[name] = {k: d[k] for k in ("summary", "better_than_baseline", "worse_or_equal")}
        row[name]["not_helped"] = {
            lang: {
                "premium": d["languages"][lang]["premium"],
                "baseline_premium": designs["unbalanced"]["languages"][lang]["premium"],
                "share": d["sampling_probability"][lang],
                "baseline_share": natural[lang],
            }
            for lang in d["worse_or_equal"]
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sib200", type=Path, help="folder of <lang>/{train,dev}.tsv")
    parser.add_argument("--vocab", type=int, default=8000, help="headline vocabulary size")
    parser.add_argument("--sweep", type=int, nargs="*", default=[2000, 4000, 8000, 16000])
    seed = TokenizerTrainConfig.model_fields["seed"].default
    parser.add_argument("--seed", type=int, default=seed, help="the trainer's default")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3],
                        help="other sampling seeds tried at the headline vocabulary")  # fmt: skip
    parser.add_argument("--floor", type=int, default=7, help="fewest sentences per language")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = skewed_rows(args.sib200, args.floor)
    dev = aligned_rows(args.sib200, "dev")
    texts = [t for ts in rows.values() for t in ts]
    even = even_rows(args.sib200, round(len(texts) / len(rows)))  # as many sentences in all
    settings = [("ROOTS", v, args.seed) for v in sorted({*args.sweep, args.vocab})]
    settings += [("ROOTS", args.vocab, seed) for seed in args.seeds]
    settings += [("Zipf", args.vocab, args.seed), ("no", args.vocab, args.seed)]
    checks: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {
            "ROOTS": write_corpus(rows, Path(tmp) / "ROOTS" / "skewed.jsonl.zst"),
            "Zipf": write_corpus(zipf_rows(args.sib200), Path(tmp) / "Zipf" / "zipf.jsonl.zst"),
            "no": write_corpus(even, Path(tmp) / "no" / "even.jsonl.zst"),
        }
        for skew, vocab, seed in settings:
            designs = compare(corpora[skew], dev, vocab, seed, Path(tmp) / skew)
            if (skew, vocab, seed) == ("ROOTS", args.vocab, args.seed):
                headline = designs
            setting = f"{skew} skew, vocabulary {vocab:,}, seed {seed}"
            checks.append(setting_row(setting, designs) | {"skew": skew})
            print(checks[-1]["setting"], "done", flush=True)
    report = {
        "vocab": args.vocab,
        "seed": args.seed,
        "sentences_per_language": len(dev["en"]),
        "designs": headline,
        "scripts": {code: info.script for code, info in languages().items()},
        "corpus": {
            "source": str(args.sib200),
            "split": "train",
            "floor": args.floor,
            "at_floor": sum(len(t) == args.floor for t in rows.values()),
            "roots_share_percent": ROOTS_SHARE,
        },
        "corpus_sentences": {lang: len(t) for lang, t in rows.items()},
        "corpus_bytes": sum(len(t.encode("utf-8")) for t in texts),
        "distinct_words": len({w for t in texts for w in t.split()}),
        "checks": checks,
        "seconds": time.perf_counter() - start,
    }
    command = shlex.join([".venv/bin/python", "benchmarks/tokenizer_fairness.py", *sys.argv[1:]])
    report["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "tokenizer_fairness.json", report)
    atomic_write_text(args.out / "tokenizer_fairness.md", markdown(report))
    plot({d["label"]: d["languages"] for d in headline.values()},
         args.out / "tokenizer_fairness.png")  # fmt: skip
    print(f"wrote {args.out}/tokenizer_fairness.{{md,json,png}}")


if __name__ == "__main__":
    main()
