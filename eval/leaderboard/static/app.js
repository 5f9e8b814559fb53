// bloomkit leaderboard: a sortable models × languages table, the same as a heatmap, downloads
// of what is shown, and a page per model.
// Vanilla JS, no network: the data is inlined in index.html (works from file:// too).
// Everything from the data is inserted with textContent, never as HTML.
"use strict";

const DATA = JSON.parse(document.getElementById("leaderboard-data").textContent);
const LANGS = DATA.languages;
const state = { bench: DATA.benchmarks.length ? DATA.benchmarks[0].name : null,
                filter: "all", key: "mean", dir: null, view: "table" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bench() { return DATA.benchmarks.find((b) => b.name === state.bench); }

function fmt(value) { return value === null || value === undefined ? "—" : value.toFixed(4); }

function visibleLangs() {
  const [kind, value] = state.filter.split(":");
  if (kind === "family") return LANGS.filter((l) => l.family === value);
  if (kind === "resource") return LANGS.filter((l) => l.resource === value);
  if (kind === "lang") return LANGS.filter((l) => l.code === value);
  return LANGS;
}

// Mean over the visible languages the model was scored in (missing ones are not zeros).
function meanOf(model, langs) {
  const scores = model.scores[state.bench] || {};
  const vals = langs.map((l) => scores[l.code]).filter((v) => v !== null && v !== undefined);
  return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
}

function coverageOf(model, langs) {
  const scores = model.scores[state.bench] || {};
  return langs.filter((l) => scores[l.code] !== null && scores[l.code] !== undefined).length;
}

function sortValue(model, langs) {
  if (state.key === "name") return model.name;
  if (state.key === "mean") return meanOf(model, langs);
  if (state.key === "coverage") return coverageOf(model, langs);
  const scores = model.scores[state.bench] || {};
  return scores[state.key] ?? null;
}

// Why a language has no score on the shown benchmark (another benchmark's gap is not a reason).
function missingReasons(model) {
  const gaps = model.missing.filter((m) => m.lang && m.benchmark === state.bench);
  return new Map(gaps.map((m) => [m.lang, m.reason]));
}

// Scores sort best first by default (direction of the benchmark's metric), names A→Z.
function defaultDir(key) {
  if (key === "name") return "ascending";
  if (key === "coverage") return "descending";
  return bench() && !bench().higher_is_better ? "ascending" : "descending";
}

function sortedModels(langs) {
  const dir = state.dir || defaultDir(state.key);
  const sign = dir === "ascending" ? 1 : -1;
  return DATA.models.slice().sort((a, b) => {
    const va = sortValue(a, langs), vb = sortValue(b, langs);
    if (va === null && vb === null) return a.name.localeCompare(b.name);
    if (va === null) return 1;
    if (vb === null) return -1;
    const cmp = typeof va === "string" ? va.localeCompare(vb) : va - vb;
    return cmp !== 0 ? sign * cmp : a.name.localeCompare(b.name);
  });
}

function langHeader(lang) {
  return el("th", { "data-key": lang.code, title: `${lang.name} (${lang.family}, ${lang.resource})` },
    el("span", { class: "native", lang: lang.bcp47, dir: "auto" }, lang.native || lang.name),
    el("span", { class: "code" }, `${lang.name} · ${lang.code}`));
}

function renderTable() {
  const langs = visibleLangs();
  const b = bench();
  const head = el("tr", {},
    el("th", { "data-key": "rank" }, "#"),
    el("th", { class: "name", "data-key": "name" }, "Model"),
    el("th", { "data-key": "mean", title: "mean over the shown languages the model was scored in" },
       b ? `Mean ${b.metric}` : "Mean"),
    el("th", { "data-key": "coverage", title: "shown languages with a score" }, "Scored"),
    ...langs.map(langHeader));
  const dir = state.dir || defaultDir(state.key);
  for (const th of head.children) {
    if (th.dataset.key === state.key) th.setAttribute("aria-sort", dir);
    if (th.dataset.key !== "rank") th.addEventListener("click", () => sortBy(th.dataset.key));
  }
  document.querySelector("#ranking thead").replaceChildren(head);

  const rows = sortedModels(langs).map((model, i) => {
    const scores = model.scores[state.bench] || {};
    const missing = missingReasons(model);
    return el("tr", { "data-model": model.id },
      el("td", {}, i + 1),
      el("td", { class: "name" }, el("a", { href: `#model=${encodeURIComponent(model.id)}` }, model.name)),
      el("td", { class: "mean" }, fmt(meanOf(model, langs))),
      el("td", {}, `${coverageOf(model, langs)}/${langs.length}`),
      ...langs.map((l) => {
        const v = scores[l.code];
        if (v === null || v === undefined) {
          return el("td", { class: "missing", "data-lang": l.code,
                            title: missing.get(l.code) || "not scored" }, "—");
        }
        return el("td", { "data-lang": l.code }, fmt(v));
      }));
  });
  document.querySelector("#ranking tbody").replaceChildren(...rows);
  document.getElementById("summary").textContent =
    `${DATA.models.length} model(s) · ${langs.length} language(s) shown`;
  renderHeatmap(langs);
}

// Sequential colour scale (light = worse, dark = better, whatever the metric's direction).
const SCALE = [[255, 255, 217], [199, 233, 180], [65, 182, 196], [34, 94, 168], [8, 29, 88]];

function colour(t) {
  const x = Math.min(Math.max(t, 0), 1) * (SCALE.length - 1);
  const i = Math.min(Math.floor(x), SCALE.length - 2), f = x - i;
  const rgb = SCALE[i].map((c, k) => Math.round(c + f * (SCALE[i + 1][k] - c)));
  return `rgb(${rgb.join(", ")})`;
}

function renderHeatmap(langs) {
  const b = bench();
  const models = sortedModels(langs);
  const values = models.flatMap((m) => langs.map((l) => (m.scores[state.bench] || {})[l.code]))
    .filter((v) => v !== null && v !== undefined);
  const lo = Math.min(...values), hi = Math.max(...values);
  const better = (v) => {
    const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    return b && !b.higher_is_better ? 1 - t : t;
  };
  const head = el("tr", {}, el("th", { class: "name" }, "Model"),
    ...langs.map((l) => el("th", { title: `${l.name} (${l.family}, ${l.resource})` },
      el("span", { lang: l.bcp47 }, l.code))));
  const rows = models.map((model) => {
    const scores = model.scores[state.bench] || {};
    const missing = missingReasons(model);
    return el("tr", { "data-model": model.id },
      el("th", { class: "name" }, el("a", { href: `#model=${encodeURIComponent(model.id)}` }, model.name)),
      ...langs.map((l) => {
        const v = scores[l.code];
        if (v === null || v === undefined) {
          return el("td", { class: "cell missing", "data-lang": l.code,
                            title: `${model.name} · ${l.name}: ${missing.get(l.code) || "not scored"}` });
        }
        const cell = el("td", { class: "cell", "data-lang": l.code,
                                title: `${model.name} · ${l.name}: ${b.metric} ${fmt(v)}` });
        cell.style.backgroundColor = colour(better(v));  // CSSOM, allowed by the CSP
        return cell;
      }));
  });
  document.querySelector("#heatmap thead").replaceChildren(head);
  document.querySelector("#heatmap tbody").replaceChildren(...rows);
  const legend = document.getElementById("legend");
  legend.replaceChildren(values.length
    ? `${b.metric}: ${fmt(b.higher_is_better ? lo : hi)} (worst shown) → ${fmt(b.higher_is_better ? hi : lo)} (best shown); hatched: not scored`
    : "no score in the shown languages");
}

// What is shown (benchmark, languages, order) as the long CSV of leaderboard.csv, or as JSON.
function shownRows() {
  const b = bench(), langs = visibleLangs();
  return sortedModels(langs).flatMap((m) => langs.map((l) => ({
    model: m.name, model_id: m.id, benchmark: b.name, metric: b.metric, lang: l.code,
    value: (m.scores[state.bench] || {})[l.code] ?? null })));
}

function csvCell(value) {
  const text = value === null ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function download(anchor, kind) {
  const rows = shownRows();
  const text = kind === "csv"
    ? [Object.keys(rows[0] || { model: 0 }).join(","),
       ...rows.map((r) => Object.values(r).map(csvCell).join(","))].join("\n") + "\n"
    : JSON.stringify({ benchmark: bench(), languages: visibleLangs().map((l) => l.code), rows }, null, 1);
  if (anchor.href.startsWith("blob:")) URL.revokeObjectURL(anchor.href);
  anchor.href = URL.createObjectURL(new Blob([text], { type: kind === "csv" ? "text/csv" : "application/json" }));
  anchor.download = `leaderboard-${state.bench}-${state.filter.replace(/[^\w-]+/g, "_")}.${kind}`;
}

function setView(view) {
  state.view = view;
  for (const name of ["table", "heatmap"]) {
    document.getElementById(`view-${name}`).setAttribute("aria-pressed", String(name === view));
  }
  document.getElementById("table-view").hidden = view !== "table";
  document.getElementById("heatmap-view").hidden = view !== "heatmap";
}

function sortBy(key) {
  if (state.key === key) {
    const dir = state.dir || defaultDir(key);
    state.dir = dir === "ascending" ? "descending" : "ascending";
  } else {
    state.key = key;
    state.dir = null;
  }
  renderTable();
}

function setupControls() {
  const benchSelect = document.getElementById("benchmark");
  for (const b of DATA.benchmarks) {
    benchSelect.append(el("option", { value: b.name },
      `${b.name} (${b.metric}, ${b.higher_is_better ? "higher" : "lower"} is better)`));
  }
  benchSelect.addEventListener("change", () => {
    state.bench = benchSelect.value; state.key = "mean"; state.dir = null; renderTable();
  });
  const langSelect = document.getElementById("langs");
  langSelect.append(el("option", { value: "all" }, `All ${LANGS.length} languages`));
  const groups = (field, label) => {
    const group = el("optgroup", { label });
    for (const value of [...new Set(LANGS.map((l) => l[field]))]) {
      group.append(el("option", { value: `${field}:${value}` }, value));
    }
    return group;
  };
  langSelect.append(groups("family", "Family"), groups("resource", "Resource level"));
  const single = el("optgroup", { label: "Language" });
  for (const l of LANGS) {
    single.append(el("option", { value: `lang:${l.code}`, lang: l.bcp47 },
      `${l.native || l.name} — ${l.name} (${l.code})`));
  }
  langSelect.append(single);
  langSelect.addEventListener("change", () => { state.filter = langSelect.value; renderTable(); });
  for (const name of ["table", "heatmap"]) {
    document.getElementById(`view-${name}`).addEventListener("click", () => setView(name));
  }
  for (const kind of ["csv", "json"]) {
    const anchor = document.getElementById(`shown-${kind}`);
    anchor.addEventListener("click", () => download(anchor, kind));
  }

  if (DATA.rejected.length) {
    const box = document.getElementById("rejected");
    box.hidden = false;
    box.querySelector("ul").replaceChildren(
      ...DATA.rejected.map((r) => el("li", {}, el("code", {}, r.file), `: ${r.reason}`)));
  }
}

function table(header, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

function licenceFact(licence) {
  if (!licence) return "not recorded (not added with `bloomkit leaderboard submit`)";
  return el("span", {}, licence.name, " ",
    licence.rail ? el("span", { class: "badge rail", title: "Responsible AI Licence: its use-based restrictions apply to every use and derivative" }, "RAIL") : null,
    el("span", { class: "source" }, ` (from ${licence.source})`));
}

function renderDetail(model) {
  const p = model.provenance;
  const facts = [
    ["Licence", licenceFact(model.licence)],
    ["Data card", model.data_card ? el("a", { href: model.data_card, class: "data-card" }, "training data card")
                                  : "none recorded"],
    ["Model path", p.model_path], ["Suite", model.suite ?? "—"],
    ["Results file", el("a", { href: model.file }, model.source)],
    ["content_sha256", el("code", {}, model.content_sha256)],
    ["bloomkit", p.bloomkit_version], ["lm-eval", p.lm_eval_version ?? "—"],
    ["Split / limit / shots", `${p.split} / ${p.limit ?? "all"} / ${p.num_fewshot ?? "task default"}`],
    ["Prompts", p.apply_chat_template ? "through the model's chat template" : "plain (no chat template)"],
    ["Seeds", Object.entries(p.seeds).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["Device", p.device], ["Started", p.started],
  ];
  const files = Object.entries({ ...p.model_files, ...p.tokenizer_files });
  const langName = new Map(LANGS.map((l) => [l.code, l]));
  const taskRows = model.tasks.map((t) => {
    const l = langName.get(t.lang);
    return [t.task, t.benchmark,
      l ? el("span", { lang: l.bcp47, dir: "auto" }, `${l.native} (${t.lang})`) : (t.lang ?? "—"),
      Object.entries(t.metrics).map(([m, s]) =>
        `${m} ${fmt(s.value)}${s.stderr !== null ? ` ± ${s.stderr.toFixed(4)}` : ""}`).join("; "),
      t.n_samples, t.num_fewshot, t.version ?? "—"];
  });
  const groupRows = Object.entries(model.groups).map(([name, g]) =>
    [name, Object.entries(g).filter(([k]) => k !== "partial")
      .map(([k, v]) => `${k} ${fmt(v)}`).join("; "), g.partial ? "yes" : "no"]);
  const detail = document.getElementById("detail");
  detail.replaceChildren(
    el("p", {}, el("a", { href: "#" }, "← back to the ranking")),
    el("h2", { class: "model-name" }, model.name),
    model.model_card ? el("p", { class: "model-card" }, model.model_card) : null,
    el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("h3", {}, "Reproduce"), el("pre", { class: "reproduce" }, p.reproduce),
    el("h3", {}, "Groups (macro mean)"),
    groupRows.length ? table(["group", "metrics", "partial"], groupRows) : el("p", {}, "none"),
    el("h3", {}, "Per-task scores"),
    table(["task", "benchmark", "language", "metrics", "docs", "shots", "version"], taskRows),
    el("h3", {}, "Not scored"),
    model.missing.length
      ? table(["task", "language", "reason"], model.missing.map((m) => [m.task, m.lang ?? "—", m.reason]))
      : el("p", {}, "nothing reported missing"),
    el("h3", {}, "Model and tokenizer files (sha256)"),
    table(["file", "sha256"], files.map(([f, h]) => [f, el("code", {}, h)])));
}

function route() {
  const match = location.hash.match(/^#model=(.+)$/);
  const model = match && DATA.models.find((m) => m.id === decodeURIComponent(match[1]));
  document.getElementById("board").hidden = Boolean(model);
  document.getElementById("detail").hidden = !model;
  if (model) renderDetail(model);
  window.scrollTo(0, 0);
}

setupControls();
renderTable();
window.addEventListener("hashchange", route);
route();
