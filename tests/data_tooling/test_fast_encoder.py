"""tiktoken's encoder gives exactly a byte-level BPE's ids, or is refused with the reason."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
import tiktoken
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.sample import read_tsv
from bloomkit.data_tooling.tokenizer.fast_encoder import (
    BLOOM_REGEX,
    NotEquivalent,
    _ranks,
    batch_encoder,
    byte_of_char,
    tiktoken_equivalent,
)
from bloomkit.data_tooling.tokenizer.train import TokenizerTrainConfig, train_tokenizer
from bloomkit.rundir import RunDir

from .test_tokenizer import write_corpus


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """A 2,000-token BPE of the shipped sample, as ``bloomkit data tokenizer train`` makes it."""
    root = tmp_path_factory.mktemp("fast")
    corpus = write_corpus(root / "corpus", rows_per_lang=40)
    config = TokenizerTrainConfig(inputs=[corpus], vocab_size=2000)
    train_tokenizer(config, RunDir(root / "tok", "test", config))
    return Tokenizer.from_file(str(root / "tok" / "tokenizer" / "tokenizer.json"))


def with_pre_tokenizer(tokenizer: Tokenizer, pre_tokenizer: object) -> Tokenizer:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.pre_tokenizer = pre_tokenizer
    return copy


def split_then_bytes(pattern: str | Regex) -> object:
    """``Split(pattern)`` then the byte-level alphabet, as bloomkit's and BLOOM's tokenizers."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern, behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])  # fmt: skip


def pre_tokenizer_variants(trained: Tokenizer) -> dict[str, Tokenizer]:
    return {
        "bloomkit": trained,
        "bloom": with_pre_tokenizer(trained, split_then_bytes(Regex(BLOOM_REGEX))),
        "gpt2": with_pre_tokenizer(
            trained, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        ),
    }  # fmt: skip


def hf_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=True)]


def test_same_ids_on_every_code_point(trained: Tokenizer) -> None:
    """Every Unicode scalar value, run together and spaced apart, under three regexes: the
    two regex engines (onig in tokenizers, fancy-regex in tiktoken) must class each alike."""
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = []
    for start in range(0, len(points), 5000):
        chunk = [chr(c) for c in points[start : start + 5000]]
        texts += ["".join(chunk), " ".join(chunk) + "  ", "a1 ".join(chunk)]
    for name, tokenizer in pre_tokenizer_variants(trained).items():
        encode, encoder = batch_encoder(tokenizer, "auto")
        assert encoder.startswith("tiktoken"), (name, encoder)
        expected = hf_ids(tokenizer, texts)
        got = encode(texts)
        differing = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
        assert not differing, (name, texts[differing[0]][:50])


def test_same_ids_on_46_languages_and_special_tokens(trained: Tokenizer, shared_data: Path) -> None:
    texts = []
    for lang in language_codes():
        texts += [r["text"] for r in read_tsv(shared_data / "sib200" / lang / "dev.tsv")]
    texts += ["</s>", "a</s>b<s><pad>", "<unk><s>x</s >", "  <s>\n\n</s>  "]
    rng = random.Random(0)  # and one 200,000-letter word
    texts.append("".join(rng.choice(string.ascii_letters + "éß") for _ in range(200_000)))
    for name, tokenizer in pre_tokenizer_variants(trained).items():
        encode, _ = batch_encoder(tokenizer, "auto")
        assert encode(texts) == hf_ids(tokenizer, texts), name
        assert encode(["a</s>b"])[0][1] == trained.token_to_id("</s>")  # a special token


def toy_bpe(merges: list[tuple[str, str]], ids: dict[str, int] | None = None) -> Tokenizer:
    """A byte-level BPE of the 256 bytes plus ``merges`` (their results numbered in order)."""
    vocab = {char: i for i, char in enumerate(sorted(byte_of_char()))}
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab |= ids or {}
    tokenizer = Tokenizer(models.BPE(vocab, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return tokenizer


def test_refuses_a_token_that_merging_cannot_reach() -> None:
    """``abc`` is the merge ``ab + c``, but ``b + c`` merges first: the BPE encodes "abc" as
    [a, bc]; tiktoken, which joins any pair spelling a token, would give [abc]."""
    tokenizer = toy_bpe([("b", "c"), ("a", "b"), ("ab", "c")])
    assert tokenizer.encode("abc").tokens == ["a", "bc"]
    spec_model = {"vocab": tokenizer.get_vocab(), "merges": [["b", "c"], ["a", "b"], ["ab", "c"]]}
    unchecked = tiktoken.Encoding("x", pat_str=r"\S+", mergeable_ranks=_ranks(spec_model),
                                  special_tokens={})  # fmt: skip
    assert unchecked.encode("abc") == [tokenizer.token_to_id("abc")]  # what the check prevents
    with pytest.raises(NotEquivalent, match="token 'abc' encodes alone to \\['a', 'bc'\\]"):
        tiktoken_equivalent(tokenizer)
    encode, encoder = batch_encoder(tokenizer, "auto")
    assert encoder == "tokenizers (token 'abc' encodes alone to ['a', 'bc'], not itself)"
    assert encode(["abc"]) == [tokenizer.encode("abc").ids]


def test_refuses_ids_out_of_merge_order() -> None:
    tokenizer = toy_bpe([("a", "b"), ("c", "d")], ids={"ab": 300, "cd": 299})
    with pytest.raises(NotEquivalent, match="merge 'c' \\+ 'd': ids do not follow merge order"):
        tiktoken_equivalent(tokenizer)


def test_other_pipelines_keep_tokenizers_and_say_why(trained: Tokenizer) -> None:
    normalized = Tokenizer.from_str(trained.to_str())
    normalized.normalizer = normalizers.NFKC()
    strings = with_pre_tokenizer(trained, split_then_bytes(" "))
    prefixed = with_pre_tokenizer(trained, pre_tokenizers.ByteLevel(add_prefix_space=True))
    anchored = with_pre_tokenizer(trained, split_then_bytes(Regex("^ab|.")))  # onig: ^ per line
    texts = ["ﬁne Ⅻ words", "  leading space", "x\nab"]
    for tokenizer, reason in ((normalized, "it has a normalizer"),
                              (strings, "pre-tokenizer .*Split.* is not one tiktoken runs"),
                              (anchored, "pre-tokenizer .*\\^ab.* is not one tiktoken runs"),
                              (prefixed, "pre-tokenizer .*ByteLevel.* is not one tiktoken runs"),
                              ):  # fmt: skip
        with pytest.raises(NotEquivalent, match=reason):
            tiktoken_equivalent(tokenizer)
        encode, encoder = batch_encoder(tokenizer, "auto")
        assert encoder.startswith("tokenizers (") and encode(texts) == hf_ids(tokenizer, texts)
    assert batch_encoder(trained, "tokenizers")[1] == "tokenizers (asked for)"
