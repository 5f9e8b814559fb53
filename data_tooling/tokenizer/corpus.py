"""Corpus shards as the pipeline writes them, and balanced (alpha) sampling.

A shard is ``*.jsonl``, ``*.jsonl.gz`` or ``*.jsonl.zst``: one JSON object per line with at
least ``text`` and ``language`` (a BLOOM code such as ``en``/``zhs``, or ``python`` for code).
A line that is not such an object stops the run with the file and line named.

Balancing is by language (``p_l ∝ bytes_l^alpha``, BLOOM's recipe) or by writing system first:
``p_s ∝ bytes_s^alpha`` over scripts, then ``p_l|s ∝ bytes_l^alpha`` within each. BPE merges
are shared by every language written in a script, so per-language balancing hands Latin (the
script of most languages) most of the sample; per-script balancing gives each script its own
share. Scripts come from ``tables/languages.tsv``; programming languages form one group, and
so do documents the language identifier left ``unknown``.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from bloomkit.data_tooling.languages import TABLE as LANGUAGE_TABLE
from bloomkit.data_tooling.languages import languages
from bloomkit.data_tooling.lid.codes import TABLE as CODE_TABLE
from bloomkit.data_tooling.lid.codes import is_code

Balance = Literal["language", "script"]
CODE_GROUP = "code"
"""Script group of every programming language (``tables/code_languages.tsv``)."""
SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")


class CorpusError(ValueError):
    """Unusable corpus input; the message names the file (and line)."""


def find_shards(inputs: Iterable[Path | str]) -> list[Path]:
    """Every shard file named in ``inputs`` or found under the folders in it, sorted per input."""
    shards: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and is_shard(p))
            if not found:
                raise CorpusError(f"{item}: no {'/'.join(SHARD_SUFFIXES)} shards in this folder")
            shards.extend(found)
        elif item.is_file():
            if not is_shard(item):
                raise CorpusError(f"{item}: not a corpus shard ({', '.join(SHARD_SUFFIXES)})")
            shards.append(item)
        else:
            raise CorpusError(f"{item}: corpus input not found")
    if not shards:
        raise CorpusError("no corpus inputs given")
    return shards


def is_shard(path: Path) -> bool:
    return path.name.endswith(SHARD_SUFFIXES)


def open_shard(path: Path) -> IO[bytes]:
    """A binary stream of the shard's decompressed bytes."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def shard_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) for every non-empty line of a shard."""
    with open_shard(path) as raw:
        for number, line in enumerate(io.BufferedReader(raw), start=1):  # type: ignore[arg-type]
            if line.strip():
                yield number, line


def parse_record(
    line: bytes, where: str, fields: tuple[str, ...] = ("text", "language")
) -> dict[str, Any]:
    """One corpus record, checked: an object with a non-empty string in each of ``fields``."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorpusError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for key in fields:
        if not isinstance(record.get(key), str) or not record[key]:
            raise CorpusError(f"{where}: missing or empty {key!r} (a non-empty string)")
    return record


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a shard, checked (see :func:`parse_record`)."""
    for number, line in shard_lines(path):
        yield parse_record(line, f"{path}:{number}")


def texts_by_language(shards: Iterable[Path]) -> dict[str, list[str]]:
    """All texts of the shards grouped by language (in reading order)."""
    grouped: dict[str, list[str]] = {}
    for shard in shards:
        for record in read_records(shard):
            grouped.setdefault(record["language"], []).append(record["text"])
    return grouped


def alpha_weights(sizes: dict[str, float], alpha: float) -> dict[str, float]:
    """Sampling probabilities ``p_l ∝ n_l^alpha`` (alpha=1: natural shares, 0: uniform)."""
    sizes = {key: float(n) for key, n in sizes.items() if n > 0}
    if not sizes:
        raise CorpusError("no data to weight: every language/source is empty")
    powered = {key: n**alpha for key, n in sizes.items()}
    total = sum(powered.values())
    return {key: value / total for key, value in sorted(powered.items())}


def script_of(language: str) -> str:
    """The script group of a corpus language: its ISO 15924 script, ``code`` for programming
    languages, and ``unknown`` for the language identifier's ``unknown`` (script unknown too)."""
    known = languages().get(language)
    if known is not None:
        return known.script
    if is_code(language):
        return CODE_GROUP
    from bloomkit.data_tooling.lid.identifier import UNKNOWN  # imports the detectors: not above

    if language == UNKNOWN:
        return UNKNOWN
    raise CorpusError(
        f"language {language!r} has no script: it is in neither {_table(LANGUAGE_TABLE)} nor "
        f"{_table(CODE_TABLE)} (add it there, or train with balance: language)"
    )


def _table(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def script_weights(sizes: dict[str, float], alpha: float) -> dict[str, float]:
    """Two-level probabilities ``p_l = p_s × p_l|s``, both ``∝ bytes^alpha`` (s: script of l).

    Example, alpha 0.5: en 900 + fr 100 bytes (Latn), zhs 250 (Hans): ``p_Latn = √1000 /
    (√1000 + √250) = 2/3``, ``p_en|Latn = 30 / (30 + 10) = 3/4``, so ``p_en = 1/2``,
    ``p_fr = 1/6``, ``p_zhs = 1/3``.
    """
    groups: dict[str, dict[str, float]] = {}
    for lang, n in sizes.items():
        groups.setdefault(script_of(lang), {})[lang] = n
    totals = {script: sum(members.values()) for script, members in groups.items()}
    outer = alpha_weights(totals, alpha)
    probs = {
        lang: outer[script] * p
        for script, members in groups.items()
        if script in outer
        for lang, p in alpha_weights(members, alpha).items()
    }
    return dict(sorted(probs.items()))


def balanced_sample(
    grouped: dict[str, list[str]],
    alpha: float,
    budget_bytes: int | None,
    seed: int,
    *,
    balance: Balance,
) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Texts drawn so that language ``l`` gets ``p_l`` of the byte budget (alpha sampling).

    ``p_l`` comes from :func:`alpha_weights` over languages (``balance="language"``) or from
    :func:`script_weights` (``"script"``). Shares are measured in UTF-8 bytes. A language
    whose quota exceeds its data is repeated (upsampled), whole documents first, then a prefix
    of a shuffled pass. Returns the texts (shuffled) and per-language statistics.
    """
    sizes = {lang: sum(len(t.encode("utf-8")) for t in texts) for lang, texts in grouped.items()}
    total = sum(sizes.values())
    weigh = script_weights if balance == "script" else alpha_weights
    probs = weigh(sizes, alpha)
    budget = total if budget_bytes is None else budget_bytes
    rng = random.Random(seed)
    sample: list[str] = []
    stats: dict[str, dict[str, float]] = {}
    for lang, prob in probs.items():
        quota = prob * budget
        texts = grouped[lang]
        order = list(range(len(texts)))
        rng.shuffle(order)
        taken = 0
        while taken < quota:
            for index in order:
                sample.append(texts[index])
                taken += len(texts[index].encode("utf-8"))
                if taken >= quota:
                    break
        stats[lang] = {
            "bytes": sizes[lang],
            "share": sizes[lang] / total,
            "probability": prob,
            "sampled_bytes": taken,
            "repeat": taken / sizes[lang],
        }
    rng.shuffle(sample)
    return sample, stats
