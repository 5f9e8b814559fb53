"""tiktoken's encoder, where it gives exactly the ids of a byte-level BPE ``tokenizers.Tokenizer``.

``bloomkit data tokenize`` spends most of its time in the BPE encoder. tiktoken's (Rust, text in,
ids out: no per-token strings, offsets or alignments) is ~4× faster on one core than
``tokenizers``' ``encode_batch_fast``. The two merge differently: ``tokenizers`` joins the
adjacent pair with the lowest *merge* rank; tiktoken joins the adjacent pair whose
*concatenation* has the lowest rank, and takes a piece that is itself a token whole. They give
the same ids when

1. the ranks are the ids: every merge's result has a larger id than the merges before it (so no
   two merges give one token), and all 256 bytes are tokens;
2. every merge's result, encoded alone by the BPE model, is that one token.

Why 2 suffices: merges inside a span of a word that no merge has crossed happen in the order
they would for the span alone. So if two adjacent tokens x, y of a word being merged spell a
token t, encoding t alone also passes through [x, y], and as it ends at [t], (x, y) is t's
merge. The pairs tiktoken may join are then exactly the merges, in the same order (ties go to
the leftmost pair in both), and a whole piece that is a token is what merging gives anyway.

:func:`tiktoken_equivalent` checks 1 and 2, and that the rest of the pipeline is one tiktoken
runs (no normalizer; a byte-level pre-tokenizer splitting by GPT-2's, bloomkit's or BLOOM's
regex — the gaps between matches, which ``Split`` keeps, matched as well; added tokens matched
the same way; a post-processor that adds nothing), then compares both on a probe of every
Unicode plane (the regex engines' Unicode tables could drift apart with a release).
Whatever fails is raised as :class:`NotEquivalent` with the reason; :func:`batch_encoder` then
keeps ``tokenizers``. tests/data_tooling/test_fast_encoder.py compares them on every code point.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Literal

from bloomkit.data_tooling.tokenizer.train import PRETOKENIZE_REGEX

BatchEncode = Callable[[list[str]], list[list[int]]]

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
"""The regex of ``pre_tokenizers.ByteLevel(use_regex=True)`` (tokenizers' byte_level.rs)."""
BLOOM_REGEX = " ?[^(\\s|[.,!?…。，、।۔،])]+"
"""The ``Split`` regex of BLOOM's own tokenizer (bigscience/bloom): its matches leave gaps."""
SPLIT_REGEXES = (PRETOKENIZE_REGEX, BLOOM_REGEX)
"""``Split`` regexes run by tiktoken: those the tests compare on every code point. The engines
differ elsewhere (``^``/``$`` match at every line in onig, backreferences, empty matches)."""


class NotEquivalent(ValueError):
    """tiktoken could give other ids than this tokenizer (the message says why)."""


@cache
def byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character standing for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]  # fmt: skip
    chars = {b: chr(b) for b in printable}
    for extra, b in enumerate(b for b in range(256) if b not in chars):
        chars[b] = chr(256 + extra)
    return {char: b for b, char in chars.items()}


def _pattern(pre: dict[str, Any] | None) -> str:
    """The regex that splits text into words as ``pre`` does, for tiktoken."""
    steps = pre.get("pretokenizers", []) if pre and pre["type"] == "Sequence" else [pre]
    if len(steps) == 1 and steps[0] and steps[0]["type"] == "ByteLevel":
        if steps[0]["use_regex"] and not steps[0]["add_prefix_space"]:
            return GPT2_REGEX
    elif len(steps) == 2 and steps[0]["type"] == "Split" and steps[1]["type"] == "ByteLevel":
        split, byte_level = steps
        regex = split["pattern"].get("Regex")
        isolated = split["behavior"] == "Isolated" and not split["invert"]
        plain_bytes = not (byte_level["use_regex"] or byte_level["add_prefix_space"])
        if regex in SPLIT_REGEXES and isolated and plain_bytes:
            # Split keeps the text between matches as words: match it too, char by char.
            return f"(?:{regex})|(?:(?!(?:{regex}))(?s:.))+"
    raise NotEquivalent(f"pre-tokenizer {json.dumps(pre)[:200]} is not one tiktoken runs")


def _check_pipeline(spec: dict[str, Any]) -> None:
    model = spec["model"]
    if spec.get("normalizer") is not None:
        raise NotEquivalent("it has a normalizer")
    if spec.get("truncation") or spec.get("padding"):
        raise NotEquivalent("it truncates or pads")
    if model["type"] != "BPE" or model.get("dropout") or model.get("ignore_merges") \
            or model.get("byte_fallback") or model.get("continuing_subword_prefix") \
            or model.get("end_of_word_suffix"):  # fmt: skip
        raise NotEquivalent("its model is not a plain BPE (dropout, prefixes, byte fallback…)")
    post = spec.get("post_processor") or {"type": "ByteLevel"}  # ByteLevel only trims offsets
    plain = post["type"] == "ByteLevel" or (
        post["type"] == "TemplateProcessing"
        and post["single"] == [{"Sequence": {"id": "A", "type_id": 0}}]
    )
    if not plain:
        raise NotEquivalent(f"its post-processor {post['type']} adds tokens")
    added = spec.get("added_tokens", [])
    if any(t["lstrip"] or t["rstrip"] or t["single_word"] for t in added) or \
            len({t["normalized"] for t in added}) > 1:  # fmt: skip
        raise NotEquivalent("its added tokens strip, match single words or mix normalized")
    contents = [t["content"] for t in added]
    if any(a != b and b.startswith(a) for a in contents for b in contents):
        raise NotEquivalent("one added token is a prefix of another")


def _ranks(model: dict[str, Any]) -> dict[bytes, int]:
    """Condition 1 of the module doc; tiktoken's ``mergeable_ranks`` (bytes → id)."""
    vocab: dict[str, int] = model["vocab"]
    alphabet = byte_of_char()

    def as_bytes(token: str) -> bytes:
        try:
            return bytes(alphabet[c] for c in token)
        except KeyError:
            raise NotEquivalent(f"token {token!r} is not byte-level") from None

    missing = [c for c in alphabet if c not in vocab]
    if missing:
        raise NotEquivalent(f"{len(missing)} of the 256 bytes are not tokens")
    ranks = {bytes([alphabet[c]]): vocab[c] for c in alphabet}
    last = -1
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        token_id = vocab[left + right]
        if token_id <= last:
            raise NotEquivalent(f"merge {left!r} + {right!r}: ids do not follow merge order")
        ranks[as_bytes(left + right)] = last = token_id
    if len(set(ranks.values())) != len(ranks):
        raise NotEquivalent("a byte and a merge result share an id")
    return ranks


def _check_self_encoding(tokenizer: Any, model: dict[str, Any]) -> None:
    """Condition 2 of the module doc: each merge result alone encodes to itself."""
    from tokenizers import Tokenizer

    alone = Tokenizer(tokenizer.model)  # the same BPE, no pre-tokenizer: the input is one word
    tokens = ["".join(m.split(" ")) if isinstance(m, str) else "".join(m) for m in model["merges"]]
    for token, encoding in zip(tokens, alone.encode_batch_fast(tokens), strict=True):
        if encoding.ids != [model["vocab"][token]]:
            pieces = [alone.id_to_token(i) for i in encoding.ids]
            raise NotEquivalent(f"token {token!r} encodes alone to {pieces}, not itself")


@cache
def probe_texts() -> list[str]:
    """Short texts over every 13th code point of the planes with characters (0–3, 14) and every
    1021st of the others (unassigned, private use), in varied spacing, with digits, apostrophes
    and the characters around words that regexes treat specially."""
    spans = ((0, 0x40000, 13), (0x40000, 0xE0000, 1021), (0xE0000, 0xF0000, 13),
             (0xF0000, 0x110000, 1021))  # fmt: skip
    points = [c for span in spans for c in range(*span) if not 0xD800 <= c <= 0xDFFF]
    glue = [" ", "  ", "\n", "\t", " \n ", "1", "'s ", ", ", "  x", "\u3000"]
    words = ["".join(map(chr, points[i : i + 5])) for i in range(0, len(points), 5)]
    texts = []
    for start in range(0, len(words), 100):
        chunk = words[start : start + 100]
        texts.append("".join(w + glue[(start + i) % len(glue)] for i, w in enumerate(chunk)))
    return texts


@contextmanager
def _one_thread() -> Iterator[None]:
    """tokenizers on one thread: a process that later forks workers must not start its pool."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


def tiktoken_equivalent(tokenizer: Any) -> Any:
    """A ``tiktoken.Encoding`` that gives exactly ``tokenizer``'s ids, or :class:`NotEquivalent`."""
    import tiktoken

    spec = json.loads(tokenizer.to_str())
    _check_pipeline(spec)
    pattern = _pattern(spec.get("pre_tokenizer"))
    ranks = _ranks(spec["model"])
    with _one_thread():
        _check_self_encoding(tokenizer, spec["model"])
    specials = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    try:
        encoding = tiktoken.Encoding(
            "bloomkit", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials
        )
    except ValueError as err:
        raise NotEquivalent(f"tiktoken refuses it: {err}") from None
    texts = [*probe_texts(), "".join(specials) + " a " + "x".join(specials) + "\n"]
    with _one_thread():
        expected = [e.ids for e in tokenizer.encode_batch_fast(texts)]
    got = _tiktoken_batch(encoding)(texts)
    for text, want, have in zip(texts, expected, got, strict=True):
        if want != have:
            raise NotEquivalent(f"ids differ on probe text {text[:40]!r}…")
    return encoding


def _tiktoken_batch(encoding: Any) -> BatchEncode:
    specials = encoding.special_tokens_set

    def encode(texts: list[str]) -> list[list[int]]:
        return [encoding.encode(t, allowed_special=specials, disallowed_special=()) for t in texts]

    return encode


def batch_encoder(
    tokenizer: Any, encoder: Literal["auto", "tokenizers"]
) -> tuple[BatchEncode, str]:
    """``(encode texts → ids, what encodes)``: tiktoken where it is equivalent and ``encoder`` is
    ``auto``, else ``tokenizers``' ``encode_batch_fast`` (the description says why)."""
    reason = "asked for"
    if encoder == "auto":
        try:
            return _tiktoken_batch(tiktoken_equivalent(tokenizer)), "tiktoken (same ids, checked)"
        except NotEquivalent as err:
            reason = str(err)

    def encode(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=True)]

    return encode, f"tokenizers ({reason})"
