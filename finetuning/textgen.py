"""Text generation for ``bloomkit serve``: sampling from a Hugging Face causal LM, token by token,
with stop strings and text that can be streamed.

One request samples ``n`` continuations of one prompt as a batch of ``n`` identical rows with a
KV cache; each step yields, for every row still running, the text that is now final. Text is
held back while it could still become a stop string or ends in half a UTF-8 character, so the
streamed pieces of a row always join to exactly the non-streamed text.

Worked example (stop ``["\\n\\n"]``): the row decodes to ``"Blue.\\n"`` → ``"Blue."`` is sent and
``"\\n"`` held back; next step ``"Blue.\\n\\nRed"`` → the row finishes with ``"Blue."`` and
``finish_reason="stop"``, nothing more is sent.

With ``Sampling.logprobs`` set, every sampled token (an EOS included, and tokens past a stop
string) gets its log-probability under the raw (temperature 1) distribution and the
``logprobs`` most likely alternatives; with ``echo`` the prompt's tokens come first, the first
of them with no log-probability (nothing precedes it), as in OpenAI's completions API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bloomkit.finetuning.formats import Example
from bloomkit.finetuning.templates import builtin_templates

FALLBACK_CHAT_TEMPLATE = "chat"
"""Built-in template (``finetuning/templates/neutral.yaml``) for tokenizers without a chat one."""


@dataclass(slots=True)
class Sampling:
    """What one request asks for (already validated against the server limits)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    logprobs: int | None = None
    """Report token log-probabilities with this many top alternatives (None: none)."""
    echo: bool = False
    """With ``logprobs``: the prompt's tokens are reported too, before the sampled ones."""


@dataclass(slots=True)
class TokenLogprobs:
    """Per token: its text, its log-probability (None for the first prompt token) and the most
    likely tokens at its position (``{text: logprob}``, None for the first prompt token)."""

    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float | None] = field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = field(default_factory=list)


@dataclass(slots=True)
class Piece:
    """New final text of choice ``index``; its last piece carries ``finish_reason`` (``stop``
    or ``length``), ``completion_tokens``, the tokens sampled for it (an EOS included), and
    ``logprobs`` when they were asked for."""

    index: int
    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0
    logprobs: TokenLogprobs | None = None


@dataclass(slots=True)
class _Row:
    tokens: list[int] = field(default_factory=list)
    sampled: int = 0
    sent: int = 0
    """Characters of the decoded text already handed out."""
    done: bool = False
    logprobs: TokenLogprobs | None = None


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters of ``text`` could still start a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class TextGenerator:
    """A causal LM and its tokenizer, loaded once; :meth:`generate` is not thread-safe."""

    def __init__(self, model_dir: Path, device: str = "auto", dtype: str = "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self.model.to(device).eval()
        self.device = torch.device(device)
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {i for i in [*eos, self.tokenizer.eos_token_id] if i is not None}

    def encode(self, text: str, special_tokens: bool = True) -> list[int]:
        """Token ids of a prompt; an empty prompt becomes the BOS (or EOS) token alone."""
        ids = self.tokenizer.encode(text, add_special_tokens=special_tokens)
        if not ids:
            start = self.tokenizer.bos_token_id
            ids = [start if start is not None else min(self.eos_ids)]
        return ids

    def chat_prompt(self, messages: list[tuple[str, str]]) -> tuple[str, bool]:
        """The prompt text for a conversation and whether it already holds the special tokens:
        the tokenizer's chat template when it has one, else the built-in ``chat`` template
        (Zephyr-style ``<|user|>`` / ``<|assistant|>`` markers) ending in an open assistant turn.
        """
        if self.tokenizer.chat_template:
            turns = [{"role": role, "content": text} for role, text in messages]
            text = self.tokenizer.apply_chat_template(
                turns, tokenize=False, add_generation_prompt=True
            )
            return text, True
        template = builtin_templates()[FALLBACK_CHAT_TEMPLATE]
        segments = template.segments(Example(messages=[*messages, ("assistant", "")]))
        text = "".join(part for part, _ in segments)
        return text.removesuffix(template.response_suffix), False

    def _next_tokens(self, logits: torch.Tensor, sampling: Sampling, rng: torch.Generator):
        if sampling.temperature == 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
        if sampling.top_p < 1:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p
            sorted_probs[outside] = 0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return torch.multinomial(probs, 1, generator=rng).squeeze(-1)

    @torch.inference_mode()
    def generate(self, prompt_ids: list[int], sampling: Sampling) -> Iterator[list[Piece]]:
        """Sample ``sampling.n`` continuations; yields the pieces of each step (see module doc).

        Rows run on after they finish (the batch keeps its shape) but yield nothing more.
        """
        rng = torch.Generator(device=self.device)
        if sampling.seed is None:
            rng.seed()
        else:
            rng.manual_seed(sampling.seed)
        rows = [_Row() for _ in range(sampling.n)]
        ids = torch.tensor([prompt_ids] * sampling.n, device=self.device)
        scored = sampling.logprobs is not None
        keep = 0 if scored and sampling.echo else 1  # 0: the logits of every position
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=keep)
        if scored:
            prompt = TokenLogprobs()
            if sampling.echo:
                prompt.tokens.append(self._token_text(prompt_ids[0]))
                prompt.token_logprobs.append(None)
                prompt.top_logprobs.append(None)
                self._add_logprobs(prompt, out.logits[0, :-1], prompt_ids[1:], sampling.logprobs)
            for row in rows:
                row.logprobs = TokenLogprobs(
                    [*prompt.tokens], [*prompt.token_logprobs], [*prompt.top_logprobs]
                )
        for step in range(sampling.max_tokens):
            tokens = self._next_tokens(out.logits[:, -1], sampling, rng)
            if scored:
                for row, logits, token in zip(rows, out.logits[:, -1], tokens.tolist(),
                                              strict=True):  # fmt: skip
                    if not row.done:
                        self._add_logprobs(row.logprobs, logits[None], [token], sampling.logprobs)
            last = step + 1 == sampling.max_tokens
            pieces = [
                piece
                for index, (row, token) in enumerate(zip(rows, tokens.tolist(), strict=True))
                if not row.done and (piece := self._advance(index, row, token, sampling, last))
            ]
            yield pieces
            if all(row.done for row in rows):
                return
            out = self.model(
                input_ids=tokens[:, None], cache=out.cache, use_cache=True, logits_to_keep=1
            )

    def _token_text(self, token: int) -> str:
        return self.tokenizer.decode([token])

    def _add_logprobs(
        self, into: TokenLogprobs, logits: torch.Tensor, tokens: list[int], top: int
    ) -> None:
        """Append ``tokens`` scored by ``logits`` (``[len(tokens), vocab]``, the logits that
        predict each of them) with their ``top`` most likely alternatives."""
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        chosen = logprobs.gather(-1, torch.tensor(tokens, device=logits.device)[:, None])
        best_values, best_ids = logprobs.topk(top, dim=-1)
        for token, value, values, ids in zip(
            tokens, chosen[:, 0].tolist(), best_values.tolist(), best_ids.tolist(), strict=True
        ):
            alternatives: dict[str, float] = {}
            for other, other_value in zip(ids, values, strict=True):
                # two ids may decode alike; the more likely (seen first) keeps the key
                alternatives.setdefault(self._token_text(other), other_value)
            into.tokens.append(self._token_text(token))
            into.token_logprobs.append(value)
            into.top_logprobs.append(alternatives)

    def _advance(
        self, index: int, row: _Row, token: int, sampling: Sampling, last: bool
    ) -> Piece | None:
        """Add ``token`` to ``row``; the piece of newly final text, if any."""
        row.sampled += 1
        finish = None
        if token in self.eos_ids:
            finish = "stop"
        else:
            row.tokens.append(token)
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        hits = [text.find(stop, max(0, row.sent - len(stop))) for stop in sampling.stop]
        hits = [at for at in hits if at >= 0]
        if hits:
            text, finish = text[: min(hits)], "stop"
        if finish is None and last:
            finish = "length"
        if finish is None:
            # a trailing U+FFFD may be half a UTF-8 character that the next token completes
            end = len(text.rstrip("\ufffd"))
            end -= _held_back(text[:end], sampling.stop)
        else:
            row.done, end = True, len(text)
        if end <= row.sent and finish is None:
            return None
        piece = Piece(index, text[row.sent : end], finish, row.sampled if finish else 0,
                      row.logprobs if finish else None)  # fmt: skip
        row.sent = max(row.sent, end)
        return piece
