"""Typed configs: YAML files and ``--set`` overrides validated into pydantic models.

A bad config fails before any work starts, with the file, the line, the field path and what
was expected::

    configs/demo.yaml:14: pretrain.model.num_layers: expected int > 0, got 'x'

Every stage owns its config model (a pydantic ``BaseModel`` subclassing :class:`Section`);
this module only loads, overrides and validates.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ConfigError(ValueError):
    """A config that cannot be used; ``str()`` lists every problem, one per line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- YAML with lines


def _line_index(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every key path in a composed YAML node tree to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines.update(_line_index(value_node, path))
            lines[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, (*prefix, str(i))))
    return lines


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Read a YAML mapping and the line of every key path in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except UnicodeDecodeError as err:
        raise ConfigError([f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"]) from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: expected a mapping of sections, got {type(data).__name__}"])
    return data, (_line_index(node) if node is not None else {})


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-typed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"--set {text!r}: expected KEY.PATH=VALUE"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, str]:
    """Apply ``--set`` overrides in place; return {dotted key: source} for error messages."""
    sources: dict[str, str] = {}
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = data
        for key in keys[:-1]:
            child = node.get(key) if isinstance(node, dict) else None
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError([f"--set {text}: {key!r} is a value, not a section"])
            node = child
        node[keys[-1]] = value
        sources[".".join(keys)] = f"--set {'.'.join(keys)}"
    return sources


# --------------------------------------------------------------------------- messages


def _describe(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    """A short human description of a field's type and constraints: ``int > 0``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _describe(base, [*metadata, *extra])
    if origin is typing.Literal:
        text = "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    elif origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        text = " or ".join(_describe(a) for a in args)
        if len(args) < len(typing.get_args(annotation)):
            text += " or null"
    elif origin in (list, tuple, set, Sequence):
        (item, *_) = typing.get_args(annotation) or (Any,)
        text = f"list of {_describe(item)}"
    elif origin in (dict, Mapping):
        text = "mapping"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = "section"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    bounds = [
        f"{symbol} {getattr(item, attr)}"
        for item in metadata
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(item, attr, None) is not None
    ]
    return " ".join([text, *bounds]) if bounds else text


def _field_at(model: type[BaseModel], loc: Sequence[int | str]) -> tuple[Any, list[Any]] | None:
    """The (annotation, metadata) of the field at a pydantic error location, if it is one."""
    annotation: Any = model
    metadata: list[Any] = []
    for part in loc:
        while typing.get_origin(annotation) in (typing.Union, types.UnionType):
            candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = candidates[0]
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation, metadata = field.annotation, list(field.metadata)
        elif origin in (list, tuple, Sequence) and isinstance(part, int):
            annotation, metadata = typing.get_args(annotation)[0], []
        elif origin in (dict, Mapping):
            annotation, metadata = typing.get_args(annotation)[1], []
        else:
            return None
    return annotation, metadata


def format_errors(
    err: ValidationError,
    model: type[BaseModel],
    source: str,
    lines: Mapping[tuple[str, ...], int],
    override_sources: Mapping[str, str],
) -> list[str]:
    """Turn pydantic errors into ``file:line: dotted.path: expected …, got …`` lines."""
    problems = []
    for error in err.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        dotted = ".".join(str(p) for p in loc)
        line = None
        for cut in range(len(loc), -1, -1):
            line = lines.get(tuple(str(p) for p in loc[:cut]))
            if line is not None:
                break
        where = override_sources.get(dotted) or (f"{source}:{line}" if line else source)
        kind = error["type"]
        if kind == "extra_forbidden":
            parent = _field_at(model, loc[:-1])
            known: list[str] = []
            if parent and isinstance(parent[0], type) and issubclass(parent[0], BaseModel):
                known = list(parent[0].model_fields)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            problems.append(f"{where}: {dotted}: unknown field{hint}")
            continue
        if kind == "missing":
            problems.append(f"{where}: {dotted}: required field is missing")
            continue
        field = _field_at(model, loc)
        got = error.get("input")
        expected = _describe(*field) if field else error["msg"]
        if kind.startswith("value_error") or kind == "assertion_error":
            expected = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {dotted}: {expected}, got {got!r}")
        else:
            problems.append(f"{where}: {dotted}: expected {expected}, got {got!r}")
    return problems


# --------------------------------------------------------------------------- entry points


def validate(
    model: type[ModelT],
    data: dict[str, Any],
    *,
    source: str = "<config>",
    lines: Mapping[tuple[str, ...], int] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> ModelT:
    """Validate a plain mapping into ``model`` or raise :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            format_errors(err, model, source, lines or {}, override_sources or {})
        ) from None


def load_config(model: type[ModelT], path: Path | str, overrides: Iterable[str] = ()) -> ModelT:
    """Load ``path`` (YAML), apply ``--set`` overrides and validate into ``model``."""
    path = Path(path)
    data, lines = load_yaml(path)
    override_sources = apply_overrides(data, overrides)
    return validate(model, data, source=str(path), lines=lines, override_sources=override_sources)


def to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML, as written into run manifests."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
