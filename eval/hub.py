"""Hub names for ``bloomkit eval run``: ``--model ORG/NAME`` (``hf``) and ``--tokenizer ORG/NAME``
become the repository's local snapshot (fetched, or the cache's offline), so that what is
scored is a folder whose files are hashed and recorded like any other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from bloomkit.console import log
from bloomkit.eval.runner import EvalConfig, ModelLoadError

HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+")
"""``ORG/NAME``: a Hugging Face hub repository (when no such local folder exists)."""
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
"""What a hub model's snapshot needs for lm-eval's ``hf`` model (weights as safetensors)."""
TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "config.json", "*.txt", "*.model",
                   "vocab*", "*.jinja"]  # fmt: skip
"""What ``AutoTokenizer`` may read (``config.json`` names the class when the tokenizer does not)."""


def hub_folder(name: Path, what: Literal["model", "tokenizer"]) -> Path:
    """The local snapshot of hub repository ``name`` (``ORG/NAME``): the cache's, downloaded
    first when online (only the files ``what`` needs; ``*.bin`` weights when a model has no
    safetensors)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    files = MODEL_FILES if what == "model" else TOKENIZER_FILES
    try:
        folder = Path(snapshot_download(str(name), allow_patterns=files))
        if what == "model" and not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(str(name), allow_patterns=[*files, "*.bin"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise ModelLoadError(
            f"{name}: {what} is neither a local folder nor a hub model that can be fetched "
            f"or found in the cache: {err}"
        ) from None
    return folder


def resolve_hub_names(config: EvalConfig) -> EvalConfig:
    """``config`` with a hub name (``ORG/NAME``, no such local folder) in ``model`` (``hf``) or
    ``tokenizer`` replaced by its snapshot folder, so that files are hashed and recorded."""
    update: dict[str, Path] = {}
    fields: list[Literal["model", "tokenizer"]] = ["model", "tokenizer"]
    for field in fields:
        value = getattr(config, field)
        hub_field = field == "tokenizer" or config.backend == "hf"
        if hub_field and value is not None and not value.exists() \
                and HUB_NAME.fullmatch(str(value)):  # fmt: skip
            update[field] = hub_folder(value, field)
            log.info("%s %s: no such local folder, so the hub snapshot %s", field, value,
                     update[field])  # fmt: skip
    return config.model_copy(update=update) if update else config
