"""``bloomkit serve`` and ``bloomkit generate``: command functions mounted at the top level."""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from bloomkit.finetuning.budget import BudgetForcing, CompletionsClient

API_KEY_HELP = "(default: $BLOOMKIT_API_KEY)"


def serve_command(
    model_dir: Annotated[Path, typer.Argument(help="Hugging Face model folder (with tokenizer).")],
    host: Annotated[str, typer.Option(help="Interface; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model_name: Annotated[
        str | None, typer.Option(help="Name clients pass as `model` (default: folder name).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help=f"Require `Authorization: Bearer KEY` {API_KEY_HELP}.")
    ] = None,
    max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens allowed.")] = 1024,
    max_prompt_tokens: Annotated[int, typer.Option(help="Longest prompt in tokens.")] = 4096,
    max_n: Annotated[int, typer.Option(help="Most choices per prompt (n).")] = 8,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1 << 20,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 …")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
) -> None:
    """Serve a causal LM over an OpenAI-compatible API (/v1/completions, /v1/chat/completions,
    /v1/models), for self-instruct, distillation and budget forcing."""
    from pydantic import ValidationError

    from bloomkit.finetuning.serve import ServeConfig, serve

    if not (model_dir / "config.json").is_file():
        typer.echo(f"error: {model_dir}: no config.json, not a Hugging Face model folder", err=True)
        raise typer.Exit(2)
    api_key = api_key or os.environ.get("BLOOMKIT_API_KEY")
    try:
        config = ServeConfig(
            host=host,
            port=port,
            model_name=model_name,
            api_key=api_key,
            max_tokens_limit=max_tokens_limit,
            max_prompt_tokens=max_prompt_tokens,
            max_n=max_n,
            max_request_bytes=max_request_bytes,
            device=device,
            dtype=dtype,
        )
    except ValidationError as err:
        for problem in err.errors():
            typer.echo(f"error: --{'-'.join(map(str, problem['loc']))}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        typer.echo(
            f"warning: serving on {host} without --api-key: anyone who can reach this "
            "port can use the model",
            err=True,
        )
    serve(model_dir, config)


def _prompts(prompts: list[str] | None, input_file: Path | None) -> list[str]:
    """Prompts from the arguments, then from a JSONL file's ``prompt`` fields."""
    found = list(prompts or [])
    if input_file is not None:
        for number, line in enumerate(input_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                found.append(str(json.loads(line)["prompt"]))
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{input_file}:{number}: expected a JSON object with a 'prompt' field"
                ) from None
    if not found:
        raise ValueError("no prompt: pass PROMPT arguments or --input FILE.jsonl")
    return found


def _generate_one(
    client: CompletionsClient, prompt: str, config: BudgetForcing, tokenizer, forcing: bool
) -> dict[str, Any]:
    """One output row: budget-forced thinking and answer, or a plain completion."""
    from bloomkit.finetuning.budget import budget_force

    if forcing:
        return asdict(budget_force(client, prompt, config, tokenizer))
    done = client.complete(
        prompt,
        max_tokens=config.max_answer_tokens,
        stop=config.stop,
        temperature=config.temperature,
        seed=config.seed,
    )
    return {"prompt": prompt, "text": done.text, "finish_reason": done.finish_reason}


def generate_command(
    prompts: Annotated[
        list[str] | None, typer.Argument(help="Prompts, already in the model's chat format.")
    ] = None,
    url: Annotated[str, typer.Option(help="OpenAI-compatible API root.")] = "http://127.0.0.1:8000",
    model: Annotated[str | None, typer.Option(help="Model (default: first listed).")] = None,
    api_key: Annotated[str | None, typer.Option(help=f"API key {API_KEY_HELP}.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="JSONL file with a 'prompt' per line.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="JSONL results (default: standard output).")
    ] = None,
    budget_forcing: Annotated[
        bool, typer.Option(help="Bound the thinking (s1 budget forcing).")
    ] = False,
    min_thinking_tokens: Annotated[int, typer.Option(help="Append 'Wait' below this.")] = 0,
    max_thinking_tokens: Annotated[int, typer.Option(help="Force the end here.")] = 1024,
    max_tokens: Annotated[
        int, typer.Option(help="Answer tokens (the whole output without --budget-forcing).")
    ] = 256,
    think_start: Annotated[str, typer.Option(help="Opens the thinking.")] = "<|im_start|>think\n",
    think_end: Annotated[
        str, typer.Option(help="End-of-thinking delimiter.")
    ] = "<|im_start|>answer\n",
    wait: Annotated[str, typer.Option(help="Appended to think longer.")] = "Wait",
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    temperature: Annotated[float, typer.Option(help="0: greedy.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Count tokens with this HF tokenizer, not the usage.")
    ] = None,
) -> None:
    """Generate from any OpenAI-compatible /v1/completions endpoint; with --budget-forcing,
    think between --min- and --max-thinking-tokens before answering. One JSON line per prompt."""
    from bloomkit.finetuning.budget import BudgetForcing, CompletionsClient, EndpointError

    try:
        texts = _prompts(prompts, input_file)
        config = BudgetForcing(
            min_thinking_tokens=min_thinking_tokens,
            max_thinking_tokens=max_thinking_tokens,
            max_answer_tokens=max_tokens,
            think_start=think_start,
            think_end=think_end,
            wait=wait,
            stop=stop or [],
            temperature=temperature,
            seed=seed,
        )
        local = None
        if tokenizer:
            from transformers import AutoTokenizer

            local = AutoTokenizer.from_pretrained(tokenizer)
        client = CompletionsClient(
            url, model=model, api_key=api_key or os.environ.get("BLOOMKIT_API_KEY")
        )
        with output.open("w", encoding="utf-8") if output else nullcontext(sys.stdout) as out:
            for text in texts:
                row = _generate_one(client, text, config, local, budget_forcing)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
    except (ValueError, OSError, EndpointError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"usage: {client.prompt_tokens} prompt + {client.completion_tokens} completion tokens",
        err=True,
    )
