"""The leaderboard site: build rules (ranking, refusals, missing languages) and a real browser.

Records are hand-made through the real schema (:class:`EvalResults`, sealed by ``save``), so
ranking, missing languages and escaping are checked on chosen values (real eval results of
two tiny models: test_leaderboard_real.py); the browser test drives the system's Chromium
headless shell with Playwright against the site served on localhost. Model folders for
``submit`` are a stand-in weights file, a README.md (front matter, card, data card) and
LICENSE-RAIL, as a bloomkit export writes them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.eval.leaderboard.build import LeaderboardError, build_site, collect, to_csv
from bloomkit.eval.leaderboard.serve import make_server
from bloomkit.eval.leaderboard.submit import SubmitError, submit
from bloomkit.eval.results import (
    EvalResults,
    GroupResult,
    Missing,
    ModelInfo,
    Provenance,
    Score,
    TaskResult,
    save,
)

XSS_NAME = '<img src=x onerror="window.__xss=1">"quoted"'
XSS_LICENCE = '<script>window.__xss=2</script> "open" RAIL'
XSS_CARD = 'A model whose card says <script>window.__xss=3</script> and "quotes".'


def weights(model: str) -> bytes:
    """The stand-in weights file of ``model`` (what its record's ``model_files`` hashes)."""
    return f"weights of {model}".encode()


def record(
    model: str,
    acc: dict[str, float],
    bpb: dict[str, float] | None = None,
    root: Path = Path("/models"),
) -> EvalResults:
    """A results record as ``run_eval`` writes it: sib200 accuracy (and FLORES bits per byte)."""
    tasks: dict[str, TaskResult] = {}
    for bench, metric, values in (("sib200", "acc", acc), ("flores_bpb", "bits_per_byte", bpb)):
        for lang, value in (values or {}).items():
            name = f"{bench}_{lang}"
            tasks[name] = TaskResult(
                task=name, benchmark=bench, lang=lang, version="1.0", num_fewshot=0,
                n_samples=20, config_sha256="0" * 64,
                metrics={metric: Score(value=value, stderr=0.01, stderr_source="lm-eval")},
            )  # fmt: skip
    group = GroupResult(
        group="sib200", metrics={"acc": Score(value=float(np.mean(list(acc.values()))))},
        tasks=[t for t in tasks if t.startswith("sib200")], partial=len(acc) < 46,
    )  # fmt: skip
    provenance = Provenance(
        bloomkit_version="0.1.0", lm_eval_version="0.4.13", packages={},
        model=ModelInfo(path=str(root / model), model_files={
            "model.safetensors": hashlib.sha256(weights(model)).hexdigest()},
                        tokenizer_files={"tokenizer.json": "b" * 64}),
        task_configs={t: "c" * 64 for t in tasks}, data_dir=None, data_files={}, split="dev",
        limit=20, num_fewshot=None, seeds={"random": 0}, batch_size=1, device="cpu",
        hardware={}, started="2026-01-01T00:00:00+00:00", seconds=1.0,
        reproduce=f"lm_eval run --model hf --model_args pretrained={root / model}",
    )  # fmt: skip
    missing = (
        [Missing(task="sib200_yo", lang="yo", reason="no data file")] if "yo" not in acc else []
    )
    return EvalResults(suite="bloom46", tasks=tasks, groups={"sib200": group}, missing=missing,
                       provenance=provenance)  # fmt: skip


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """Three models: strong (en, hi, zhs, ar, yo), mid (all five), weak (en, hi only)."""
    folder = tmp_path / "results"
    five = ("en", "hi", "zhs", "ar", "yo")
    save(record("strong", dict.fromkeys(five, 0.8), {"en": 1.2, "hi": 1.4}),
         folder / "strong" / "results.json")  # fmt: skip
    save(record("mid", dict.fromkeys(five, 0.6), {"en": 0.9, "hi": 1.0}),
         folder / "mid" / "results.json")  # fmt: skip
    save(record(XSS_NAME, {"en": 0.3, "hi": 0.5}), folder / "weak" / "results.json")
    return folder


def model_folder(root: Path, name: str, front: dict[str, str] | None, card: str,
                 *, rail: bool = False, data_card: bool = False) -> Path:  # fmt: skip
    """A model folder's weights, README.md (front matter, title, first paragraph), LICENSE-RAIL."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights(name))
    head = f"---\n{yaml.safe_dump(front)}---\n\n" if front else ""
    data = "## Training data\n\n## Data card\n\n1,388 documents.\n\n### Languages\n\n| en |\n\n"
    body = (
        f"# {name}\n\n{card}\nSecond line.\n\n{data if data_card else ''}## Limitations\n\nSmall.\n"
    )
    (folder / "README.md").write_text(head + body, encoding="utf-8")
    if rail:
        (folder / "LICENSE-RAIL").write_text("bloomkit-RAIL, version 1.0\n\nText.\n")
    return folder


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """strong: a bloomkit export (RAIL, data card); mid: apache-2.0; weak: markup everywhere."""
    root = tmp_path / "models"
    rail = {"license": "other", "license_name": "bloomkit-rail-1.0", "license_link": "LICENSE-RAIL"}
    model_folder(root, "strong", rail, "A BLOOM-architecture model.", rail=True, data_card=True)
    model_folder(root, "mid", {"license": "apache-2.0"}, "A middling model.")
    model_folder(root, XSS_NAME, {"license_name": XSS_LICENCE}, XSS_CARD)
    return root


@pytest.fixture
def submitted_dir(models, tmp_path) -> Path:
    """The three models of ``results_dir``, added with ``submit`` (sidecars beside them)."""
    board, runs = tmp_path / "board", tmp_path / "runs"
    five = ("en", "hi", "zhs", "ar", "yo")
    for name, rec in (
        ("strong", record("strong", dict.fromkeys(five, 0.8), {"en": 1.2, "hi": 1.4}, models)),
        ("mid", record("mid", dict.fromkeys(five, 0.6), {"en": 0.9, "hi": 1.0}, models)),
        ("weak", record(XSS_NAME, {"en": 0.3, "hi": 0.5}, root=models)),
    ):
        submit(save(rec, runs / f"{name}.json"), board)
    return board


def test_submit_records_licence_and_cards(submitted_dir, tmp_path):
    sidecars = {json.loads(p.read_text())["licence"]["name"]: json.loads(p.read_text())
                for p in submitted_dir.glob("*.submission.json")}  # fmt: skip
    assert set(sidecars) == {"bloomkit-rail-1.0", "apache-2.0", XSS_LICENCE}
    strong = sidecars["bloomkit-rail-1.0"]
    assert strong["licence"] == {"name": "bloomkit-rail-1.0", "source": "README.md front matter",
                                 "rail": True}  # fmt: skip
    assert strong["model_card"] == "A BLOOM-architecture model. Second line."
    assert (
        strong["data_card"].startswith("## Data card\n") and "### Languages" in strong["data_card"]
    )
    assert "Limitations" not in strong["data_card"]
    mid = sidecars["apache-2.0"]
    assert not mid["licence"]["rail"] and mid["data_card"] is None
    for path in submitted_dir.glob("*.submission.json"):
        copy = path.with_name(path.name.replace(".submission", ""))
        assert json.loads(copy.read_text())["content_sha256"] == json.loads(path.read_text())[
            "content_sha256"]  # fmt: skip

    data = build_site(submitted_dir, tmp_path / "site")
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["strong"]["licence"]["rail"] and by_name["mid"]["data_card"] is None
    card = tmp_path / "site" / by_name["strong"]["data_card"]
    assert card.read_text().startswith("## Data card")
    swapped = sorted(submitted_dir.glob("*.submission.json"))
    shutil.copy(swapped[0], swapped[1])
    assert "belongs to another record" in collect(submitted_dir).rejected[0][1]


def test_submit_refuses_with_reasons(models, submitted_dir, tmp_path):
    runs, before = tmp_path / "runs", sorted(p.name for p in submitted_dir.iterdir())
    tampered = json.loads((runs / "mid.json").read_text())
    tampered["tasks"]["sib200_en"]["metrics"]["acc"]["value"] = 0.99
    (runs / "tampered.json").write_text(json.dumps(tampered))
    again = record("mid", dict.fromkeys(("en", "hi", "zhs", "ar", "yo"), 0.6),
                   {"en": 0.9, "hi": 1.0}, models)  # fmt: skip
    rerun = save(again.model_copy(update={"provenance": again.provenance.model_copy(
        update={"started": "2026-02-02T00:00:00+00:00"})}), runs / "rerun.json")  # fmt: skip
    model_folder(models, "bare", None, "No front matter.")
    bare = save(record("bare", {"en": 0.5}, root=models), runs / "bare.json")
    blank = record("blank", {"en": 0.5}, root=models)
    blank = blank.model_copy(update={"provenance": blank.provenance.model_copy(
        update={"reproduce": ""})})  # fmt: skip
    cases = {
        runs / "tampered.json": "content hash mismatch",
        runs / "mid.json": "duplicate: already on the leaderboard",
        rerun: "same model files on the same 7 tasks",
        bare: "no licence for the model: " + str(models / "bare"),
        save(blank, runs / "blank.json"): "empty required field(s): provenance.reproduce",
    }
    runner = CliRunner()
    for path, reason in cases.items():
        result = runner.invoke(
            app, ["leaderboard", "submit", str(path), "--to", str(submitted_dir)]
        )
        assert result.exit_code == 1, result.output
        assert "refused" in result.output and reason in " ".join(result.output.split()), path
    assert sorted(p.name for p in submitted_dir.iterdir()) == before
    with pytest.raises(SubmitError, match="disagrees with the model folder"):
        submit(runs / "rerun.json", tmp_path / "other", licence="MIT")
    result = runner.invoke(app, ["leaderboard", "submit", str(bare), "--to", str(submitted_dir),
                                 "--licence", "MIT"])  # fmt: skip
    assert result.exit_code == 0 and "accepted" in result.output
    sidecar = submitted_dir / f"{load_sha(bare)[:12]}.submission.json"
    assert json.loads(sidecar.read_text())["licence"] == {"name": "MIT", "source": "--licence",
                                                           "rail": False}  # fmt: skip


def load_sha(path: Path) -> str:
    return json.loads(path.read_text())["content_sha256"]


def test_models_ranked_by_mean_and_per_metric_direction(results_dir, tmp_path):
    data = build_site(results_dir, tmp_path / "site")
    assert [b["name"] for b in data["benchmarks"]] == ["sib200", "flores_bpb"]
    assert [m["name"] for m in data["models"]] == ["strong", "mid", XSS_NAME]
    bpb = data["benchmarks"][1]
    assert bpb["metric"] == "bits_per_byte" and not bpb["higher_is_better"]
    for model in data["models"]:
        copy = tmp_path / "site" / model["file"]
        assert json.loads(copy.read_text())["content_sha256"] == model["content_sha256"]
    assert {p.name for p in (tmp_path / "site").iterdir()} == {
        "index.html", "data.json", "leaderboard.csv", "style.css", "app.js", "results",
    }  # fmt: skip


def test_missing_languages_are_missing_not_zero(results_dir, tmp_path):
    data = build_site(results_dir, tmp_path / "site")
    weak = data["models"][-1]
    assert len(weak["scores"]["sib200"]) == 46
    assert weak["scores"]["sib200"]["fr"] is None and weak["scores"]["sib200"]["yo"] is None
    assert weak["mean"]["sib200"] == pytest.approx(0.4) and weak["coverage"]["sib200"] == 2
    assert weak["mean"]["flores_bpb"] is None
    gap = {"task": "sib200_yo", "benchmark": "sib200", "lang": "yo", "reason": "no data file"}
    assert gap in weak["missing"]
    lines = to_csv(data).splitlines()
    assert any(line.endswith(",sib200,acc,fr,") for line in lines)


def test_tampered_file_refused_by_name(results_dir, tmp_path):
    tampered = results_dir / "mid" / "results.json"
    data = json.loads(tampered.read_text())
    data["tasks"]["sib200_en"]["metrics"]["acc"]["value"] = 0.99
    tampered.write_text(json.dumps(data))
    (results_dir / "notes.json").write_text("{not json")
    with pytest.raises(LeaderboardError) as err:
        build_site(results_dir, tmp_path / "site")
    message = str(err.value)
    assert f"{tampered}: content hash mismatch" in message
    assert f"{results_dir / 'notes.json'}:1: not JSON" in message
    assert not (tmp_path / "site").exists()

    result = CliRunner().invoke(
        app, ["leaderboard", "build", str(results_dir), "--out", str(tmp_path / "site")]
    )
    assert result.exit_code == 1 and "content hash mismatch" in result.output

    data = build_site(results_dir, tmp_path / "site", skip_invalid=True)
    assert [m["name"] for m in data["models"]] == ["strong", XSS_NAME]
    assert {r["file"] for r in data["rejected"]} == {str(tampered), str(results_dir / "notes.json")}


def test_duplicates_and_foreign_output_folder_refused(results_dir, tmp_path):
    shutil.copy(results_dir / "mid" / "results.json", results_dir / "copy.json")
    assert "duplicate of" in collect(results_dir).rejected[0][1]
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    (results_dir / "copy.json").unlink()
    with pytest.raises(LeaderboardError, match="not a leaderboard site"):
        build_site(results_dir, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


# --------------------------------------------------------------------------- browser


@pytest.fixture
def site_url(submitted_dir, tmp_path) -> Iterator[str]:
    site = tmp_path / "site"
    build_site(submitted_dir, site)
    server = make_server(site, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def test_site_in_real_browser(site_url, tmp_path, browser, screenshot):
    from playwright.sync_api import expect

    with browser.new_context(viewport={"width": 1400, "height": 700}) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(site_url)

        def names() -> list[str]:
            return page.locator("#ranking tbody td.name").all_inner_texts()

        assert names() == ["strong", "mid", XSS_NAME]  # the markup shows as text
        assert page.evaluate("window.__xss") is None
        assert page.locator("#ranking thead th[data-key]").count() == 4 + 46
        weak_fr = page.locator('tr[data-model] >> nth=2 >> td[data-lang="fr"]')
        assert weak_fr.inner_text() == "—" and "missing" in weak_fr.get_attribute("class")

        page.click('th[data-key="name"]')
        assert names() == sorted(["strong", "mid", XSS_NAME])
        page.click('th[data-key="mean"]')
        page.click('th[data-key="mean"]')
        assert names() == [XSS_NAME, "mid", "strong"]  # worst first after the second click

        page.select_option("#langs", "lang:hi")
        assert page.locator("#ranking thead th[data-key='hi']").count() == 1
        assert page.locator("#ranking thead th[data-key]").count() == 4 + 1
        page.select_option("#langs", "family:Niger-Congo")
        assert page.locator("#ranking thead th[data-key]").count() == 4 + 22
        means = page.locator("#ranking tbody td.mean").all_inner_texts()
        assert means == ["0.6000", "0.8000", "—"]  # still ascending; unscored stays last

        page.select_option("#benchmark", "flores_bpb")
        page.select_option("#langs", "all")
        assert names() == ["mid", "strong", XSS_NAME]  # lower bits per byte first, unscored last

        page.select_option("#benchmark", "sib200")
        natives = {
            code: page.locator(f'th[data-key="{code}"] .native').inner_text()
            for code in ("hi", "zhs", "ar")
        }  # fonts: test_leaderboard_real.py
        assert natives == {"hi": "हिन्दी", "zhs": "简体中文", "ar": "العربية"}
        page.evaluate("document.querySelector('.scroll').scrollLeft = 0")
        screenshot(page, "handmade-ranking")

        page.click("#view-heatmap")
        expect(page.locator("#heatmap-view")).to_be_visible()
        expect(page.locator("#table-view")).to_be_hidden()
        cells = page.locator("#heatmap tbody td.cell")
        expect(cells).to_have_count(3 * 46)
        expect(page.locator("#heatmap td.cell.missing")).to_have_count(3 * 46 - (5 + 5 + 2))
        strong_hi = page.locator('#heatmap tr[data-model] >> nth=0 >> td[data-lang="hi"]')
        assert strong_hi.get_attribute("title") == "strong · Hindi: acc 0.8000"
        weak_hi = page.locator('#heatmap tr[data-model] >> nth=2 >> td[data-lang="hi"]')
        assert strong_hi.evaluate("c => getComputedStyle(c).backgroundColor") != weak_hi.evaluate(
            "c => getComputedStyle(c).backgroundColor")  # fmt: skip
        screenshot(page, "handmade-heatmap", full_page=True)
        page.select_option("#langs", "family:Indo-European")
        expect(cells).to_have_count(3 * page.locator("#heatmap thead th").count() - 3)
        with page.expect_download() as shown:
            page.click("#shown-csv")
        lines = Path(shown.value.path()).read_text().splitlines()
        assert lines[0] == "model,model_id,benchmark,metric,lang,value"
        assert len(lines) - 1 == cells.count() and lines[1].startswith("strong,")
        assert any(line.startswith('"<img src=x onerror=""window.__xss=1"">') for line in lines)
        with page.expect_download() as shown:
            page.click("#shown-json")
        shown_json = json.loads(Path(shown.value.path()).read_text())
        assert len(shown_json["rows"]) == cells.count() and "fr" in shown_json["languages"]
        page.select_option("#langs", "all")
        page.click("#view-table")
        expect(page.locator("#table-view")).to_be_visible()

        page.click(f"#ranking a >> text={XSS_NAME}")
        expect(page.locator("#detail .model-card")).to_have_text(f"{XSS_CARD} Second line.")
        expect(page.locator("#detail dd >> nth=0")).to_contain_text(XSS_LICENCE)
        expect(page.locator("#detail .badge.rail")).to_have_count(1)  # "RAIL" in the name
        injected = "[window.__xss, document.querySelectorAll('#detail script').length]"
        assert page.evaluate(injected) == [None, 0]
        expect(page.locator("#detail")).to_contain_text("none recorded")
        page.click("text=← back to the ranking")
        expect(page.locator("#board")).to_be_visible()

        page.click("text=strong")  # the view changes on hashchange: wait for it, not race it
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#board")).to_be_hidden()
        assert "/models/strong" in page.locator("#detail pre.reproduce").inner_text()
        expect(page.locator("#detail")).to_contain_text("plain (no chat template)")
        expect(page.locator("#detail .badge.rail")).to_have_text("RAIL")
        assert page.locator("#detail .model-card").inner_text() == (
            "A BLOOM-architecture model. Second line."
        )
        card = page.locator("#detail a.data-card").get_attribute("href")
        assert page.request.get(urljoin(site_url, card)).text().startswith("## Data card")
        page.click("#detail a[href^='results/']")
        assert json.loads(page.locator("body").inner_text())["suite"] == "bloom46"
        page.go_back()
        page.click("text=← back to the ranking")
        expect(page.locator("#board")).to_be_visible()

        file_page = context.new_page()
        file_page.goto((tmp_path / "site" / "index.html").as_uri())
        assert file_page.locator("#ranking tbody tr").count() == 3
    assert errors == []
