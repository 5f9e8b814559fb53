"""The models ``bloomkit eval run`` scores besides a Hugging Face folder.

- ``endpoint``: an OpenAI-compatible server (``bloomkit serve``, vLLM) through lm-eval's own
  ``local-completions`` model: log-likelihoods come from ``/v1/completions`` with token-id
  prompts, ``echo``, ``max_tokens`` 1 and ``logprobs`` 1; a local tokenizer counts the tokens.
- ``megatron``: a bloomkit checkpoint scored by megatron-core through :class:`MegatronLM`,
  registered with lm-eval as ``bloomkit-megatron``: in this process at TP1 × PP1, or over
  ``tensor_parallel × pipeline_parallel`` ranks (any saved layout is resharded on load).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# lm-eval loads its own models only while its registry is empty: fill it before adding ours
import lm_eval.models  # noqa: F401
from lm_eval import utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import Collator
from tqdm import tqdm

DEFAULT_MAX_LENGTH = 2048
"""lm-eval's ``hf`` default for models whose config states no context length (BLOOM's case)."""


def endpoint_args(base_url: str, tokenizer: Path, served_model: str | None) -> dict[str, Any]:
    """``local-completions`` model arguments (the ``--model_args`` of the reproduce command);
    ``base_url`` ends in ``/v1``."""
    args: dict[str, Any] = {
        "base_url": f"{base_url.rstrip('/')}/completions",
        "tokenizer": str(tokenizer),
        "tokenizer_backend": "huggingface",
    }
    if served_model:
        args["model"] = served_model
    return args


def endpoint_lm(args: dict[str, Any], api_key_env: str | None, batch_size: int) -> Any:
    """lm-eval's ``local-completions`` model; the key is read from ``api_key_env`` (never
    written into the arguments or the record)."""
    import lm_eval.api.registry

    extra: dict[str, Any] = {"batch_size": batch_size}
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ValueError(f"api_key_env: the environment variable {api_key_env} is not set")
        extra["header"] = {"Authorization": f"Bearer {key}"}
    return lm_eval.api.registry.get_model("local-completions").create_from_arg_obj(args | extra)


@register_model("bloomkit-megatron")
class MegatronLM(TemplateLM):
    """A bloomkit checkpoint on megatron-core: in this process at TP1 × PP1, or split over
    ``tensor_parallel × pipeline_parallel`` worker processes (:mod:`.megatron_scoring`);
    :meth:`close` frees the process groups and workers.

    Scoring follows lm-eval's ``hf`` model: requests sorted longest first, ``batch_size`` of
    them right-padded into one forward (one queue round trip over ranks), the last
    ``max_length`` tokens kept, log-softmax in fp32, results in the callers' order.
    Generation is greedy and recomputes the whole sequence at each step (no KV cache), which
    is enough for short answers.
    """

    def __init__(
        self,
        checkpoint: str,
        tokenizer: str,
        max_length: int = DEFAULT_MAX_LENGTH,
        max_gen_toks: int = 256,
        tensor_parallel: int = 1,
        pipeline_parallel: int = 1,
        batch_size: int | str = 1,
        **_: Any,
    ) -> None:
        from transformers import AutoTokenizer

        from bloomkit.eval.megatron_scoring import LocalScorer, RankPool

        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.max_length, self.max_gen_toks = max_length, max_gen_toks
        tp, pp = int(tensor_parallel), int(pipeline_parallel)
        if tp < 1 or pp < 1:
            raise ValueError(f"tensor_parallel {tp} and pipeline_parallel {pp} must be ≥ 1")
        if not str(batch_size).isdigit() or int(batch_size) < 1:
            raise ValueError(
                f"batch_size {batch_size!r}: bloomkit-megatron needs a whole number ≥ 1"
            )
        self.batch_size = int(batch_size)
        self._scorer = (
            LocalScorer(Path(checkpoint)) if tp * pp == 1 else RankPool(Path(checkpoint), tp, pp)
        )
        self.vocab_size = self._scorer.vocab_size

    def close(self) -> None:
        self._scorer.close()

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def tok_encode(self, string: str, **_: Any) -> list[int]:
        return self.tokenizer.encode(string)

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        """``(logprob, is_greedy)`` per ``(cache_key, context, continuation)``, scored longest
        first in batches of ``batch_size`` (as lm-eval's ``hf`` model orders them)."""
        order = Collator(requests, sort_fn=lambda r: (-len(r[1] + r[2]), tuple(r[1] + r[2])))
        results = []
        with tqdm(total=len(requests), disable=disable_tqdm) as bar:
            for batch in order.get_batched(n=self.batch_size):
                rows = [
                    ((ctx + cont)[-(self.max_length + 1) :][:-1], cont) for _, ctx, cont in batch
                ]
                for (cache_key, _, _), answer in zip(batch, self._scorer.score(rows), strict=True):
                    results.append(answer)
                    if cache_key is not None:
                        self.cache_hook.add_partial("loglikelihood", cache_key, answer)
                bar.update(len(batch))
        return order.get_original(results)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Each string's windows (lm-eval's rolling windows), all strings' windows batched
        together, summed per string."""
        windows = []
        for (string,) in [r.args for r in requests]:
            rolling = utils.get_rolling_token_windows(
                token_list=self.tok_encode(string),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            windows.append([(None, *utils.make_disjoint_window(w)) for w in rolling])
        scores = iter(
            self._loglikelihood_tokens(
                [piece for pieces in windows for piece in pieces], disable_tqdm=disable_tqdm
            )
        )
        results = []
        for request, pieces in zip(requests, windows, strict=True):
            score = sum(next(scores)[0] for _ in pieces)
            results.append(score)
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, score)
        return results

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        results = []
        for context, gen_kwargs in tqdm([r.args for r in requests], disable=disable_tqdm):
            until = gen_kwargs.get("until") or [self.tokenizer.decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else until
            tokens, new = self.tok_encode(context), []
            for _ in range(gen_kwargs.get("max_gen_toks", self.max_gen_toks)):
                token = self._scorer.next_token((tokens + new)[-self.max_length :])
                if token == self.eot_token_id:
                    break
                new.append(token)
                if any(stop in self.tokenizer.decode(new) for stop in until):
                    break
            text = self.tokenizer.decode(new)
            for stop in until:
                text = text.split(stop)[0]
            results.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return results
