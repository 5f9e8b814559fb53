"""A checkpoint split over TP or PP worker ranks scores as the one-process model does, and a
right-padded batch scores as its requests do one by one."""

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


def one_by_one_and_batched(scorer, requests):
    """Each request scored alone, and all of them in one batch."""
    return [scorer.score([request])[0] for request in requests], scorer.score(requests)


def assert_same_answers(ours, theirs, tolerance: float) -> None:
    assert [greedy for _, greedy in ours] == [greedy for _, greedy in theirs]
    assert [s for s, _ in ours] == pytest.approx([s for s, _ in theirs], abs=tolerance)


@pytest.fixture(scope="module")
def local_answers(checkpoint, requests):
    scorer = LocalScorer(checkpoint)
    try:
        scores, batched = one_by_one_and_batched(scorer, requests)
        nexts = [scorer.next_token(tokens) for tokens, _ in requests]
        return scores, batched, nexts, scorer.vocab_size
    finally:
        scorer.close()


def test_requests_have_different_lengths(requests):
    """Else the batch has no padding and the tests below prove nothing about it."""
    assert len({len(tokens) for tokens, _ in requests}) == len(requests)


def test_a_right_padded_batch_scores_as_one_by_one(local_answers):
    scores, batched, _, _ = local_answers
    assert_same_answers(batched, scores, 1e-5)


@pytest.mark.parametrize(("tp", "pp"), [(2, 1), (1, 2)])
def test_rank_pool_scores_like_one_process(checkpoint, requests, local_answers, tp, pp):
    scores, _, nexts, vocab_size = local_answers
    pool = RankPool(checkpoint, tensor_parallel=tp, pipeline_parallel=pp)
    try:
        assert pool.vocab_size == vocab_size
        theirs, their_batched = one_by_one_and_batched(pool, requests)
        assert_same_answers(theirs, scores, 1e-4)
        assert_same_answers(their_batched, theirs, 1e-5)
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


class EchoScorer:
    """Scores each row by its length and keeps the batches it was sent."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def score(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        self.batches.append([len(tokens) for tokens, _ in rows])
        return [(-float(len(tokens)), True) for tokens, _ in rows]


def test_adapter_batches_longest_first_and_answers_in_request_order():
    from lm_eval.api.model import TemplateLM

    from bloomkit.eval.models import MegatronLM

    lm = object.__new__(MegatronLM)  # no checkpoint: the scorer is a stand-in
    TemplateLM.__init__(lm)
    lm.batch_size, lm.max_length, lm._scorer = 2, 4, EchoScorer()
    cached = []
    lm.cache_hook.add_partial = lambda *args: cached.append(args)
    requests = [(("a", "b"), [1], [2]), (None, [1, 2, 3, 4, 5], [6]), (("c", "d"), [1, 2], [3])]
    answers = lm._loglikelihood_tokens(requests, disable_tqdm=True)
    assert lm._scorer.batches == [[4, 2], [1]]  # 6 tokens cut to the last max_length
    assert answers == [(-1.0, True), (-4.0, True), (-2.0, True)]
    assert sorted(cached) == [("loglikelihood", ("a", "b"), (-1.0, True)),
                              ("loglikelihood", ("c", "d"), (-2.0, True))]  # fmt: skip
