"""Scoring with a bloomkit checkpoint on megatron-core, in this process or over TP × PP ranks.

Two scorers with one interface (``score``, ``next_token``, ``vocab_size``, ``close``):

- :class:`LocalScorer`: the model at TP1 × PP1 in this process (any saved layout is resharded
  on load).
- :class:`RankPool`: ``TP × PP`` worker processes (``torch.multiprocessing``, gloo on CPU,
  NCCL on GPUs, one GPU per rank) hold the model split as megatron-core splits it for training,
  for checkpoints too big for one device. The caller (lm-eval, in this process) puts each
  request (a whole batch) on a queue; rank 0 broadcasts it to every rank, all ranks run the
  pipeline schedule, and the last pipeline stage's tensor-parallel rank 0 puts the answer on
  the reply queue.

Both compute exactly what :func:`bloomkit.pretraining.step.forward_logits` gives, a batch of
right-padded sequences per forward: fp32 log-softmax over the real vocabulary (padding columns
dropped).
"""

from __future__ import annotations

import atexit
import queue
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

REPLY_POLL_SECONDS = 1.0


def load_model(checkpoint: Path, parallel: Any) -> tuple[torch.nn.Module, int]:
    """This rank's part of the checkpoint's model at ``parallel``; and the real vocabulary size.

    Process groups must exist (``init_parallel``)."""
    from bloomkit.pretraining.checkpoint import load_checkpoint, verify_checkpoint
    from bloomkit.pretraining.model.config import BloomModelConfig
    from bloomkit.pretraining.model.spec import build_model

    meta = verify_checkpoint(checkpoint)
    config = BloomModelConfig(**{k: v for k, v in meta["model"].items() if k != "ffn_size"})
    model = build_model(config, parallel)
    layout = {
        "tensor_parallel": parallel.tensor_parallel,
        "pipeline_parallel": parallel.pipeline_parallel,
        "data_parallel": 1,
    }
    load_checkpoint(checkpoint, model, None, meta, layout)
    model.eval()
    return model, config.vocab_size


def _logits(model: torch.nn.Module, rows: list[list[int]]) -> torch.Tensor | None:
    """``[len(rows), longest, padded vocab]`` logits of ``rows`` right-padded into one batch;
    ``None`` off the last stage.

    Causal attention with ALiBi (no position embeddings) makes a real position's logits
    independent of the padding after it (tested), so each row scores as it would alone."""
    from bloomkit.pretraining.parallel import device
    from bloomkit.pretraining.step import forward_logits

    batch = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = torch.tensor(row)
    return forward_logits(model, batch.to(device()))


def score(
    model: torch.nn.Module, vocab_size: int, requests: list[tuple[list[int], list[int]]]
) -> list[tuple[float, bool]] | None:
    """lm-eval's ``(logprob, is_greedy)`` for each ``(tokens, continuation)`` request, in one
    forward: the log-likelihood of ``continuation`` (the last tokens of ``tokens`` + its next
    token) and whether it is the greedy choice at every position; ``None`` off the last stage.

    The fp32 log-softmax runs over each continuation's positions only, not the whole batch."""
    logits = _logits(model, [tokens for tokens, _ in requests])
    if logits is None:
        return None
    answers = []
    for row, (tokens, continuation) in zip(logits, requests, strict=True):
        end = len(tokens)
        logprobs = F.log_softmax(row[end - len(continuation) : end, :vocab_size].float(), -1)
        target = torch.tensor(continuation, device=logprobs.device)
        greedy = bool((logprobs.argmax(-1) == target).all())
        answers.append((float(logprobs.gather(-1, target[:, None]).sum()), greedy))
    return answers


def next_token(model: torch.nn.Module, vocab_size: int, tokens: list[int]) -> int | None:
    """The greedy next token after ``tokens``."""
    logits = _logits(model, [tokens])
    return None if logits is None else int(logits[0, -1, :vocab_size].argmax())


OPS = {"score": score, "next_token": next_token}


class LocalScorer:
    """The checkpoint at TP1 × PP1 in this process (its own one-rank process group)."""

    def __init__(self, checkpoint: Path) -> None:
        from bloomkit.pretraining import launch
        from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel

        self._stack = ExitStack()
        self._stack.enter_context(launch.single_process_env())
        one = ParallelConfig()
        init_parallel(one)
        self._stack.callback(destroy_parallel, process_group=True)
        try:
            self.model, self.vocab_size = load_model(checkpoint, one)
        except BaseException:
            self.close()
            raise

    def score(self, requests: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """:func:`score`: one forward for the whole batch."""
        return score(self.model, self.vocab_size, requests)

    def next_token(self, tokens: list[int]) -> int:
        return next_token(self.model, self.vocab_size, tokens)

    def close(self) -> None:
        self._stack.close()


def _serve(checkpoint: str, tp: int, pp: int, requests: Any, replies: Any) -> None:
    """One rank of a :class:`RankPool`: load its part, then answer requests until ``None``."""
    from megatron.core import parallel_state as ps

    from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel

    parallel = ParallelConfig(tensor_parallel=tp, pipeline_parallel=pp)
    init_parallel(parallel)
    answers = ps.is_pipeline_last_stage() and ps.get_tensor_model_parallel_rank() == 0
    try:
        model, vocab_size = load_model(Path(checkpoint), parallel)
    except BaseException:
        if answers:
            replies.put(("error", traceback.format_exc()))
        raise
    if answers:
        replies.put(("ok", vocab_size))
    while True:
        box = [requests.get() if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        if box[0] is None:
            break
        op, args = box[0]
        result = OPS[op](model, vocab_size, *args)
        if answers:
            replies.put(("ok", result))
    destroy_parallel(process_group=True)


class RankPool:
    """The checkpoint split over ``tensor_parallel × pipeline_parallel`` worker processes."""

    def __init__(self, checkpoint: Path, tensor_parallel: int, pipeline_parallel: int) -> None:
        from bloomkit.pretraining import launch

        context = mp.get_context("spawn")
        self._requests, self._replies = context.Queue(), context.Queue()
        self._ranks = launch.start(
            _serve, tensor_parallel * pipeline_parallel,
            str(checkpoint), tensor_parallel, pipeline_parallel, self._requests, self._replies,
        )  # fmt: skip
        try:
            self.vocab_size = self._reply()
        except BaseException:
            self._stop()
            raise
        atexit.register(self.close)  # plain `lm_eval` never closes its model

    def _reply(self) -> Any:
        """The next answer; raises (with the rank's traceback) when a rank failed."""
        while True:
            try:
                status, value = self._replies.get(timeout=REPLY_POLL_SECONDS)
            except queue.Empty:
                self._ranks.join(timeout=0)  # raises ProcessRaisedException if a rank died
                if all(not p.is_alive() for p in self._ranks.processes):
                    raise RuntimeError("the scoring ranks exited without an answer") from None
                continue
            if status == "error":
                raise RuntimeError(f"a scoring rank failed:\n{value}")
            return value

    def score(self, requests: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """:func:`score`: the whole batch in one request round trip."""
        self._requests.put(("score", (requests,)))
        return self._reply()

    def next_token(self, tokens: list[int]) -> int:
        self._requests.put(("next_token", (tokens,)))
        return self._reply()

    def _stop(self) -> None:
        for process in self._ranks.processes:
            if process.is_alive():
                process.terminate()
        for process in self._ranks.processes:
            process.join()

    def close(self) -> None:
        """Let every rank leave its loop and exit; terminate any that does not."""
        atexit.unregister(self.close)
        if any(p.is_alive() for p in self._ranks.processes):
            self._requests.put(None)
            for process in self._ranks.processes:
                process.join(timeout=60)
        self._stop()
