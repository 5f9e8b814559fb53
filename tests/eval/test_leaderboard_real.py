"""The leaderboard from real eval results: two tiny models scored by the eval suite
(``few_results`` and ``few_results_other`` of conftest.py), admitted with ``leaderboard submit``
and built; then a real browser (console, heatmap, resource filter, requests, fonts of all 46
languages), ``leaderboard serve`` as a user starts it, and ``submit`` re-hashing model files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bloomkit.cli import app
from bloomkit.data_tooling.languages import languages
from bloomkit.eval.leaderboard.build import build_site, model_name
from bloomkit.eval.leaderboard.serve import make_server
from bloomkit.eval.leaderboard.submit import SubmitError, submit
from bloomkit.eval.results import EvalResults, load, save

UNSHAPED_SCRIPTS = {"Latn", "Hans", "Hant"}
"""Scripts whose names in NATIVE_NAMES render one glyph per character (no conjuncts/joining)."""


@pytest.fixture(scope="module")
def board(few_results, few_results_other, tmp_path_factory) -> tuple[Path, list[EvalResults]]:
    """The two real records, submitted and built: (site folder, records)."""
    root = tmp_path_factory.mktemp("real-board")
    for result in (few_results, few_results_other):
        submit(result, root / "results", licence="MIT")
    build_site(root / "results", root / "site")
    return root / "site", [load(few_results), load(few_results_other)]


@pytest.fixture(scope="module")
def origin(board) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving the built site."""
    server = make_server(board[0], 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sib200_acc(record: EvalResults, lang: str) -> float | None:
    task = record.tasks.get(f"sib200_{lang}")
    return task.metrics["acc"].value if task else None


def test_real_results_in_browser(board, origin, browser, screenshot):
    from playwright.sync_api import expect

    records = board[1]
    table = languages()
    scored = sum(t.benchmark == "sib200" for r in records for t in r.tasks.values())
    assert scored >= 2 * 2  # sib200_en and sib200_hi of each model
    with browser.new_context(viewport={"width": 1400, "height": 800}) as context:
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{origin}/index.html")

        rows = page.locator("#ranking tbody tr[data-model]")
        expect(rows).to_have_count(2)
        names = rows.locator("td.name").all_inner_texts()
        assert sorted(names) == sorted(model_name(r) for r in records)
        for row, name in zip(rows.all(), names, strict=True):
            record = next(r for r in records if model_name(r) == name)
            for lang in ("en", "hi"):
                cell = row.locator(f'td[data-lang="{lang}"]')
                assert cell.inner_text() == f"{sib200_acc(record, lang):.4f}", (name, lang)
        screenshot(page, "real-ranking")

        for level in ("low", "high"):
            page.select_option("#langs", f"resource:{level}")
            shown = page.locator("#ranking thead th[data-key] .native").evaluate_all(
                "spans => spans.map(s => s.parentElement.dataset.key)"
            )
            assert shown == [c for c, lang in table.items() if lang.resource == level], level
        page.select_option("#langs", "all")

        page.click("#view-heatmap")
        cells = page.locator("#heatmap tbody td.cell")
        expect(cells).to_have_count(2 * 46)
        expect(page.locator("#heatmap td.cell.missing")).to_have_count(2 * 46 - scored)
        screenshot(page, "real-heatmap", full_page=True)
        page.select_option("#langs", "resource:mid")
        mid = sum(lang.resource == "mid" for lang in table.values())
        expect(cells).to_have_count(2 * mid)
        page.select_option("#langs", "all")
        page.click("#view-table")

        page.click(f"#ranking a >> text={names[0]}")
        expect(page.locator("#detail")).to_be_visible()
        first = next(r for r in records if model_name(r) == names[0])
        assert first.provenance.reproduce in page.locator("#detail pre.reproduce").inner_text()
        screenshot(page, "real-model-page", full_page=True)
    assert errors == []
    assert {"/index.html", "/style.css", "/app.js"} <= {u.removeprefix(origin) for u in requests}
    outside = [url for url in requests if not url.startswith(f"{origin}/")]
    assert outside == [], "the page must load nothing from outside the site"


def installed_fonts() -> dict[str, tuple[str, int]]:
    """PostScript name -> (font file, index in the collection), from fontconfig."""
    listing = subprocess.run(["fc-list", "-f", "%{postscriptname}|%{file}|%{index}\n"],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    fonts = {}
    for line in listing.splitlines():
        name, file, index = line.rsplit("|", 2)
        fonts.setdefault(name, (file, int(index)))
    return fonts


def test_every_native_name_renders_in_an_installed_font(origin, browser):
    """Chromium's own account of the fonts it drew each language's name with (DevTools
    ``CSS.getPlatformFontsForNode``), checked against the font files' character maps: one
    installed Noto font draws every character, so no fallback box (tofu) is shown."""
    from fontTools.ttLib import TTFont

    fonts, table = installed_fonts(), languages()
    with browser.new_context() as context:
        page = context.new_page()
        page.goto(f"{origin}/index.html")
        cdp = context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        selector = "#ranking thead th[data-key] .native"
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})
        codes = page.locator(selector).evaluate_all("s => s.map(e => e.parentElement.dataset.key)")
        texts = page.locator(selector).all_inner_texts()
        used: dict[str, dict[str, Any]] = {}
        for code, text, node in zip(codes, texts, nodes["nodeIds"], strict=True):
            (font,) = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            used[code] = font | {"text": text}
    assert sorted(used) == sorted(table)
    maps: dict[str, set[int]] = {}
    for code, font in used.items():
        name, text = font["postScriptName"], font["text"]
        assert font["familyName"].startswith("Noto") and not font["isCustomFont"], (code, font)
        if name not in maps:
            file, index = fonts[name]  # KeyError: a font fontconfig does not know
            with TTFont(file, fontNumber=index, lazy=True) as ttf:
                maps[name] = set(ttf.getBestCmap())
        drawn = [c for c in text if not c.isspace() and unicodedata.category(c) != "Cf"]
        lacking = [f"U+{ord(c):04X}" for c in drawn if ord(c) not in maps[name]]
        assert lacking == [], f"{code} {text!r}: {name} has no glyph for {lacking}"
        if table[code].script in UNSHAPED_SCRIPTS:
            assert font["glyphCount"] == len(text), (code, font)
        else:
            assert font["glyphCount"] >= 1, (code, font)
    assert used["zhs"]["familyName"] == "Noto Sans CJK SC"
    assert used["zht"]["familyName"] == "Noto Sans CJK TC"
    assert "Arabic" in used["ar"]["familyName"] and "Devanagari" in used["hi"]["familyName"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_serve_command_serves_the_site_until_interrupted(board):
    site, records = board
    port = free_port()
    command = [str(Path(sys.executable).parent / "bloomkit"), "leaderboard", "serve", str(site),
               "--port", str(port)]  # fmt: skip
    env = os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    # started with SIGINT ignored, as a shell without job control starts `cmd &`: Ctrl-C (the
    # SIGINT below) must stop it all the same
    ignore_sigint = partial(signal.signal, signal.SIGINT, signal.SIG_IGN)
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              preexec_fn=ignore_sigint)  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # the CLI imports torch-heavy modules under load
        while True:
            try:
                index = fetch(f"http://127.0.0.1:{port}/index.html")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "leaderboard serve did not answer in 120 s"
                time.sleep(0.5)
        assert index == (site / "index.html").read_bytes()
        model = records[0].content_sha256[:12]
        page = fetch(f"http://127.0.0.1:{port}/results/{model}.json")  # the model page's file
        assert page == (site / "results" / f"{model}.json").read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            fetch(f"http://127.0.0.1:{port}/results/nothing.json")
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=60)[0].decode()
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "stopped" in output
    with pytest.raises(urllib.error.URLError):
        fetch(f"http://127.0.0.1:{port}/index.html")


def with_model(record: EvalResults, **update: Any) -> EvalResults:
    """``record`` with fields of ``provenance.model`` replaced (``save`` reseals it)."""
    model = record.provenance.model.model_copy(update=update)
    return record.model_copy(
        update={"provenance": record.provenance.model_copy(update={"model": model})}
    )


def test_submit_rehashes_the_model_files(few_results, few_results_other, tiny_bloom, tmp_path):
    """``content_sha256`` can be resealed after an edit; the weights in the model folder can't."""
    model = shutil.copytree(tiny_bloom, tmp_path / "model")
    moved = with_model(load(few_results), path=str(model))
    honest = save(moved, tmp_path / "runs" / "honest.json")
    assert submit(honest, tmp_path / "accepted", licence="MIT").is_file()

    files = dict(moved.provenance.model.model_files)
    files["model.safetensors"] = load(few_results_other).provenance.model.model_files[
        "model.safetensors"]  # fmt: skip
    forged = save(with_model(moved, model_files=files), tmp_path / "runs" / "forged.json")
    board = tmp_path / "board"
    result = CliRunner().invoke(app, ["leaderboard", "submit", str(forged), "--to", str(board),
                                      "--licence", "MIT"])  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "refused" in text, result.output
    assert f"the model folder {model} does not hold the files" in text
    assert "model.safetensors (sha256" in text and "config.json" not in text

    with (model / "config.json").open("a") as handle:
        handle.write("\n")
    with pytest.raises(SubmitError, match=r"config\.json \(sha256 [0-9a-f]{12}…, record says"):
        submit(honest, board, licence="MIT")
    (model / "model.safetensors").unlink()
    with pytest.raises(SubmitError, match=r"model\.safetensors \(missing\)"):
        submit(honest, board, licence="MIT")
    assert not board.exists()
