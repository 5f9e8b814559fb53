"""The models ``bloomkit eval run`` scores besides a Hugging Face folder.

- ``endpoint``: an OpenAI-compatible server (``bloomkit serve``, vLLM) through lm-eval's own
  ``local-completions`` model: log-likelihoods come from ``/v1/completions`` with token-id
  prompts, ``echo``, ``max_tokens`` 1 and ``logprobs`` 1; a local tokenizer counts the tokens.
- ``megatron``: a bloomkit checkpoint scored in this process by megatron-core at TP1 × PP1 (any
  saved layout is resharded on load) through :class:`MegatronLM`, registered with lm-eval as
  ``bloomkit-megatron``.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# lm-eval loads its own models only while its registry is empty: fill it before adding ours
import lm_eval.models  # noqa: F401
import torch
import torch.nn.functional as F
from lm_eval import utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
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
    """A bloomkit checkpoint on megatron-core (TP1 × PP1, this process); :meth:`close` frees
    the process group it creates.

    Scoring follows lm-eval's ``hf`` model: one sequence per forward, the last ``max_length``
    tokens kept, log-softmax in fp32; generation is greedy and recomputes the whole sequence
    at each step (no KV cache), which is enough for short answers.
    """

    def __init__(
        self,
        checkpoint: str,
        tokenizer: str,
        max_length: int = DEFAULT_MAX_LENGTH,
        max_gen_toks: int = 256,
        **_: Any,
    ) -> None:
        from transformers import AutoTokenizer

        from bloomkit.pretraining import launch
        from bloomkit.pretraining.checkpoint import load_checkpoint, verify_checkpoint
        from bloomkit.pretraining.model.config import BloomModelConfig
        from bloomkit.pretraining.model.spec import build_model
        from bloomkit.pretraining.parallel import ParallelConfig, destroy_parallel, init_parallel

        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.max_length, self.max_gen_toks = max_length, max_gen_toks
        one = ParallelConfig()
        layout = {"tensor_parallel": 1, "pipeline_parallel": 1, "data_parallel": 1}
        self._stack = ExitStack()
        self._stack.enter_context(launch.single_process_env())
        init_parallel(one)
        self._stack.callback(destroy_parallel, process_group=True)
        try:
            meta = verify_checkpoint(Path(checkpoint))
            fields = {k: v for k, v in meta["model"].items() if k != "ffn_size"}
            model = BloomModelConfig(**fields)
            self.vocab_size = model.vocab_size
            self.model = build_model(model, one)
            load_checkpoint(Path(checkpoint), self.model, None, meta, layout)
        except BaseException:
            self.close()
            raise
        self.model.eval()

    def close(self) -> None:
        self._stack.close()

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def tok_encode(self, string: str, **_: Any) -> list[int]:
        return self.tokenizer.encode(string)

    def _logprobs(self, tokens: list[int]) -> torch.Tensor:
        """``[len(tokens), vocab]`` fp32 log-probabilities of the next token at each position."""
        from bloomkit.pretraining.step import forward_logits

        device = next(self.model.parameters()).device
        logits = forward_logits(self.model, torch.tensor([tokens], device=device))
        return F.log_softmax(logits[0, :, : self.vocab_size].float(), dim=-1).cpu()

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        results = []
        for cache_key, context, continuation in tqdm(requests, disable=disable_tqdm):
            tokens = (context + continuation)[-(self.max_length + 1) :][:-1]
            logprobs = self._logprobs(tokens)[-len(continuation) :]
            target = torch.tensor(continuation)
            greedy = bool((logprobs.argmax(-1) == target).all())
            score = float(logprobs.gather(-1, target[:, None]).sum())
            results.append((score, greedy))
            if cache_key is not None:
                self.cache_hook.add_partial("loglikelihood", cache_key, (score, greedy))
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        results = []
        for (string,) in tqdm([r.args for r in requests], disable=disable_tqdm):
            windows = utils.get_rolling_token_windows(
                token_list=self.tok_encode(string),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            pieces = [(None, *utils.make_disjoint_window(w)) for w in windows]
            score = sum(s for s, _ in self._loglikelihood_tokens(pieces, disable_tqdm=True))
            results.append(score)
            self.cache_hook.add_partial("loglikelihood_rolling", (string,), score)
        return results

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        results = []
        for context, gen_kwargs in tqdm([r.args for r in requests], disable=disable_tqdm):
            until = gen_kwargs.get("until") or [self.tokenizer.decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else until
            tokens, new = self.tok_encode(context), []
            for _ in range(gen_kwargs.get("max_gen_toks", self.max_gen_toks)):
                token = int(self._logprobs((tokens + new)[-self.max_length :])[-1].argmax())
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
