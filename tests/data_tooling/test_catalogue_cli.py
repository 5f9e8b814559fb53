"""`bloomkit data catalogue add|list|show`: round trip, versions, errors that name the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bloomkit.data_tooling.catalogue import (
    Catalogue,
    add_source,
    load_catalogue,
    save_catalogue,
)
from bloomkit.data_tooling.catalogue_cli import app

runner = CliRunner()
WIKI_YO = [
    "--id", "wiki-yo",
    "--name", "Yoruba Wikipedia",
    "--licence", "CC-BY-SA-4.0",
    "--provenance", "https://dumps.wikimedia.org/yowiki/20240101",
    "--language", "yo,en",
    "--collected", "2024-01-02",
    "--domain", "encyclopedic",
]  # fmt: skip


def add(catalogue: Path, *args: str):
    return runner.invoke(app, ["add", "--catalogue", str(catalogue), *args])


def replace(args: list[str], option: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(option) + 1] = value
    return out


def test_add_list_show_round_trip_and_versions(tmp_path: Path):
    catalogue = tmp_path / "catalogue.yaml"
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("print('hi')\n", encoding="utf-8")

    result = add(catalogue, *WIKI_YO, "--notes", "2024 dump")
    assert result.exit_code == 0, result.output
    assert load_catalogue(catalogue).version == 1
    code = replace(replace(WIKI_YO, "--id", "code-py"), "--language", "python")
    result = add(catalogue, *code, "--licence", "MIT", "--file", "code/a.py")
    assert result.exit_code == 0, result.output
    loaded = load_catalogue(catalogue)
    assert loaded.version == 2
    assert [s.id for s in loaded.sources] == ["wiki-yo", "code-py"]

    result = runner.invoke(app, ["list", "--catalogue", str(catalogue)])
    assert result.exit_code == 0, result.output
    assert "version 2" in result.output
    for cell in ("wiki-yo", "code-py", "CC-BY-SA-4.0", "MIT", "2024-01-02"):
        assert cell in result.output

    result = runner.invoke(app, ["show", "wiki-yo", "--catalogue", str(catalogue)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["languages"] == ["yo", "en"]
    assert shown["notes"] == "2024 dump"
    assert shown["card"]["domain"] == "encyclopedic"
    assert str(shown["collected"]) == "2024-01-02"
    shown = yaml.safe_load(runner.invoke(app, ["show", "code-py", "-c", str(catalogue)]).stdout)
    assert list(shown["files"]) == ["code/a.py"]


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--licence", "CC-BY-SA", "catalogue add: licence: unknown licence; did you mean"),
        ("--language", "yo,yor", "catalogue add: languages: unknown language code 'yor'"),
        ("--id", "Wiki YO", "catalogue add: id: expected lower-case letters"),
        ("--collected", "2024-13-01", "Invalid value for '--collected'"),
    ],
)
def test_bad_field_exits_2_naming_it(tmp_path: Path, option: str, value: str, field: str):
    catalogue = tmp_path / "catalogue.yaml"
    result = add(catalogue, *replace(WIKI_YO, option, value))
    assert result.exit_code == 2
    assert field in " ".join(result.output.replace("│", " ").split())
    assert not catalogue.exists()


def test_duplicate_id_exits_2_and_keeps_the_file(tmp_path: Path):
    catalogue = tmp_path / "catalogue.yaml"
    assert add(catalogue, *WIKI_YO).exit_code == 0
    before = catalogue.read_bytes()
    result = add(catalogue, *replace(WIKI_YO, "--name", "again"))
    assert result.exit_code == 2
    assert "id: a source 'wiki-yo' is already catalogued" in result.output
    assert catalogue.read_bytes() == before


def test_show_unknown_id_and_missing_catalogue_exit_2(tmp_path: Path):
    catalogue = tmp_path / "catalogue.yaml"
    result = runner.invoke(app, ["list", "--catalogue", str(catalogue)])
    assert result.exit_code == 2
    assert "not found" in result.output
    assert add(catalogue, *WIKI_YO).exit_code == 0
    result = runner.invoke(app, ["show", "nope", "--catalogue", str(catalogue)])
    assert result.exit_code == 2
    assert "no source 'nope'" in result.output


def test_shipped_catalogue_saves_unchanged_and_grows_a_version(tmp_path: Path, repo_root: Path):
    path = tmp_path / "catalogue.yaml"
    shutil.copy(repo_root / "bloomkit" / "sample" / "catalogue.yaml", path)
    original = path.read_text(encoding="utf-8")
    loaded = load_catalogue(path)
    assert save_catalogue(loaded, path) == loaded  # no change, no new version
    assert path.read_text(encoding="utf-8") == original
    source = loaded.source("python-stdlib").model_copy(update={"id": "python-stdlib-2"})
    assert add_source(path, source).version == loaded.version + 1
    with pytest.raises(ValueError, match="changed since it was read"):
        save_catalogue(Catalogue(version=loaded.version, sources=[]), path)
