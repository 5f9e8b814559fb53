// bloomkit leaderboard: a sortable models × languages table and a page per model.
// Vanilla JS, no network: the data is inlined in index.html (works from file:// too).
// Everything from the data is inserted with textContent, never as HTML.
"use strict";

const DATA = JSON.parse(document.getElementById("leaderboard-data").textContent);
const LANGS = DATA.languages;
const state = { bench: DATA.benchmarks.length ? DATA.benchmarks[0].name : null,
                filter: "all", key: "mean", dir: null };

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
    const missing = new Map(model.missing.filter((m) => m.lang).map((m) => [m.lang, m.reason]));
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

function renderDetail(model) {
  const p = model.provenance;
  const facts = [
    ["Model path", p.model_path], ["Suite", model.suite ?? "—"],
    ["Results file", el("a", { href: model.file }, model.source)],
    ["content_sha256", el("code", {}, model.content_sha256)],
    ["bloomkit", p.bloomkit_version], ["lm-eval", p.lm_eval_version ?? "—"],
    ["Split / limit / shots", `${p.split} / ${p.limit ?? "all"} / ${p.num_fewshot ?? "task default"}`],
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
