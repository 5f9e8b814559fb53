"""The small multilingual sample that ships with bloomkit, and the raw corpus made from it.

The sample (``bloomkit/sample/``) is a slice of SIB-200 in all 46 languages (TSV, the layout
of ``../shared/data/sib200``), a few Python standard-library modules as code, and the 175
Stanford Alpaca seed tasks (instruction tuning in the demo). Every file
is listed with its sha256 in ``bloomkit/sample/catalogue.yaml`` under the source it came
from, with that source's licence.

Rebuild it from a checkout that has ``../shared`` beside it::

    python -m bloomkit.data_tooling.sample ../shared/data
"""

from __future__ import annotations

import csv
import json
import sys
import sysconfig
from pathlib import Path

import yaml

from bloomkit.data_tooling.catalogue import load_catalogue, verify_files
from bloomkit.data_tooling.languages import language_codes
from bloomkit.rundir import atomic_path, sha256_file

SOURCES = ("sib200-flores", "python-stdlib", "alpaca-seeds")
"""The catalogue ids of the sample's sources."""
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "bloomkit" / "sample"
TRAIN_ROWS, DEV_ROWS = 120, 30
SENTENCES_PER_DOC = 4
STDLIB_MODULES = ("bisect", "colorsys", "fnmatch", "glob", "graphlib", "heapq", "shlex", "textwrap")


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a SIB-200 TSV file (tab-delimited, no quoting: texts contain quotes)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def sample_dir() -> Path:
    """Where the shipped sample lives (inside the installed package)."""
    import bloomkit

    return Path(bloomkit.__file__).resolve().parent / "sample"


def build_sample(shared_data: Path, out: Path = SAMPLE_DIR) -> None:
    """Write the sample under ``out`` from ``shared_data`` (sib200/) and this Python's stdlib."""
    files: dict[str, dict[str, str]] = {source: {} for source in SOURCES}
    for lang in language_codes():
        for split, rows in (("train", TRAIN_ROWS), ("dev", DEV_ROWS)):
            src = shared_data / "sib200" / lang / f"{split}.tsv"
            lines = src.read_text(encoding="utf-8").splitlines(keepends=True)[: rows + 1]
            dst = out / "sib200" / lang / f"{split}.tsv"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text("".join(lines), encoding="utf-8")
            files["sib200-flores"][f"sib200/{lang}/{split}.tsv"] = sha256_file(dst)
    labels = out / "sib200" / "labels.txt"
    labels.write_text((shared_data / "sib200" / "labels.txt").read_text(encoding="utf-8"))
    files["sib200-flores"]["sib200/labels.txt"] = sha256_file(labels)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for module in STDLIB_MODULES:
        dst = out / "code" / "python" / f"{module}.py"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((stdlib / f"{module}.py").read_bytes())
        files["python-stdlib"][f"code/python/{module}.py"] = sha256_file(dst)
    seeds = out / "finetune" / "alpaca_seed_tasks.jsonl"
    seeds.parent.mkdir(parents=True, exist_ok=True)
    seeds.write_bytes((shared_data / "finetune" / seeds.name).read_bytes())
    files["alpaca-seeds"][f"finetune/{seeds.name}"] = sha256_file(seeds)
    catalogue_path = out / "catalogue.yaml"
    catalogue = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    for source in catalogue["sources"]:
        source["files"] = files[source["id"]]
    catalogue_path.write_text(
        yaml.safe_dump(catalogue, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def write_raw_corpus(sample: Path, out: Path) -> dict[str, int]:
    """Turn the sample into raw corpus input for the data pipeline.

    * ``out/sib200.jsonl``: one document per ``SENTENCES_PER_DOC`` consecutive train
      sentences of one language, with ``id``, ``text``, ``source`` and the declared
      ``language`` (the pipeline still identifies it).
    * ``out/code/``: the Python files as a plain-text folder.

    Refuses to run when the sample no longer matches its catalogue.
    """
    catalogue = load_catalogue(sample / "catalogue.yaml")
    problems = verify_files(catalogue, sample)
    if problems:
        raise ValueError(f"{sample}: sample does not match its catalogue:\n" + "\n".join(problems))
    counts = {"documents": 0, "code_files": 0}
    with atomic_path(out / "sib200.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for lang in catalogue.source("sib200-flores").languages:
            rows = read_tsv(sample / "sib200" / lang / "train.tsv")
            for start in range(0, len(rows), SENTENCES_PER_DOC):
                text = " ".join(r["text"] for r in rows[start : start + SENTENCES_PER_DOC])
                doc = {
                    "id": f"sib200-{lang}-{start // SENTENCES_PER_DOC:04d}",
                    "text": text,
                    "source": "sib200-flores",
                    "declared_language": lang,
                }
                handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
                counts["documents"] += 1
    with atomic_path(out / "code") as tmp:
        tmp.mkdir()
        for relative in catalogue.source("python-stdlib").files:
            (tmp / Path(relative).name).write_bytes((sample / relative).read_bytes())
            counts["code_files"] += 1
    return counts


if __name__ == "__main__":
    build_sample(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
