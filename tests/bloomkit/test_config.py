"""Typed configs: a bad value is reported with file, line, field path and what was expected."""

from typing import Literal

import pytest
from pydantic import Field, PositiveInt

from bloomkit.config import ConfigError, Section, load_config


class Model(Section):
    num_layers: PositiveInt = 2
    hidden_size: int = Field(64, ge=8)
    activation: Literal["gelu", "relu"] = "gelu"


class Pretrain(Section):
    lr: float = 3e-4
    model: Model = Model()


class Root(Section):
    pretrain: Pretrain = Pretrain()
    languages: list[str] = []


def write(tmp_path, text):
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def problems(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(Root, path, overrides)
    return info.value.problems


def test_valid_config_with_override(tmp_path):
    path = write(tmp_path, "pretrain:\n  model:\n    num_layers: 4\n")
    config = load_config(Root, path, ["pretrain.lr=1e-4", "languages=[en, fr]"])
    assert config.pretrain.model.num_layers == 4
    assert config.pretrain.lr == pytest.approx(1e-4)
    assert config.languages == ["en", "fr"]


def test_wrong_type_names_file_line_field_and_expectation(tmp_path):
    path = write(tmp_path, "pretrain:\n  lr: 0.1\n  model:\n    num_layers: x\n")
    assert problems(path) == [f"{path}:4: pretrain.model.num_layers: expected int > 0, got 'x'"]


def test_every_problem_is_listed(tmp_path):
    path = write(tmp_path, "pretrain:\n  model:\n    hidden_size: 4\n    activation: swish\n")
    assert problems(path) == [
        f"{path}:3: pretrain.model.hidden_size: expected int >= 8, got 4",
        f"{path}:4: pretrain.model.activation: expected one of 'gelu', 'relu', got 'swish'",
    ]


def test_unknown_key_suggests_the_close_name(tmp_path):
    path = write(tmp_path, "pretrain:\n  model:\n    num_layer: 4\n")
    assert problems(path) == [
        f"{path}:3: pretrain.model.num_layer: unknown field (did you mean 'num_layers'?)"
    ]


def test_bad_override_names_the_override(tmp_path):
    path = write(tmp_path, "{}\n")
    assert problems(path, ["pretrain.model.num_layers=-1"]) == [
        "--set pretrain.model.num_layers: pretrain.model.num_layers: expected int > 0, got -1"
    ]


def test_malformed_override_and_yaml(tmp_path):
    path = write(tmp_path, "pretrain:\n  lr: [1,\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem
    good = write(tmp_path, "{}\n")
    assert problems(good, ["pretrain.lr"]) == ["--set 'pretrain.lr': expected KEY.PATH=VALUE"]


def test_missing_file(tmp_path):
    assert problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: config file not found"]


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- 1\n- 2\n")
    assert problems(path) == [f"{path}:1: expected a mapping of sections, got list"]
