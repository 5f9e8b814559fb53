"""A prompt template as the tuned model's chat template: the prompts it was trained on."""

from __future__ import annotations

import pytest

from bloomkit.finetuning.formats import Example
from bloomkit.finetuning.templates import PromptTemplate, builtin_templates

CONVERSATIONS = [
    [("user", "Name a colour.")],
    [("system", "Answer in one word."), ("user", "Name a colour.")],
    [("user", "Bonjour"), ("assistant", "Salut !"), ("user", 'Ça va ? "oui" {x} \\n')],
]


@pytest.mark.parametrize("name", sorted(builtin_templates()))
def test_chat_template_renders_the_training_segments(sft_tokenizer, name):
    """With transformers' own ``apply_chat_template``: the generation prompt is the untrained
    prefix training put before a response; a whole conversation is every segment joined, then
    the end-of-sequence token that training appends."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(sft_tokenizer)
    template = builtin_templates()[name]
    tokenizer.chat_template = template.chat_template()
    for conversation in CONVERSATIONS:
        messages = [{"role": role, "content": text} for role, text in conversation]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        segments = template.segments(Example(messages=[*conversation, ("assistant", "")]))
        assert prompt == "".join(text for text, _ in segments[:-1])
        answered = [*conversation, ("assistant", "Bleu.")]
        whole = tokenizer.apply_chat_template(
            [{"role": role, "content": text} for role, text in answered], tokenize=False
        )
        segments = template.segments(Example(messages=answered))
        assert whole == "".join(text for text, _ in segments) + tokenizer.eos_token


def test_chat_template_of_a_config_defined_template(sft_tokenizer):
    from transformers import AutoTokenizer

    template = PromptTemplate(prompt="Q: {instruction}\nA:", turn="\nQ: {instruction}\nA:",
                              system="[{content}]\n", response_suffix=" <end>")  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(sft_tokenizer)
    tokenizer.chat_template = template.chat_template()
    turns = [("system", "s"), ("user", "a"), ("assistant", "b"), ("user", "c")]
    messages = [{"role": role, "content": text} for role, text in turns]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "[s]\nQ: a\nA:b <end>\nQ: c\nA:"
    # a layout may leave a turn out (as format() drops it) or repeat it
    template = PromptTemplate(prompt="{instruction} = {instruction}?\n", system="[system]\n")
    tokenizer.chat_template = template.chat_template()
    rendered = tokenizer.apply_chat_template(messages[:3], tokenize=False)
    segments = template.segments(Example(messages=turns[:3]))
    assert rendered == "".join(text for text, _ in segments) + tokenizer.eos_token
    assert rendered.startswith("[system]\na = a?\nb")
