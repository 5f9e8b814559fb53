"""Prompt templates: how an :class:`~.formats.Example` becomes text, and which text is trained.

A template renders a conversation as *segments* ``(text, trained)``: the prompt parts are not
trained on (``trained=False``), the assistant turns (plus ``response_suffix``) are. Built-in
templates live in ``finetuning/templates/*.yaml`` (one mapping ``name: fields`` per file:
the published Alpaca and Dolly templates, Alpaca's layout in other BLOOM languages, and
language-neutral ``xp3`` and ``chat``); a config may add its own under ``templates:``.

Worked example (``alpaca``, no input)::

    Example(messages=[("user", "Name a colour."), ("assistant", "Blue.")])
    → [("Below is an instruction … ### Instruction:\\nName a colour.\\n\\n### Response:\\n",
        False), ("Blue.", True)]
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path

import yaml

from bloomkit.config import Section
from bloomkit.finetuning.formats import BadRow, Example

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


class PromptTemplate(Section):
    """One prompt layout. Placeholders: ``{instruction}``, ``{input}``, ``{content}``."""

    language: str = "mul"
    """BLOOM language code of the framing text (``mul``: no natural-language framing)."""
    source: str = ""
    """Where the template was published, when it was."""
    prompt: str
    """The first user turn when there is no input/context."""
    prompt_with_input: str | None = None
    """The first user turn with Alpaca's ``input`` / Dolly's ``context`` (default: ``prompt``
    followed by the input)."""
    turn: str | None = None
    """Later user turns of a conversation (default: ``prompt``)."""
    system: str = "{content}\n\n"
    """A system turn (not trained)."""
    response_suffix: str = ""
    """Appended to every assistant turn and trained on (Dolly: ``"\\n\\n### End"``)."""

    def chat_template(self) -> str:
        """This layout as a Jinja chat template (``tokenizer.chat_template``), exported with a
        tuned model so that ``apply_chat_template`` — in transformers, ``bloomkit serve``, vLLM,
        lm-eval's ``--apply_chat_template`` — writes the prompts it was trained on: a
        conversation renders as the joined :meth:`segments` and then ``eos_token`` after a
        final assistant turn, as training tokenized it; the generation prompt is the user
        layout's own (it already ends in the response marker)."""

        def text(value: str) -> str:  # a Jinja string literal
            return json.dumps(value, ensure_ascii=False)

        def around(layout: str, field: str) -> str:  # the message wherever the layout has it
            parts = layout.format(**{field: "\0"}, input="").split("\0")
            return "{{ " + " + message['content'] + ".join(map(text, parts)) + " }}"

        return (
            "{%- set ns = namespace(first=true) -%}{%- for message in messages -%}"
            "{%- if message['role'] == 'system' -%}" + around(self.system, "content")
            + "{%- elif message['role'] == 'user' -%}{%- if ns.first -%}"
            + around(self.prompt, "instruction")
            + "{%- else -%}" + around(self.turn or self.prompt, "instruction")
            + "{%- endif -%}{%- set ns.first = false -%}{%- else -%}"
            + f"{{{{ message['content'] + {text(self.response_suffix)} }}}}"
            + "{%- if loop.last -%}{{ eos_token }}{%- endif -%}{%- endif -%}{%- endfor -%}"
        )  # fmt: skip

    def segments(self, example: Example) -> list[tuple[str, bool]]:
        """The example as ``(text, trained)`` segments (see the module doc)."""
        out: list[tuple[str, bool]] = []
        pending = ""
        first_user = True
        for role, text in example.messages:
            if role == "system":
                pending += self.system.format(content=text)
            elif role == "user":
                if first_user and example.context:
                    layout = self.prompt_with_input or self.prompt + "{input}\n"
                    pending += layout.format(instruction=text, input=example.context)
                else:
                    layout = self.prompt if first_user else (self.turn or self.prompt)
                    pending += layout.format(instruction=text, input="")
                first_user = False
            else:
                if pending:
                    out.append((pending, False))
                    pending = ""
                out.append((text + self.response_suffix, True))
        return out


@cache
def builtin_templates() -> dict[str, PromptTemplate]:
    """Every template in ``finetuning/templates/*.yaml``, by name."""
    found: dict[str, PromptTemplate] = {}
    for file in sorted(TEMPLATE_DIR.glob("*.yaml")):
        for name, fields in yaml.safe_load(file.read_text(encoding="utf-8")).items():
            if name in found:
                raise ValueError(f"{file}: template {name!r} is defined twice")
            found[name] = PromptTemplate.model_validate(fields)
    return found


def resolve_template(name: str, extra: dict[str, PromptTemplate] | None = None) -> PromptTemplate:
    """The template called ``name`` (config-defined first, then built-in); raises
    :class:`~.formats.BadRow` ``unknown_template`` with the nearest names."""
    known = {**builtin_templates(), **(extra or {})}
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else ""
    known_names = ", ".join(sorted(known))
    raise BadRow("unknown_template", f"{name!r} {hint} (known: {known_names})", "template")
