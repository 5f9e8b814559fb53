"""`bloomkit data catalogue add|list|show`: the versioned source catalogue from the shell.

Every user error (bad licence or language, duplicate id, missing file) exits with status 2
and a message that names the field::

    bloomkit data catalogue add --id wiki-yo --name "Yoruba Wikipedia" --licence CC-BY-SA-4.0 \\
        --provenance https://dumps.wikimedia.org/yowiki/20240101 --language yo \\
        --collected 2024-01-01 --catalogue data/catalogue.yaml
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

from bloomkit.config import ConfigError, format_errors
from bloomkit.console import console, summary_table
from bloomkit.data_tooling.catalogue import Catalogue, Source, add_source, load_catalogue
from bloomkit.rundir import sha256_file

app = typer.Typer(
    help="The source catalogue: id, licence, provenance, languages, data-card fields.",
    no_args_is_help=True,
)
CatalogueOption = Annotated[
    Path, typer.Option("--catalogue", "-c", help="Catalogue file (YAML), created by `add`.")
]


def _fail(problems: list[str]) -> typer.Exit:
    for problem in problems:
        console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _load(path: Path) -> Catalogue:
    try:
        return load_catalogue(path)
    except ConfigError as err:
        raise _fail(err.problems) from None


@app.command("add")
def add_command(
    source_id: Annotated[str, typer.Option("--id", help="Short id: a-z, 0-9, '.', '_', '-'.")],
    name: Annotated[str, typer.Option(help="Human-readable name.")],
    licence: Annotated[str, typer.Option(help="SPDX licence id of the text (CC-BY-4.0, ...).")],
    provenance: Annotated[str, typer.Option(help="Where the data came from: URL or citation.")],
    language: Annotated[
        list[str],
        typer.Option(
            "--language", "-l", help="BLOOM or programming-language code (repeat, or a,b)."
        ),
    ],
    collected: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Collection date, YYYY-MM-DD.")
    ],
    notes: Annotated[str, typer.Option(help="Free-form notes.")] = "",
    attribution: Annotated[str, typer.Option(help="Attribution redistributions carry.")] = "",
    file: Annotated[
        list[str] | None,
        typer.Option(help="A file of the source, relative to the catalogue (hashed; repeat)."),
    ] = None,
    domain: Annotated[str, typer.Option(help="Data card: kind of text (news, web, ...).")] = "",
    personal_data: Annotated[str, typer.Option(help="Data card: personal data and its care.")] = "",
    limitations: Annotated[str, typer.Option(help="Data card: known gaps and biases.")] = "",
    catalogue: CatalogueOption = Path("catalogue.yaml"),
) -> None:
    """Add one source to the catalogue as a new version (refuses a duplicate id)."""
    files = {}
    for relative in file or []:
        path = catalogue.parent / relative
        if not path.is_file():
            raise _fail([f"file: {path} not found (paths are relative to the catalogue)"])
        files[relative] = sha256_file(path)
    data = {
        "id": source_id,
        "name": name,
        "licence": licence,
        "provenance": provenance,
        "languages": [code.strip() for item in language for code in item.split(",")],
        "collected": collected.date(),
        "notes": notes,
        "attribution": attribution,
        "files": files,
        "card": {"domain": domain, "personal_data": personal_data, "limitations": limitations},
    }
    try:
        source = Source.model_validate(data)
    except ValidationError as err:
        raise _fail(format_errors(err, Source, "catalogue add", {}, {})) from None
    try:
        saved = add_source(catalogue, source)
    except ConfigError as err:
        raise _fail(err.problems) from None
    except ValueError as err:
        raise _fail([str(err)]) from None
    console.print(f"added {source.id!r} to {catalogue} (version {saved.version})", markup=False)


@app.command("list")
def list_command(catalogue: CatalogueOption = Path("catalogue.yaml")) -> None:
    """One row per source: id, name, licence, number of languages, collection date."""
    loaded = _load(catalogue)
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "licence": s.licence,
            "#languages": len(s.languages),
            "collected": s.collected.isoformat(),
        }
        for s in loaded.sources
    ]
    summary_table(f"{catalogue} (version {loaded.version})", rows)


@app.command("show")
def show_command(
    source_id: Annotated[str, typer.Argument(metavar="ID", help="Source id.")],
    catalogue: CatalogueOption = Path("catalogue.yaml"),
) -> None:
    """Every field of one source, as YAML."""
    try:
        source = _load(catalogue).source(source_id)
    except KeyError as err:
        raise _fail([f"{catalogue}: {err.args[0]}"]) from None
    dumped = yaml.safe_dump(source.model_dump(), sort_keys=False, allow_unicode=True)
    typer.echo(dumped, nl=False)
