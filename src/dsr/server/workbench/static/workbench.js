// dsr relevance workbench. Talks only to /_dsr/api/... on its own origin.
// Every catalog string is shown through text nodes (el() and textContent), never as HTML.
(function () {
  "use strict";

  const GRADE_NAMES = ["not relevant", "somewhat", "relevant", "highly relevant"];
  const FIELDS = ["k", "term_k", "fusion", "rrf_k", "normalization", "rerank", "rerank_top"];
  const state = {
    info: null,
    columns: [],        // the column configurations the page sends
    result: null,       // the last search: {text, columns: [...]}
    query: null,        // {text, user_id, user, filters} of the last search
    focus: { col: 0, row: 0 },
    explained: {},      // "col:id" -> true while its panel is open
    judgedRows: null,
    judgedSort: { key: "c0:ndcg10", asc: true },
    caseHistory: {},    // case name -> the means of its previous run, per column name
  };

  // -- DOM helpers: text only -------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (/^on/i.test(name)) throw new Error("no inline handlers");
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) append(node, child);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => append(node, c)); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function $(id) { return document.getElementById(id); }
  function fmt(x, digits) {
    if (x === null || x === undefined) return "–";
    if (typeof x !== "number") return String(x);
    return x.toFixed(digits === undefined ? 3 : digits);
  }
  function pct(x) { return x === null || x === undefined ? "–" : Math.round(x * 100) + "%"; }
  function say(text, ok) {
    const m = $("message");
    m.textContent = text || "";
    m.className = "message" + (ok ? " ok" : "");
  }

  // -- the API ----------------------------------------------------------------------------
  async function api(method, path, body) {
    const options = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch("/_dsr/api/" + path, options);
    const type = response.headers.get("content-type") || "";
    const payload = type.includes("application/json") ? await response.json() : await response.text();
    if (!response.ok) {
      const reason = payload && payload.error ? (payload.error.reason || payload.error.type || "") : String(payload);
      throw new Error(response.status + ": " + reason);
    }
    return payload;
  }

  function readJson(id, what) {
    const raw = $(id).value.trim();
    if (!raw) return null;
    try {
      const value = JSON.parse(raw);
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
      return value;
    } catch (e) {
      throw new Error(what + " must be a JSON object (" + e.message + ")");
    }
  }

  function context() {
    const out = {};
    const userId = $("user-id").value.trim();
    if (userId) out.user_id = userId;
    const profile = readJson("profile", "the user profile");
    if (profile) out.user = profile;
    const filters = readJson("filters", "the filters");
    if (filters) out.filters = filters;
    return out;
  }

  function columnPayload() {
    return state.columns.map((c) => {
      const out = { name: c.name, pipeline: c.pipeline };
      for (const f of FIELDS) out[f] = c[f];
      out.weights = { term: Number(c.weights.term), vector: Number(c.weights.vector) };
      return out;
    });
  }

  // -- column editors ---------------------------------------------------------------------
  function preset(pipeline) {
    const config = state.info.pipelines[pipeline];
    return JSON.parse(JSON.stringify(config));
  }

  function renderEditors() {
    const box = $("column-editors");
    clear(box);
    state.columns.forEach((c, n) => box.appendChild(editor(c, n)));
    if (state.columns.length < state.info.max_columns) {
      const add = el("button", { type: "button", class: "plain add-column", id: "add-column", text: "+ add column" });
      add.addEventListener("click", () => {
        state.columns.push(preset("hybrid-linear"));
        renderEditors();
      });
      box.appendChild(add);
    }
  }

  function numberInput(c, field, label, min) {
    const input = el("input", { type: "number", min: String(min), value: c[field], "data-field": field });
    input.addEventListener("change", () => { c[field] = Number(input.value); custom(c); });
    return el("label", {}, label, input);
  }

  function custom(c) {
    if (c.pipeline !== "custom") {
      c.pipeline = "custom";
      if (state.info.pipelines[c.name]) c.name = "custom";
      renderEditors();
    }
  }

  function editor(c, n) {
    const pipeline = el("select", { "data-field": "pipeline", "aria-label": "pipeline" });
    for (const name of [...Object.keys(state.info.pipelines), "custom"]) {
      pipeline.appendChild(el("option", { value: name, selected: name === c.pipeline, text: name }));
    }
    pipeline.addEventListener("change", () => {
      if (pipeline.value !== "custom") state.columns[n] = preset(pipeline.value);
      else custom(c);
      renderEditors();
    });
    const name = el("input", { class: "name", value: c.name, "aria-label": "column name" });
    name.addEventListener("change", () => { c.name = name.value.trim() || c.pipeline; });
    const fusion = el("select", { "data-field": "fusion" },
      ["rrf", "linear"].map((m) => el("option", { value: m, selected: m === c.fusion, text: m })));
    fusion.addEventListener("change", () => { c.fusion = fusion.value; custom(c); });
    const norm = el("select", { "data-field": "normalization" },
      ["min_max", "z_score"].map((m) => el("option", { value: m, selected: m === c.normalization, text: m })));
    norm.addEventListener("change", () => { c.normalization = norm.value; custom(c); });
    const wt = el("input", { type: "number", step: "0.1", min: "0", value: c.weights.term, "data-field": "w-term" });
    wt.addEventListener("change", () => { c.weights.term = Number(wt.value); custom(c); });
    const wv = el("input", { type: "number", step: "0.1", min: "0", value: c.weights.vector, "data-field": "w-vector" });
    wv.addEventListener("change", () => { c.weights.vector = Number(wv.value); custom(c); });
    const rerank = el("input", { type: "checkbox", checked: c.rerank, "data-field": "rerank" });
    rerank.addEventListener("change", () => { c.rerank = rerank.checked; custom(c); });
    const remove = el("button", { type: "button", class: "plain small", title: "remove column", text: "×" });
    remove.disabled = state.columns.length < 2;
    remove.addEventListener("click", () => { state.columns.splice(n, 1); renderEditors(); });
    return el("div", { class: "editor", "data-column": n },
      el("div", { class: "row" }, name, pipeline, remove),
      el("div", { class: "row" },
        el("label", {}, "fusion", fusion), numberInput(c, "rrf_k", "rrf_k", 1), el("label", {}, "norm", norm)),
      el("div", { class: "row" },
        el("label", {}, "w term", wt), el("label", {}, "w vector", wv),
        numberInput(c, "term_k", "term_k", 0), numberInput(c, "k", "k", 0)),
      el("div", { class: "row" },
        el("label", {}, rerank, "ranker"), numberInput(c, "rerank_top", "rerank_top", 0)));
  }

  // -- searching --------------------------------------------------------------------------
  async function search(event) {
    if (event) event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    let query;
    try {
      query = Object.assign({ text }, context());
    } catch (e) {
      say(e.message);
      return;
    }
    say("searching…", true);
    try {
      const result = await api("POST", "search", Object.assign({}, query, {
        size: Number($("size").value), columns: columnPayload(),
      }));
      state.query = query;
      state.result = result;
      state.explained = {};
      state.focus = { col: 0, row: 0 };
      renderColumns();
      say("", true);
      focusHit(0, 0);
    } catch (e) {
      say(e.message);
    }
  }

  function renderColumns() {
    const box = $("columns");
    clear(box);
    state.result.columns.forEach((column, n) => box.appendChild(renderColumn(column, n)));
  }

  function metricsLine(m) {
    return el("div", { class: "metrics" },
      el("span", { class: "metric ndcg", title: "NDCG@10 (dsr eval's metric)" }, "NDCG@10 ", el("b", { text: fmt(m.ndcg10) })),
      el("span", { class: "metric recall", title: "recall@100" }, "recall ", el("b", { text: fmt(m.recall100) })),
      el("span", { class: "metric mrr", title: "MRR@10" }, "MRR ", el("b", { text: fmt(m.mrr10) })),
      el("span", { class: "metric unjudged", title: "share of the top ten nobody has graded" },
        "unjudged ", el("b", { text: pct(m.unjudged10) })));
  }

  function renderColumn(column, n) {
    const header = el("header", {},
      el("div", { class: "title", text: column.name }),
      el("div", { class: "column-metrics" }, metricsLine(column.metrics)),
      el("div", { class: "meta", text: "pool " + column.pool + " · term " + column.term_hits + " · vector " +
        column.vector_hits + " (" + column.vector_source + ") · reranked " + column.reranked + " · " +
        column.took_ms + " ms" }),
      column.warnings.map((w) => el("div", { class: "warning", text: w })));
    const list = el("ol", { class: "hits" });
    if (!column.hits.length) list.appendChild(el("li", { class: "muted hit", text: "no hits" }));
    column.hits.forEach((hit, row) => list.appendChild(renderHit(hit, n, row)));
    return el("section", { class: "column", "data-column": n }, header, list);
  }

  function stageChip(name, label, stage) {
    if (!stage) return el("span", { class: "stage none " + name, title: label + ": did not score it", text: label + " –" });
    const digits = name === "fused" ? 4 : 3;
    return el("span", { class: "stage " + name, title: label + " rank " + stage.rank + ", score " + stage.score },
      label + " #" + stage.rank + " · " + fmt(stage.score, digits));
  }

  function moveMark(move) {
    const other = state.result.columns[move.column].name;
    if (move.rank === null) return el("span", { class: "move up", title: "not in the top of " + other, text: "new vs " + other });
    if (move.delta === 0) return el("span", { class: "move", text: "= " + other });
    const up = move.delta > 0;
    return el("span", { class: "move " + (up ? "up" : "down"), title: "#" + move.rank + " in " + other },
      (up ? "▲" : "▼") + Math.abs(move.delta) + " vs " + other);
  }

  function renderHit(hit, col, row) {
    let picture = null;
    if (hit.image && /^https?:\/\//i.test(hit.image)) {
      picture = el("img", { class: "thumb", alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
      picture.src = hit.image;
    }
    const sub = [hit.brand, hit.price !== null && hit.price !== undefined ? "price " + hit.price : null, "id " + hit.id]
      .filter((x) => x !== null && x !== undefined && x !== "").join(" · ");
    const s = hit.stages;
    const grading = el("div", { class: "grading" },
      [0, 1, 2, 3].map((g) => {
        const b = el("button", { type: "button", class: "grade-btn g" + g + (hit.grade === g ? " on" : ""),
          title: GRADE_NAMES[g], "data-grade": g, text: String(g) });
        b.addEventListener("click", () => { focusHit(col, row); grade(g); });
        return b;
      }),
      el("span", { class: "grade-label", text: gradeLabel(hit.grade) }));
    const explainBtn = el("button", { type: "button", class: "plain small explain-btn", text: "explain" });
    explainBtn.addEventListener("click", () => { focusHit(col, row); toggleExplain(); });
    const item = el("li", { class: picture ? "hit pictured" : "hit", tabindex: "-1", "data-column": col,
      "data-row": row, "data-id": hit.id },
      el("div", { class: "rank", text: hit.rank }),
      picture,
      el("div", { class: "body" },
        el("div", { class: "hit-title", text: hit.title === null || hit.title === undefined ? "(no title)" : hit.title }),
        el("div", { class: "sub", text: sub }),
        el("div", { class: "stages" },
          stageChip("term", "term", s.term), stageChip("vector", "vector", s.vector),
          stageChip("fused", "fused", s.fused), stageChip("rerank", "ranker", s.rerank)),
        el("div", { class: "marks" },
          hit.only_here ? el("span", { class: "only", text: "only here" }) : null,
          hit.moves.map(moveMark)),
        el("div", { class: "row" }, grading, explainBtn)));
    item.addEventListener("click", (e) => { if (e.target === item || !e.target.closest("button")) focusHit(col, row); });
    return item;
  }

  function gradeLabel(g) {
    if (g === null || g === undefined) return "ungraded";
    return GRADE_NAMES[g] !== undefined ? GRADE_NAMES[g] : "grade " + g;
  }

  // -- focus and keys ---------------------------------------------------------------------
  function hitNode(col, row) {
    return document.querySelector('.hit[data-column="' + col + '"][data-row="' + row + '"]');
  }

  function focusHit(col, row) {
    if (!state.result) return;
    const columns = state.result.columns;
    col = Math.max(0, Math.min(columns.length - 1, col));
    const count = columns[col].hits.length;
    if (!count) return;
    row = Math.max(0, Math.min(count - 1, row));
    document.querySelectorAll(".hit.focused").forEach((n) => n.classList.remove("focused"));
    state.focus = { col, row };
    const node = hitNode(col, row);
    if (node) {
      node.classList.add("focused");
      node.focus({ preventScroll: true });
      node.scrollIntoView({ block: "nearest" });
    }
  }

  function onKey(event) {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    if (event.ctrlKey || event.metaKey || event.altKey || !state.result) return;
    const { col, row } = state.focus;
    const key = event.key;
    if (key === "j" || key === "ArrowDown") focusHit(col, row + 1);
    else if (key === "k" || key === "ArrowUp") focusHit(col, row - 1);
    else if (key === "h" || key === "ArrowLeft") focusHit(col - 1, row);
    else if (key === "l" || key === "ArrowRight") focusHit(col + 1, row);
    else if (key >= "0" && key <= "3" && key.length === 1) grade(Number(key));
    else if (key === "x" || key === "Delete" || key === "Backspace") grade(null);
    else if (key === "e" || key === "Enter") toggleExplain();
    else return;
    event.preventDefault();
  }

  // -- grading ----------------------------------------------------------------------------
  async function grade(g) {
    if (!state.result) return;
    const { col, row } = state.focus;
    const hit = state.result.columns[col].hits[row];
    if (!hit) return;
    try {
      const answer = await api("PUT", "judgments", { query: state.result.text, item_id: hit.id, grade: g });
      const now = answer.judgments[0].grade;
      for (const column of state.result.columns) {   // the same item in every column
        for (const h of column.hits) if (h.id === hit.id) h.grade = now;
      }
      const metrics = await api("POST", "metrics", {
        text: state.result.text, rankings: state.result.columns.map((c) => c.ranking),
      });
      state.result.columns.forEach((c, n) => { c.metrics = metrics.metrics[n]; });
      refreshGrades(hit.id, now);
      refreshMetrics();
      showCounts(answer.counts);
      say("graded " + hit.id + (now === null ? ": no grade" : ": " + now), true);
    } catch (e) {
      say(e.message);
    }
  }

  function refreshGrades(id, now) {
    document.querySelectorAll('.hit[data-id="' + CSS.escape(id) + '"]').forEach((node) => {
      node.querySelectorAll(".grade-btn").forEach((b) => {
        b.classList.toggle("on", now !== null && Number(b.getAttribute("data-grade")) === now);
      });
      node.querySelector(".grade-label").textContent = gradeLabel(now);
    });
  }

  function refreshMetrics() {
    state.result.columns.forEach((column, n) => {
      const box = document.querySelector('.column[data-column="' + n + '"] .column-metrics');
      clear(box);
      box.appendChild(metricsLine(column.metrics));
    });
  }

  function showCounts(counts) {
    $("judgment-counts").textContent = counts.judgments + " judgments of " + counts.queries + " queries (" +
      counts.given + " given here, " + counts.loaded + " from the file)";
  }

  // -- explaining -------------------------------------------------------------------------
  async function toggleExplain() {
    if (!state.result) return;
    const { col, row } = state.focus;
    const hit = state.result.columns[col].hits[row];
    const node = hitNode(col, row);
    if (!hit || !node) return;
    const open = node.querySelector(".explain");
    if (open) { open.remove(); return; }
    const panel = el("div", { class: "explain", text: "explaining…" });
    node.appendChild(panel);
    try {
      const answer = await api("POST", "explain", Object.assign({}, state.query, {
        column: state.result.columns[col].config, id: hit.id,   // the column as it was searched
      }));
      clear(panel);
      renderExplanation(panel, answer);
    } catch (e) {
      panel.textContent = e.message;
    }
  }

  function tree(node, depth) {
    if (!node || depth > 12) return null;
    const details = Array.isArray(node.details) ? node.details : [];
    return el("li", {}, fmt(node.value, 4) + " — " + String(node.description || ""),
      details.length ? el("ul", { class: "tree" }, details.map((d) => tree(d, depth + 1))) : null);
  }

  function renderExplanation(panel, answer) {
    const term = answer.term;
    panel.appendChild(el("h3", { text: "term side (the cluster's explanation)" }));
    if (term.explanation) panel.appendChild(el("ul", { class: "tree term-tree" }, tree(term.explanation, 0)));
    else panel.appendChild(el("div", { class: "muted", text: term.note || "no explanation" }));
    if (!term.column_has_term_side) panel.appendChild(el("div", { class: "muted", text: "(this column has no term side)" }));
    const d = answer.dsr;
    panel.appendChild(el("h3", { text: "DSR similarity" }));
    panel.appendChild(el("div", { class: "dsr" }, d.similarity === null ? "–" : fmt(d.similarity, 4),
      d.source ? " (" + d.source + ")" : "", d.note ? " — " + d.note : ""));
    const r = answer.ranker;
    panel.appendChild(el("h3", { text: "ranker" }));
    if (!r.inputs) { panel.appendChild(el("div", { class: "muted", text: r.note })); return; }
    panel.appendChild(el("div", {}, r.ranker + " score " + fmt(r.score, 4) + " (search: " + fmt(r.search_score, 4) +
      (r.reproduced ? ", reproduced" : ", NOT reproduced") + "), rank " + r.rank + " of " + r.candidates +
      (r.bias !== null && r.bias !== undefined ? ", bias " + fmt(r.bias, 4) : "")));
    panel.appendChild(el("div", { class: "muted", text: r.method }));
    const inputs = r.inputs;
    const largest = Math.max(1e-9, ...inputs.map((i) => Math.abs(i.effect || 0)));
    const table = el("table", { class: "ranker-inputs" },
      el("tr", {}, el("th", { text: "input" }), el("th", { text: "value" }), el("th", { text: "effect" }), el("th", {})));
    const rows = inputs.map((i, n) => {
      const bar = el("span", { class: "bar" + ((i.effect || 0) < 0 ? " neg" : "") });
      bar.style.width = Math.round(60 * Math.abs(i.effect || 0) / largest) + "px";
      const tr = el("tr", { title: i.doc || "" },
        el("td", { text: i.name }), el("td", { class: "num", text: typeof i.value === "number" ? fmt(i.value, 3) : String(i.value) }),
        el("td", { class: "num", text: i.effect === null ? "–" : fmt(i.effect, 4) }), el("td", {}, bar));
      if (n >= 8) tr.hidden = true;
      return tr;
    });
    rows.forEach((tr) => table.appendChild(tr));
    panel.appendChild(table);
    if (rows.length > 8) {
      const more = el("button", { type: "button", class: "plain small", text: "all " + rows.length + " inputs" });
      more.addEventListener("click", () => { rows.forEach((tr) => { tr.hidden = false; }); more.remove(); });
      panel.appendChild(more);
    }
  }

  // -- judged queries and cases -----------------------------------------------------------
  function scoreTable(scored, onQuery, sort) {
    const keys = [];
    scored.columns.forEach((c, n) => {
      keys.push({ key: "c" + n + ":ndcg10", label: c.name + " NDCG@10", col: n, metric: "ndcg10" });
      keys.push({ key: "c" + n + ":recall100", label: "recall", col: n, metric: "recall100" });
      keys.push({ key: "c" + n + ":unjudged10", label: "unjudged", col: n, metric: "unjudged10" });
    });
    const value = (row, k) => row.metrics[k.col][k.metric];
    let rows = scored.queries.slice();
    if (sort) {
      const k = keys.find((x) => x.key === sort.key);
      rows.sort((a, b) => {
        if (sort.key === "query") return (a.query < b.query ? -1 : a.query > b.query ? 1 : 0) * (sort.asc ? 1 : -1);
        const va = value(a, k), vb = value(b, k);
        if (va === null && vb === null) return 0;
        if (va === null) return 1;
        if (vb === null) return -1;
        return (va - vb) * (sort.asc ? 1 : -1);
      });
    }
    const head = el("tr", {}, el("th", { "data-key": "query", text: "query" }), el("th", { class: "num", text: "judged" }),
      keys.map((k) => el("th", { class: "num", "data-key": k.key, text: k.label +
        (sort && sort.key === k.key ? (sort.asc ? " ▲" : " ▼") : "") })));
    const table = el("table", {}, head, rows.map((row) => {
      const q = el("td", { class: "query", text: row.query });
      if (onQuery) q.addEventListener("click", () => onQuery(row.query));
      return el("tr", {}, q, el("td", { class: "num", text: row.relevant + "/" + row.judged }),
        keys.map((k) => el("td", { class: "num", text: k.metric === "unjudged10" ? pct(value(row, k)) : fmt(value(row, k)) })));
    }));
    return { table, head };
  }

  function openQuery(text) {
    $("text").value = text;
    search();
    window.scrollTo(0, 0);
  }

  function renderJudged() {
    const box = $("judged");
    clear(box);
    const scored = state.judgedRows;
    const { table, head } = scoreTable(scored, openQuery, state.judgedSort);
    head.querySelectorAll("th[data-key]").forEach((th) => th.addEventListener("click", () => {
      const key = th.getAttribute("data-key");
      state.judgedSort = { key, asc: state.judgedSort.key === key ? !state.judgedSort.asc : true };
      renderJudged();
    }));
    box.appendChild(el("div", { class: "muted", text: scored.queries.length + " judged queries" +
      (scored.truncated ? " (the first " + scored.queries.length + " of " + scored.judged_queries + ")" : "") }));
    box.appendChild(means(scored));
    box.appendChild(table);
  }

  function means(scored, previous) {
    return el("table", { class: "means" },
      el("tr", {}, el("th", { text: "column" }), el("th", { class: "num", text: "NDCG@10" }),
        previous ? el("th", { class: "num", text: "Δ" }) : null,
        el("th", { class: "num", text: "recall@100" }), el("th", { class: "num", text: "MRR@10" }),
        el("th", { class: "num", text: "unjudged" }), el("th", { class: "num", text: "scored" })),
      scored.columns.map((c) => {
        let delta = null;
        if (previous) {
          const before = previous[c.name];
          const d = before && before.ndcg10 !== null && c.means.ndcg10 !== null ? c.means.ndcg10 - before.ndcg10 : null;
          delta = el("td", { class: "num delta" + (d > 0 ? " up" : d < 0 ? " down" : ""),
            text: d === null ? "–" : (d > 0 ? "+" : "") + d.toFixed(3) });
        }
        return el("tr", { "data-column": c.name }, el("td", { text: c.name }),
          el("td", { class: "num mean-ndcg", text: fmt(c.means.ndcg10) }), delta,
          el("td", { class: "num", text: fmt(c.means.recall100) }), el("td", { class: "num", text: fmt(c.means.mrr10) }),
          el("td", { class: "num", text: pct(c.means.unjudged10) }),
          el("td", { class: "num", text: c.means.scored + "/" + c.means.queries }));
      }));
  }

  async function scoreJudged() {
    try {
      say("scoring the judged queries…", true);
      state.judgedRows = await api("POST", "queries", Object.assign(context(), { columns: columnPayload() }));
      state.judgedSort = { key: "c0:ndcg10", asc: true };
      renderJudged();
      say("", true);
    } catch (e) {
      say(e.message);
    }
  }

  async function loadCases(select) {
    const answer = await api("GET", "cases");
    const box = $("case-select");
    clear(box);
    box.appendChild(el("option", { value: "", text: "(new case)" }));
    for (const name of Object.keys(answer.cases)) box.appendChild(el("option", { value: name, text: name }));
    state.cases = answer.cases;
    if (select !== undefined) box.value = select;
  }

  function caseQueries() {
    return $("case-queries").value.split("\n").map((q) => q.trim()).filter((q) => q);
  }

  async function runCase() {
    const name = $("case-name").value.trim();
    try {
      const body = Object.assign(context(), { columns: columnPayload() });
      if (name && state.cases && state.cases[name]) body.name = name;
      else body.queries = caseQueries();
      say("scoring the case…", true);
      const scored = await api("POST", "case", body);
      const key = name || "(unsaved)";
      const previous = state.caseHistory[key];
      const box = $("case-result");
      clear(box);
      box.appendChild(means(scored, previous || {}));
      box.appendChild(scoreTable(scored, openQuery, null).table);
      state.caseHistory[key] = Object.fromEntries(scored.columns.map((c) => [c.name, c.means]));
      say("", true);
    } catch (e) {
      say(e.message);
    }
  }

  function wireCases() {
    $("case-select").addEventListener("change", () => {
      const name = $("case-select").value;
      $("case-name").value = name;
      $("case-queries").value = name && state.cases[name] ? state.cases[name].join("\n") : "";
    });
    $("case-add").addEventListener("click", () => {
      const text = $("text").value.trim();
      if (!text) return;
      const qs = caseQueries();
      if (!qs.includes(text)) qs.push(text);
      $("case-queries").value = qs.join("\n");
    });
    $("case-save").addEventListener("click", async () => {
      const name = $("case-name").value.trim();
      if (!name) { say("a case needs a name"); return; }
      try {
        await api("PUT", "cases/" + encodeURIComponent(name), { queries: caseQueries() });
        await loadCases(name);
        say("case " + name + " saved", true);
      } catch (e) { say(e.message); }
    });
    $("case-delete").addEventListener("click", async () => {
      const name = $("case-name").value.trim();
      if (!name) return;
      try {
        await api("DELETE", "cases/" + encodeURIComponent(name));
        await loadCases("");
        $("case-name").value = "";
        $("case-queries").value = "";
        say("case " + name + " deleted", true);
      } catch (e) { say(e.message); }
    });
    $("case-run").addEventListener("click", runCase);
  }

  // -- start ------------------------------------------------------------------------------
  async function start() {
    try {
      state.info = await api("GET", "info");
    } catch (e) {
      say("cannot reach the workbench API: " + e.message);
      return;
    }
    const info = state.info;
    $("served").textContent = "index " + info.index + " · " + info.engine + " · vectors: " + info.vector_source +
      " · ranker: " + (info.ranker || "none");
    showCounts(info.judgments);
    const names = ["bm25", "hybrid-rrf", info.ranker ? "hybrid+rerank" : "hybrid-linear"];
    state.columns = names.map(preset);
    renderEditors();
    $("query-form").addEventListener("submit", search);
    $("score-judged").addEventListener("click", scoreJudged);
    document.addEventListener("keydown", onKey);
    wireCases();
    try { await loadCases(); } catch (e) { say(e.message); }
    document.body.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
