"""A checkpoint split over TP or PP worker ranks scores as the one-process model does."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from bloomkit.eval.megatron_scoring import LocalScorer, RankPool

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Le gouvernement a annoncé de nouvelles mesures.",
    "Serikali imetangaza hatua mpya.",
]


@pytest.fixture(scope="module")
def checkpoint(tiny_bloom, tmp_path_factory):
    from bloomkit.pretraining.convert import import_hf
    from bloomkit.pretraining.parallel import ParallelConfig

    return import_hf(str(tiny_bloom), tmp_path_factory.mktemp("ckpt") / "tp1", ParallelConfig())


@pytest.fixture(scope="module")
def requests(tiny_bloom):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bloom)
    token_lists = [tokenizer.encode(text) for text in SENTENCES]
    return [(tokens[:-1], tokens[-3:]) for tokens in token_lists]


@pytest.fixture(scope="module")
def local_answers(checkpoint, requests):
    scorer = LocalScorer(checkpoint)
    try:
        scores = [scorer.score(tokens, continuation) for tokens, continuation in requests]
        nexts = [scorer.next_token(tokens) for tokens, _ in requests]
        return scores, nexts, scorer.vocab_size
    finally:
        scorer.close()


@pytest.mark.parametrize(("tp", "pp"), [(2, 1), (1, 2)])
def test_rank_pool_scores_like_one_process(checkpoint, requests, local_answers, tp, pp):
    scores, nexts, vocab_size = local_answers
    pool = RankPool(checkpoint, tensor_parallel=tp, pipeline_parallel=pp)
    try:
        assert pool.vocab_size == vocab_size
        for (tokens, continuation), (score, greedy) in zip(requests, scores, strict=True):
            theirs, their_greedy = pool.score(tokens, continuation)
            assert theirs == pytest.approx(score, abs=1e-4) and their_greedy == greedy
        assert [pool.next_token(tokens) for tokens, _ in requests] == nexts
    finally:
        pool.close()
    assert all(not p.is_alive() for p in pool._ranks.processes)


def test_a_rank_that_cannot_load_fails_the_pool_with_its_reason(checkpoint, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in checkpoint.iterdir():
        (broken / path.name).symlink_to(path.resolve())
    (broken / "bloomkit.json").unlink()
    meta = json.loads((checkpoint / "bloomkit.json").read_text())
    name = next(n for n in meta["files"] if not n.startswith("."))
    meta["files"][name]["sha256"] = "0" * 64
    (broken / "bloomkit.json").write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match=name):
        RankPool(broken, tensor_parallel=2, pipeline_parallel=1)
