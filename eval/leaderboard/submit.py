"""``bloomkit leaderboard submit``: admit one verified results file into the leaderboard's folder.

A submission is refused, with the reason, when the file is off-schema or edited after the run
(:func:`bloomkit.eval.results.load`), when a provenance field the page shows is empty, when the
evaluated model folder is on this machine and its files no longer hash to the record's
``model_files`` (``content_sha256`` only proves the record is self-consistent: anyone can
reseal an edited record, not change the weights it names), when the folder already holds the
same record (same ``content_sha256``) or a run of the same model files on the same tasks, or
when the model's licence cannot be determined. The licence is read from the evaluated model
folder (``provenance.model.path``): the ``license_name``/``license`` of the README.md front
matter, else a ``LICENSE-RAIL`` file (see :mod:`.cards`).

An admitted record is copied byte for byte to ``RESULTS_DIR/<sha12>.json`` beside its sidecar
``<sha12>.submission.json`` (:class:`~.cards.Submission`: licence, model card summary, data
card). The sidecar is written first and the record last, each in one rename, so the folder
never shows a record without its sidecar.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from bloomkit.eval.leaderboard.build import collect
from bloomkit.eval.leaderboard.cards import (
    RAIL_FILE,
    SIDECAR_SUFFIX,
    Licence,
    Submission,
    card_summary,
    data_card,
    folder_licence,
    is_rail,
)
from bloomkit.eval.results import EvalResults, ResultsError, load
from bloomkit.rundir import atomic_path, atomic_write_text, sha256_file


class SubmitError(ValueError):
    """A results file the leaderboard does not accept; the message says why."""


def _empty_provenance(record: EvalResults) -> list[str]:
    prov = record.provenance
    fields = {
        "provenance.model.path": prov.model.path,
        "provenance.model.model_files": prov.model.model_files,
        "provenance.bloomkit_version": prov.bloomkit_version,
        "provenance.lm_eval_version": prov.lm_eval_version,
        "provenance.reproduce": prov.reproduce,
        "provenance.started": prov.started,
        "provenance.device": prov.device,
        "tasks": record.tasks,
    }
    return [name for name, value in fields.items() if not value]


def _changed_model_files(record: EvalResults) -> list[str]:
    """Files of ``provenance.model.model_files`` whose sha256 in the model folder differs from
    the record's, or that are gone ([] when the folder is not on this machine: nothing to check)."""
    folder = Path(record.provenance.model.path).expanduser()
    if not folder.is_dir():
        return []
    changed = []
    for name, recorded in sorted(record.provenance.model.model_files.items()):
        file = folder / name
        if not file.is_file():
            changed.append(f"{name} (missing)")
        elif (actual := sha256_file(file)) != recorded:
            changed.append(f"{name} (sha256 {actual[:12]}…, record says {recorded[:12]}…)")
    return changed


def _duplicate(record: EvalResults, results_dir: Path) -> str | None:
    for path, other in collect(results_dir).records:
        if other.content_sha256 == record.content_sha256:
            return f"already on the leaderboard as {path} (same content_sha256)"
        if (other.provenance.model.model_files == record.provenance.model.model_files
                and set(other.tasks) == set(record.tasks)):  # fmt: skip
            return (
                f"{path} already scores the same model files on the same {len(record.tasks)} "
                "tasks; remove that entry first to replace it"
            )
    return None


def describe(record: EvalResults, licence: str | None) -> Submission:
    """The sidecar for ``record``: licence and cards read from its model folder."""
    folder = Path(record.provenance.model.path).expanduser()
    readme_path = folder / "README.md"
    readme = readme_path.read_text(encoding="utf-8") if readme_path.is_file() else None
    declared = folder_licence(folder, readme) if folder.is_dir() else None
    if licence is not None:
        if declared is not None and declared.name != licence:
            raise SubmitError(
                f"--licence {licence!r} disagrees with the model folder {folder}, which declares "
                f"{declared.name!r} ({declared.source}); drop --licence or fix the folder"
            )
        declared = declared or Licence(name=licence, source="--licence", rail=is_rail(licence))
    if declared is None:
        where = (f"{folder} has no README.md front matter `license`/`license_name` and no "
                 f"{RAIL_FILE}" if folder.is_dir()
                 else f"the model folder {folder} is not on this machine")  # fmt: skip
        raise SubmitError(f"no licence for the model: {where}; pass --licence SPDX_OR_NAME")
    return Submission(
        content_sha256=record.content_sha256,
        licence=declared,
        model_card=card_summary(readme) if readme else None,
        data_card=data_card(readme) if readme else None,
        submitted=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def submit(result: Path, results_dir: Path, *, licence: str | None = None) -> Path:
    """Validate ``result`` and copy it with its sidecar into ``results_dir``; return the copy.

    Raises :class:`SubmitError` naming the reason when it is refused; nothing is written then.
    """
    try:
        record = load(result)
    except ResultsError as err:
        raise SubmitError(str(err)) from None
    if empty := _empty_provenance(record):
        raise SubmitError(f"{result}: empty required field(s): {', '.join(empty)}")
    if changed := _changed_model_files(record):
        raise SubmitError(
            f"{result}: the model folder {record.provenance.model.path} does not hold the files "
            f"this record was scored on: {'; '.join(changed)}; re-run the eval on this model"
        )
    if results_dir.exists() and (why := _duplicate(record, results_dir)):
        raise SubmitError(f"{result}: duplicate: {why}")
    sidecar = describe(record, licence)
    target = results_dir / f"{record.content_sha256[:12]}.json"
    atomic_write_text(target.with_name(target.stem + SIDECAR_SUFFIX),
                      sidecar.model_dump_json(indent=1) + "\n")  # fmt: skip
    with atomic_path(target) as tmp:
        shutil.copyfile(result, tmp)
    return target
