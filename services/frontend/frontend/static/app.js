"use strict";
/* Sommelier's page: plain JS, no build step. Talks to the API with the page's own key. */
(function () {
  const cfg = window.SOMMELIER_CONFIG || {};
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  };
  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs = {}) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  let model = null;
  let batchCsv = null;
  let historyKey = "";  // another key the user gave the history panel (in memory only), else the page's own

  class ApiError extends Error {
    constructor(status, body) {
      super(describe(status, body));
      this.status = status;
      this.body = body;
    }
  }

  function describe(status, body) {
    const err = body && body.error;
    if (status === 0) return "The API cannot be reached. Is the stack up? (make up)";
    if (status === 403) return "The API refused this page's key (403). Check the key in config.js.";
    if (status === 429) return "Too many requests (429): the page's usage plan is limited. Wait a few seconds, then retry.";
    if (status === 503 && err && err.code === "no_model") return "No model is promoted yet. Train one with `make train`, then reload.";
    if (err) return err.message + (body.request_id ? ` (request ${body.request_id})` : "");
    return `The API answered ${status}.`;
  }

  async function api(path, options = {}) {
    let resp;
    try {
      resp = await fetch(cfg.apiUrl + path, {
        ...options,
        headers: { "Content-Type": "application/json", "x-api-key": cfg.apiKey, ...(options.headers || {}) },
      });
    } catch (e) {
      throw new ApiError(0, null);
    }
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }

  function banner(message) {
    const node = $("banner");
    node.hidden = !message;
    node.textContent = message || "";
  }

  function num(x) { return String(Number(Number(x).toPrecision(4))); }  // 80 -> "80", 1.3612 -> "1.361"
  function fmt(x, digits = 3) { return typeof x === "number" ? x.toFixed(digits) : String(x ?? ""); }

  /* ---------------- one record ---------------- */
  function fieldId(name) { return "f-" + name.replace(/[^a-zA-Z0-9_-]/g, "_"); }

  function buildForm() {
    const box = $("fields");
    box.replaceChildren();
    for (const f of model.features) {
      const id = fieldId(f.name);
      const label = el("label", { for: id }, f.label || f.name);
      if (f.unit) label.append(" ", el("span", { class: "unit", text: `(${f.unit})` }));
      let input, extra = null;
      if (f.type === "categorical" && f.categories) {
        const options = f.categories.map((c) => el("option", { value: c, text: c }));
        if (optional(f)) options.unshift(el("option", { value: "", text: "(not given)" }));  // left out: the model goes without it
        input = el("select", { id, name: f.name }, ...options);
      } else if (f.type === "text") {
        input = el("textarea", { id, name: f.name, rows: "3", maxlength: String(f.max_length || 5000),
                                 placeholder: optional(f) ? "Type or paste the text; the other fields are optional" : "" });
      } else {
        input = el("input", { id, name: f.name, type: f.type === "numeric" ? "number" : "text", step: "any" });
        if (!optional(f)) input.required = true;
        if (f.minimum !== undefined && f.minimum !== null) input.min = f.minimum;
        if (f.maximum !== undefined && f.maximum !== null) input.max = f.maximum;
        if (f.type === "categorical" && f.suggestions) {  // many known values: offered, not enforced
          input.setAttribute("list", id + "-values");
          extra = el("datalist", { id: id + "-values" }, ...f.suggestions.map((c) => el("option", { value: c })));
        }
      }
      const notes = [];
      // a number's range as the data had it (the spec's "observed"), then what the API accepts
      if (f.type === "numeric" && f.observed && f.observed.min != null) notes.push(`seen ${num(f.observed.min)} to ${num(f.observed.max)}`);
      if (f.type === "numeric" && (f.minimum != null || f.maximum != null)) notes.push(`accepts ${f.minimum ?? "−∞"} to ${f.maximum ?? "∞"}`);
      if (f.absent && !f.required) notes.push("optional: left blank, the model answers without it");
      else if (f.imputed) notes.push("may be left empty");
      if (f.type === "categorical" && f.suggestions) notes.push(`${f.suggestions.length}+ known values`);
      const hint = notes.join(" · ");
      input.setAttribute("aria-describedby", id + "-error" + (hint ? " " + id + "-hint" : ""));
      const parts = [label, input];
      if (extra) parts.push(extra);
      if (hint) parts.push(el("div", { class: "hint", id: id + "-hint", text: hint }));
      parts.push(el("div", { class: "error", id: id + "-error", role: "alert" }));
      box.append(el("div", { class: "field" + (f.type === "text" ? " wide" : "") }, ...parts));
    }
  }

  function fillExample() {
    for (const f of model.features) {
      if (f.example !== undefined && f.example !== null) $(fieldId(f.name)).value = f.example;
    }
    clearFieldErrors();
  }

  function clearFieldErrors() {
    for (const f of model.features) {
      $(fieldId(f.name)).removeAttribute("aria-invalid");
      $(fieldId(f.name) + "-error").textContent = "";
    }
  }

  function showFieldErrors(details) {
    let first = null;
    for (const d of details || []) {
      const name = d.field.replace(/^features\./, "");
      const input = $(fieldId(name));
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      $(fieldId(name) + "-error").textContent = d.message;
      first = first || input;
    }
    if (first) first.focus();
    return Boolean(first);
  }

  // a field the model can go without: any feature of a model that answers without one ("absent"), unless the dataset
  // requires it; a model published before that takes a missing value only where it learned one ("imputed")
  function optional(f) { return f.absent ? !f.required : Boolean(f.imputed); }

  // names as a sentence's list: "description", "description and variety", "description, variety and winery"
  function words(names) { return names.length < 2 ? names.join("") : names.slice(0, -1).join(", ") + " and " + names[names.length - 1]; }

  function readForm() {
    const record = {};
    for (const f of model.features) {
      // sent as typed: a category may end in a non-breaking space or a space (real data does), and the API, not the
      // page, decides what a value means; only a number is read from its trimmed text
      const raw = $(fieldId(f.name)).value, blank = raw.trim() === "";
      if (blank && optional(f)) continue;  // left out: not sent, so the model answers without it (not "empty")
      record[f.name] = f.type === "numeric" && !blank && !isNaN(Number(raw.trim())) ? Number(raw.trim()) : raw;
    }
    return record;
  }

  // Charts are drawn in CSS pixels and never scaled (13 px text stays 13 px): label columns are as wide as their longest
  // label, and bars take the room the panel has (between a floor and their full length); what still does not fit
  // scrolls inside its figure, the page itself never sideways.
  function textWidth(labels, px = 13) { return Math.ceil(Math.max(0, ...labels.map((l) => String(l).length)) * px * 0.62); }
  function room(id) { const node = $(id); return node ? node.clientWidth : 1280; }
  function barRoom(id, used, most, least = 90) { return Math.max(least, Math.min(most, room(id) - used - 8)); }
  // rows of a label, a bar and a value (`after` px): the label beside its bar where the panel has room for both, else
  // above it (a phone, a long feature name), so neither shrinks
  function lanes(labels, id, after, most, rowH) {
    const labelW = textWidth(labels) + 12, beside = room(id) >= labelW + after + 120;
    const barX = beside ? labelW : 0, barW = barRoom(id, barX + after, most);
    return { barX, barW, width: barX + barW + after, rowH: beside ? rowH : rowH + 16, barY: (y) => beside ? y : y + 16 };
  }

  function probabilityChart(probabilities) {
    const entries = Object.entries(probabilities);
    const rowH = 26, labelW = textWidth(entries.map(([c]) => c)) + 12, barW = barRoom("answer", labelW + 60, 260), width = labelW + barW + 60;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${entries.length * rowH}`, width, role: "img",
      "aria-label": "class probabilities: " + entries.map(([c, p]) => `${c} ${(p * 100).toFixed(1)}%`).join(", ") });
    entries.forEach(([cls, p], i) => {
      const y = i * rowH;
      const label = svg("text", { x: 0, y: y + 17 }); label.textContent = cls; chart.append(label);
      chart.append(svg("rect", { x: labelW, y: y + 4, width: barW, height: 16, fill: "#eee", rx: 3 }));
      chart.append(svg("rect", { x: labelW, y: y + 4, width: Math.max(1, p * barW), height: 16, fill: "#7b1e3a", rx: 3, class: "bar" }));
      const pct = svg("text", { x: labelW + barW + 8, y: y + 17 }); pct.textContent = (p * 100).toFixed(1) + "%"; chart.append(pct);
    });
    return chart;
  }

  function explanation(e, label) {
    const how = e.method === "linear" ? "each feature's share of the score (exact for this linear model)"
      : "how much each feature's value raises the probability over typical values (occlusion)";
    const list = el("ol", { id: "answer-why" }, ...e.top.map((t) => el("li", {
      class: t.contribution >= 0 ? "for" : "against",
      text: `${t.feature}${t.term ? ` “${t.term}”` : ""} ${t.contribution >= 0 ? "+" : "−"}${Math.abs(t.contribution).toFixed(3)}` })));
    return el("details", { class: "why", open: "" }, el("summary", { text: `Why ${label}: ${how}` }), list);
  }

  async function predictOne(event) {
    event.preventDefault();
    clearFieldErrors();
    const box = $("answer");
    box.replaceChildren(el("p", { class: "hint", text: "Asking the model…" }));
    try {
      const r = await api("/predict?explain=true", { method: "POST", body: JSON.stringify({ features: readForm() }) });
      banner("");
      box.replaceChildren(
        el("div", { class: "label", id: "answer-label", text: r.label }),
        el("p", { text: `confidence ${(r.confidence * 100).toFixed(1)}%` }),
        probabilityChart(r.probabilities),
      );
      if (r.absent && r.absent.length) box.append(el("p", { class: "hint", id: "answer-absent",
        text: `Answered without ${words(r.absent)}: not given, so the model went without ${r.absent.length > 1 ? "them" : "it"}.` }));
      if (r.unusual && r.unusual.length) box.append(el("p", { class: "hint unusual", id: "answer-unusual",
        text: "Unlike the training data, so the answer is an extrapolation: " + r.unusual.map((u) => `${u.feature} ${u.message}`).join("; ") }));
      if (r.explanation && r.explanation.top.length) box.append(explanation(r.explanation, r.label));
      box.append(el("p", { class: "meta", text: `model ${r.model_version} · prediction ${r.prediction_id}` }));
      loadHistory();
    } catch (e) {
      const onFields = e.status === 400 && showFieldErrors(e.body && e.body.error && e.body.error.details);
      box.replaceChildren(el("p", { class: "error-text", id: "answer-error",
        text: onFields ? "Some values need fixing: see the marked fields." : e.message }));
    }
  }

  /* ---------------- batch ---------------- */
  // The rows of a CSV text, each with its number in the file as a spreadsheet shows it (the header is row 1; a blank
  // line counts, as the CLI counts it), and whether the text ends with a line break (a cut-off download does not).
  function parseCsv(text) {
    const rows = [], numbers = [];
    let row = [], field = "", quoted = false, n = 0;
    const end = () => {
      row.push(field); field = ""; n++;
      if (row.some((v) => v !== "")) { rows.push(row); numbers.push(n); }
      row = [];
    };
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        end();
      } else field += c;
    }
    end();
    return { rows, numbers, ended: /[\r\n]$/.test(text) };
  }

  // On a phone a wide table becomes one card a row (style.css): each cell carries its column's name to show beside it.
  function stackable(table) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
    for (const row of table.querySelectorAll("tbody tr")) [...row.cells].forEach((td, i) => td.setAttribute("data-label", names[i] || ""));
    table.classList.add("stack");
    return table;
  }

  // a text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is written behind an apostrophe, as the CLI
  // writes it (sommelier_contract.files.safe_cell), and so is one starting with an apostrophe followed by one of those;
  // numbers stay numbers
  function csvCell(v) {
    let s = String(v ?? "");
    const number = s.trim() !== "" && Number.isFinite(Number(s));  // "-5" read from a file is a number, and stays one
    if (typeof v === "string" && !number && (/^[=+\-@\t\r]/.test(s) || /^'[=+\-@\t\r']/.test(s))) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  async function predictFile() {
    const file = $("batch-file").files[0];
    const status = $("batch-status");
    if (!file) { status.textContent = "Choose a CSV file first."; return; }
    const { rows, numbers, ended } = parseCsv(await file.text());
    if (rows.length < 2) { status.textContent = "The file needs a header row and at least one record."; return; }
    const [header, ...data] = rows;
    const rowOf = numbers.slice(1);  // data[i]'s row number in the file
    // the CLI's rule (sommelier_contract.files.CsvRows): a download's cut-off last row (fewer fields, no line break
    // after it) is left out and said; any other row with another number of fields than the header is refused
    let cut = "";
    if (!ended && data[data.length - 1].length < header.length) {
      cut = ` The last row, ${rowOf.pop()}, stops part-way with no line break after it, as an interrupted download ends: left out.`;
      data.pop();
    }
    const wrong = data.findIndex((r) => r.length !== header.length);
    if (wrong >= 0 || !data.length) {
      status.className = "error-text";
      $("batch-table").hidden = true;
      $("batch-download").disabled = true;
      batchCsv = null;
      status.textContent = wrong >= 0
        ? `Row ${rowOf[wrong]} has ${data[wrong].length} field(s), the header has ${header.length} (a line cut off or a stray comma?): nothing was predicted.`
        : "The file needs a header row and at least one record." + cut;
      return;
    }
    const types = Object.fromEntries(model.features.map((f) => [f.name, f.type]));
    const inputs = data.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    // only the model's features are sent (an index, a label or notes stay in the results); an empty number is missing
    const records = inputs.map((row) => Object.fromEntries(header.filter((h) => h in types).map((h) => {
      const v = row[h], t = v.trim();  // as in the form: a number from its trimmed text, any other value as the file has it
      return [h, types[h] === "numeric" ? (t === "" ? null : !isNaN(Number(t)) ? Number(t) : v) : v];
    })));
    const results = [];
    try {
      for (let start = 0; start < records.length; start += 1000) {
        status.textContent = `Predicting rows ${start + 1}–${Math.min(start + 1000, records.length)} of ${records.length}…`;
        const r = await api("/predict", { method: "POST", body: JSON.stringify({ instances: records.slice(start, start + 1000) }) });
        results.push(...r.predictions);
      }
    } catch (e) {
      // one line a problem, by the file's row (the header is row 1) and column, as the CLI words them
      const details = (e.body && e.body.error && e.body.error.details) || [];
      const offset = results.length, shown = details.slice(0, 20);
      const where = (field) => {
        const m = /^instances\[(\d+)\]\.?(.*)$/.exec(field);
        return m ? `row ${rowOf[Number(m[1]) + offset]}${m[2] ? `, column ${m[2]}` : ""}` : field;
      };
      status.className = "error-text";
      $("batch-table").hidden = true;  // no results of an earlier file beside this one's problems
      $("batch-download").disabled = true;
      batchCsv = null;
      const done = offset ? `rows ${rowOf[0]} to ${rowOf[offset - 1]} were predicted, nothing from row ${rowOf[offset]} on` : "nothing was predicted";
      status.replaceChildren(el("span", { text: details.length ? `The file has ${details.length} problem(s), so ${done}:` : e.message }));
      if (shown.length) status.append(el("ul", { id: "batch-errors" }, ...shown.map((d) => el("li", {}, el("b", { text: where(d.field) + ": " }), d.message)),
        ...(details.length > shown.length ? [el("li", { text: `and ${details.length - shown.length} more` })] : [])));
      return;
    }
    status.className = "hint";
    status.textContent = `${results.length} records predicted.${cut}`;
    const classes = Object.keys(results[0].probabilities);
    const cols = [...header, "label", "confidence", ...classes.map((c) => "p_" + c), "prediction_id"];
    const table = $("batch-table");
    // a column a class while they fit (4); past that, the next most likely classes in one column (the CSV has them all)
    const perClass = classes.length <= 4;
    const runnersUp = (r) => Object.entries(r.probabilities).filter(([c]) => c !== r.label).sort((a, b) => b[1] - a[1]).slice(0, 2)
      .map(([c, p]) => `${c} ${fmt(p, 2)}`).join(", ");
    table.replaceChildren(el("thead", {}, el("tr", {}, ...["row", "label", "confidence", ...(perClass ? classes.map((c) => "p " + c) : ["then"])]
      .map((c) => el("th", { scope: "col", text: c })))));
    const body = el("tbody");
    results.slice(0, 500).forEach((r, i) => body.append(el("tr", {}, el("td", { class: "num", text: rowOf[i] }), el("td", { text: r.label }),
      el("td", { class: "num", text: fmt(r.confidence) }),
      ...(perClass ? classes.map((c) => el("td", { class: "num", text: fmt(r.probabilities[c]) })) : [el("td", { class: "then", text: runnersUp(r) })]))));
    table.append(body);
    stackable(table);
    table.hidden = false;
    batchCsv = [cols.map(csvCell).join(","), ...results.map((r, i) => [...header.map((h) => inputs[i][h]), r.label, r.confidence,
      ...classes.map((c) => r.probabilities[c]), r.prediction_id].map(csvCell).join(","))].join("\n") + "\n";
    $("batch-download").disabled = false;
    loadHistory();
  }

  function downloadBatch() {
    const url = URL.createObjectURL(new Blob([batchCsv], { type: "text/csv" }));
    const a = el("a", { href: url, download: "sommelier-predictions.csv" });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  /* ---------------- history and feedback ---------------- */
  async function sendFeedback(id, select, cell) {
    if (!select.value) { select.focus(); return; }
    try {
      const r = await api("/feedback", { method: "POST", body: JSON.stringify({ prediction_id: id, label: select.value }), headers: keyed() });
      cell.replaceChildren(el("span", { text: `✓ ${r.feedback.label}${r.feedback.correct ? " (model right)" : " (model wrong)"}` }));
    } catch (e) {
      cell.append(el("div", { class: "error-text", text: e.message }));
    }
  }

  function keyed() { return historyKey ? { "x-api-key": historyKey } : {}; }
  function whose() { return historyKey ? `the key you gave (…${historyKey.slice(-4)})` : "this page's API key"; }

  function showKeyHistory(event) {
    event.preventDefault();
    historyKey = $("history-key").value.trim();
    $("history-whose").textContent = historyKey
      ? `The predictions made with ${whose()}, newest first: each key sees only its own. Empty the field to go back to the page's own.`
      : $("history-whose").dataset.own;
    loadHistory();
  }

  async function loadHistory() {
    const table = $("history-table");
    try {
      const page = await api("/predictions?limit=15", { headers: keyed() });
      table.replaceChildren(el("thead", {}, el("tr", {}, ...["when (UTC)", "label", "confidence", "model", "the true class was"].map((c) => el("th", { scope: "col", text: c })))));
      const body = el("tbody");
      for (const p of page.predictions) {
        const cell = el("td");
        if (p.feedback) cell.textContent = `✓ ${p.feedback.label}`;
        else {
          const sel = el("select", { "aria-label": `true class of prediction ${p.prediction_id}` },
            el("option", { value: "", text: "choose…" }), ...Object.keys(p.probabilities).map((c) => el("option", { value: c, text: c })));
          const btn = el("button", { type: "button", class: "secondary", text: "Send", disabled: "" });
          sel.addEventListener("change", () => { btn.disabled = !sel.value; });
          btn.addEventListener("click", () => sendFeedback(p.prediction_id, sel, cell));
          cell.append(sel, " ", btn);
        }
        body.append(el("tr", { "data-id": p.prediction_id }, el("td", { text: p.created_at.replace("T", " ").slice(0, 19) }),
          el("td", { text: p.label }), el("td", { class: "num", text: fmt(p.confidence) }),
          el("td", { class: "version", text: p.model_version }), cell));
      }
      table.append(body);
      stackable(table);
      if (!page.predictions.length) table.replaceChildren(el("caption", { text: `No predictions made with ${whose()} yet.` }));
    } catch (e) {
      const text = historyKey && e.status === 403 ? "The API refused the key you gave (403): check it, or empty the field for the page's own." : e.message;
      table.replaceChildren(el("caption", { class: "error-text", text }));
    }
  }

  /* ---------------- model card ---------------- */

  // WCAG contrast of two sRGB colours ([r, g, b] 0-255): text on a confusion cell must reach 4.5:1
  function luminance(rgb) {
    const [r, g, b] = rgb.map((v) => { const c = v / 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function contrast(a, b) { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); }
  const WINE = [123, 30, 58], INK = [31, 31, 31], WHITE = [255, 255, 255];

  function confusionMatrix(cm) {
    // cells as large as the panel allows (56 px down to 34, room for a 3-digit count at 13 px); column labels wider than
    // a cell turn 30 degrees, and the chart is as tall and as wide as the longest turned label needs, so none is clipped
    const n = cm.labels.length, pad = Math.max(48, textWidth(cm.labels) + 14), digits = textWidth([String(Math.max(0, ...cm.matrix.flat()))]);
    const cell = Math.max(34, digits + 12, Math.min(56, Math.floor((room("model-card") - pad - 20) / n)));
    const turned = cm.labels.map((l) => textWidth([l]) > cell - 6 ? textWidth([l]) : 0), longest = Math.max(0, ...turned);
    const top = Math.max(40, Math.ceil(longest * 0.5) + 18);
    const right = Math.max(10, ...turned.map((w, i) => w ? Math.ceil(w * 0.87) - (n - i) * cell + cell / 2 + 6 : 0));
    const max = Math.max(1, ...cm.matrix.flat());
    const chart = svg("svg", { viewBox: `0 0 ${pad + n * cell + right} ${top + n * cell + 10}`, width: pad + n * cell + right, role: "img",
      "aria-label": "confusion matrix on the holdout: rows are true classes, columns predicted classes" });
    cm.labels.forEach((label, i) => {  // column labels turn when they are wider than a cell
      const x = pad + i * cell + cell / 2, wide = turned[i] > 0;
      const head = svg("text", wide ? { x, y: top - 6, transform: `rotate(-30 ${x} ${top - 6})` } : { x, y: top - 8, "text-anchor": "middle" });
      head.textContent = label; chart.append(head);
      const left = svg("text", { x: pad - 8, y: top + i * cell + cell / 2 + 4, "text-anchor": "end" }); left.textContent = label; chart.append(left);
    });
    cm.matrix.forEach((row, i) => row.forEach((v, j) => {
      const shade = 0.08 + 0.92 * (v / max);
      const fill = WINE.map((c) => Math.round(255 - (255 - c) * shade));  // the cell's colour on the white card
      const ink = contrast(WHITE, fill) >= contrast(INK, fill) ? "#ffffff" : "#1f1f1f";
      chart.append(svg("rect", { x: pad + j * cell, y: top + i * cell, width: cell - 2, height: cell - 2, rx: 4, fill: `rgb(${fill.join(",")})` }));
      // a class, not the fill attribute (the page's `svg text` rule would win over it) nor a style attribute (the CSP refuses it)
      const t = svg("text", { x: pad + j * cell + cell / 2 - 1, y: top + i * cell + cell / 2 + 4, "text-anchor": "middle",
        class: ink === "#ffffff" ? "on-dark" : "on-light" });
      t.textContent = v; chart.append(t);
    }));
    const box = el("figure", {}, chart, el("figcaption", { class: "hint", text: "rows: true class · columns: predicted class" }));
    return box;
  }

  function importanceChart(imp) {
    const rows = imp.features.slice(0, 12), lane = lanes(rows.map((r) => r.feature), "model-card", 60, 200, 22), rowH = lane.rowH;
    const max = Math.max(1e-9, ...rows.map((r) => Math.abs(r.importance)));
    const chart = svg("svg", { id: "importance-chart", viewBox: `0 0 ${lane.width} ${rows.length * rowH}`, width: lane.width, role: "img",
      "aria-label": `feature importances (${imp.method}): ` + rows.map((r) => `${r.feature} ${r.importance.toFixed(3)}`).join(", ") });
    rows.forEach((r, i) => {
      const y = i * rowH;
      const label = svg("text", { x: 0, y: y + 16 }); label.textContent = r.feature; chart.append(label);
      chart.append(svg("rect", { x: lane.barX, y: lane.barY(y) + 4, width: Math.max(1, lane.barW * Math.max(0, r.importance) / max), height: 14, fill: "#7b1e3a", rx: 3 }));
      const v = svg("text", { x: lane.barX + lane.barW + 8, y: lane.barY(y) + 16 }); v.textContent = r.importance.toFixed(3); chart.append(v);
    });
    const box = el("figure", {}, chart, el("figcaption", { class: "hint", text: imp.method }));
    if (imp.terms) {
      box.append(el("ul", { class: "terms" }, ...Object.entries(imp.terms).map(([cls, words]) =>
        el("li", {}, el("b", { text: cls + ": " }), words.map((w) => w.split(": ").slice(1).join(": ")).join(", ")))));
    }
    return box;
  }

  function modelCard() {
    const h = (model.metrics && model.metrics.holdout) || {};
    const card = $("model-card");
    const metric = (name, value) => el("div", { class: "metric" }, el("b", { text: value }), name);
    card.replaceChildren(
      el("p", { id: "model-version", text: `Version ${model.version} (${(model.model && model.model.name) || "?"}), trained ${String(model.created_at || "").replace("T", " ").slice(0, 19)} UTC` }),
      el("div", { class: "metrics" }, metric("holdout accuracy", fmt(h.accuracy)), metric("macro F1", fmt(h.f1_macro)),
        metric("log loss", fmt(h.log_loss)), metric("holdout rows", String(h.rows ?? ""))),
    );
    const gate = model.gate || {};
    const hand = (model.promotions || []).slice(-1)[0];  // a person's promotion, signed with the manifest
    if (hand) card.append(el("p", { id: "promotion", class: "promotion" }, el("b", { text: "Promoted by hand: " }),
      `by ${hand.by}, ${String(hand.at).replace("T", " ").slice(0, 16)} UTC: ${hand.why}`));
    if (gate.reason) card.append(el("p", { id: "gate-reason" }, el("b", { text: (gate.passed ?? gate.promoted) ? "Gate passed: " : "Gate refused: " }), gate.reason));
    const notes = (model.dataset && model.dataset.notes) || [];  // what was decided about the rows: left out, classes grouped
    if (notes.length) card.append(el("div", { id: "data-notes" }, el("b", { text: "The data: " }),
      el("ul", {}, ...notes.map((n) => el("li", { text: n })))));
    const cv = Object.entries((model.metrics && model.metrics.cv) || {});
    if (cv.length) {
      const t = el("table", { id: "cv-table" }, el("caption", { text: "Recipes compared (cross-validation on the training rows)" }),
        el("thead", {}, el("tr", {}, ...["recipe", "macro F1", "accuracy", "seconds"].map((c) => el("th", { scope: "col", text: c })))));
      const b = el("tbody");
      for (const [name, r] of cv) {
        const winner = model.model && model.model.name === name;
        const params = Object.entries(r.params || {}).map(([k, v]) => `${k.split("__").pop()}=${v}`);
        b.append(el("tr", winner ? { class: "winner" } : {}, el("td", { text: name + (params.length ? ` (${params.join(", ")})` : "") + (winner ? " chosen" : "") }),
          r.skipped ? el("td", { colspan: "3", text: "skipped: " + r.skipped })
            : el("td", { class: "num", text: `${fmt(r.f1_macro_mean)} ± ${fmt(r.f1_macro_std)}` }),
          ...(r.skipped ? [] : [el("td", { class: "num", text: fmt(r.accuracy_mean) }), el("td", { class: "num", text: fmt(r.seconds, 1) })])));
      }
      t.append(b);
      card.append(el("div", { class: "table-wrap" }, stackable(t)));
    }
    const charts = el("div", { class: "charts" });
    if (model.importances && model.importances.features) charts.append(el("div", {}, el("h3", { text: "What the model relies on" }), importanceChart(model.importances)));
    if (h.confusion_matrix) charts.append(el("div", {}, el("h3", { text: "Confusion matrix (holdout)" }), confusionMatrix(h.confusion_matrix)));
    card.append(charts);
    if (h.per_class) {
      const t = el("table", { id: "per-class" }, el("caption", { text: "Per class on the holdout (recall: the share of each true class the model finds)" }),
        el("thead", {}, el("tr", {}, ...["class", "precision", "recall", "F1", "support"].map((c) => el("th", { scope: "col", text: c })))));
      const b = el("tbody");
      for (const [c, m] of Object.entries(h.per_class)) b.append(el("tr", {}, el("td", { text: c }), el("td", { class: "num", text: fmt(m.precision) }),
        el("td", { class: "num", text: fmt(m.recall) }), el("td", { class: "num", text: fmt(m.f1) }), el("td", { class: "num", text: m.support })));
      t.append(b);
      card.append(el("div", { class: "table-wrap" }, t));
    }
  }

  /* ---------------- monitoring ---------------- */
  const DRIFT = "#b00020", CALM = "#5d7f99", HOLDOUT = "#b9b9b9";
  // a categorical palette made for many classes (matplotlib's tab10, then tab20's light tones): 20 distinct colours,
  // so up to 20 classes never share one (the legend's swatches are .mix-N in style.css, in the same order)
  const MIX = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"];

  function testWords(t) {
    if (!t.test || t.test === "none") return t.reason || "";
    return `${t.test} ${t.p_value !== undefined ? "p=" + t.p_value.toPrecision(2) : fmt(t.statistic)} (threshold ${t.threshold.toPrecision(2)})`;
  }

  // one row a feature: its score (1 = its test's threshold: a distance over its threshold, a p-value's log over its level's)
  function driftChart(features) {
    const lane = lanes(features.map((f) => f.feature), "monitoring-report", 150, 320, 24), rowH = lane.rowH, labelW = lane.barX;
    const top = Math.max(2, ...features.map((f) => f.score || 0)), x = (v) => labelW + lane.barW * Math.min(v, top) / top;
    const chart = svg("svg", { id: "drift-chart", viewBox: `0 0 ${lane.width} ${features.length * rowH + 22}`, width: lane.width,
      role: "img", "aria-label": "drift per feature against its test's threshold: " + features.map((f) =>
        `${f.feature} ${fmt(f.score, 2)}${f.drifted ? " drifted" : ""}`).join(", ") });
    features.forEach((f, i) => {
      const y = i * rowH, g = svg("g", { class: f.drifted ? "feature drifted" : "feature", "data-feature": f.feature });
      const label = svg("text", { x: 0, y: y + 16 }); label.textContent = f.feature; g.append(label);
      g.append(svg("rect", { x: labelW, y: lane.barY(y) + 5, width: Math.max(1, x(f.score || 0) - labelW), height: 14, rx: 3, fill: f.drifted ? DRIFT : CALM }));
      const v = svg("text", { x: labelW + lane.barW + 8, y: lane.barY(y) + 16 });
      v.textContent = (f.drifted ? "DRIFTED " : "") + `PSI ${fmt(f.psi, 2)}`;
      if (f.drifted) v.setAttribute("class", "drift-word");
      g.append(v);
      const tip = svg("title"); tip.textContent = f.tests.map(testWords).join("; "); g.append(tip);
      chart.append(g);
    });
    const h = features.length * rowH;
    chart.append(svg("line", { x1: x(1), x2: x(1), y1: 0, y2: h, stroke: "#1f1f1f", "stroke-dasharray": "4 3" }));
    const t = svg("text", { x: x(1), y: h + 16, "text-anchor": "middle" }); t.textContent = "threshold"; chart.append(t);
    return el("figure", {}, chart, el("figcaption", { class: "hint",
      text: "each feature's test against training, 1 = its threshold (red: flagged); PSI beside, as most teams read it" }));
  }

  function classMixChart(pred) {
    const classes = Object.keys(pred.baseline_classes), rowH = 34, labelW = textWidth(classes) + 12, barW = barRoom("monitoring-report", labelW + 60, 240);
    const chart = svg("svg", { id: "class-mix-chart", viewBox: `0 0 ${labelW + barW + 60} ${classes.length * rowH}`, width: labelW + barW + 60, role: "img",
      "aria-label": "class mix: " + classes.map((c) => `${c} ${(100 * (pred.classes[c] || 0)).toFixed(0)}% (holdout ${(100 * pred.baseline_classes[c]).toFixed(0)}%)`).join(", ") });
    classes.forEach((c, i) => {
      const y = i * rowH;
      const label = svg("text", { x: 0, y: y + 20 }); label.textContent = c; chart.append(label);
      [[pred.baseline_classes[c], HOLDOUT, 3], [pred.classes[c] || 0, pred.class_mix.drifted ? DRIFT : CALM, 17]].forEach(([v, fill, dy]) => {
        chart.append(svg("rect", { x: labelW, y: y + dy, width: Math.max(1, v * barW), height: 12, rx: 2, fill }));
        const pct = svg("text", { x: labelW + Math.max(1, v * barW) + 6, y: y + dy + 11 }); pct.textContent = (v * 100).toFixed(0) + "%"; chart.append(pct);
      });
    });
    return el("figure", {}, chart, el("figcaption", { class: "hint", text: `grey: the holdout · colour: recent predictions${pred.class_mix.drifted ? " (the mix moved)" : ""}` }));
  }

  // a line chart over time: points with optional intervals, a dashed reference line
  function timeChart(id, points, { reference, referenceLabel, label }) {
    const w = Math.min(360, Math.max(240, room("monitoring-report") - 8)), h = 170, left = 48, bottom = 36, n = points.length;
    const px = (i) => left + (n === 1 ? (w - left) / 2 : 8 + i * (w - left - 16) / (n - 1)), py = (v) => 8 + (h - bottom - 8) * (1 - v);
    const chart = svg("svg", { id, viewBox: `0 0 ${w} ${h}`, width: w, role: "img",
      "aria-label": label + ": " + points.map((p) => `${p.x} ${(100 * p.y).toFixed(0)}%`).join(", ") });
    for (const v of [0, 0.5, 1]) {
      chart.append(svg("line", { x1: left, x2: w, y1: py(v), y2: py(v), stroke: "#eee" }));
      const t = svg("text", { x: left - 6, y: py(v) + 4, "text-anchor": "end" }); t.textContent = `${v * 100}%`; chart.append(t);
    }
    if (reference != null) {
      chart.append(svg("line", { x1: left, x2: w, y1: py(reference), y2: py(reference), stroke: "#1f1f1f", "stroke-dasharray": "4 3" }));
      const t = svg("text", { x: w - 2, y: py(reference) + (reference > 0.85 ? 15 : -4), "text-anchor": "end" }); t.textContent = referenceLabel; chart.append(t);
    }
    if (n > 1) chart.append(svg("polyline", { points: points.map((p, i) => `${px(i)},${py(p.y)}`).join(" "), fill: "none", stroke: CALM, "stroke-width": 2 }));
    points.forEach((p, i) => {
      if (p.low != null) chart.append(svg("line", { x1: px(i), x2: px(i), y1: py(p.low), y2: py(p.high), stroke: CALM, "stroke-width": 2 }));
      chart.append(svg("circle", { cx: px(i), cy: py(p.y), r: 4, fill: p.bad ? DRIFT : CALM }));
    });
    [0, n - 1].filter((i, k, a) => a.indexOf(i) === k).forEach((i) => {
      const t = svg("text", { x: px(i), y: h - bottom + 18, "text-anchor": n === 1 ? "middle" : i ? "end" : "start" }); t.textContent = points[i].x; chart.append(t);
    });
    return chart;
  }

  function classTrendChart(trend, classes) {
    const points = trend.filter((p) => p.classes), w = Math.min(360, Math.max(240, room("monitoring-report") - 8)), h = 140, slot = w / Math.max(points.length, 12), when = (p) => p.at.slice(0, 16).replace("T", " ");
    const chart = svg("svg", { id: "class-trend-chart", viewBox: `0 0 ${w} ${h}`, width: w, role: "img",
      "aria-label": "class mix per report, oldest first: " + points.map((p) => when(p) + " " + classes.map((c) => `${c} ${(100 * (p.classes[c] || 0)).toFixed(0)}%`).join(" ")).join("; ") });
    points.forEach((p, i) => {
      let y = h;
      classes.forEach((c, k) => {
        const v = (p.classes[c] || 0) * h;
        chart.append(svg("rect", { x: i * slot, y: y - v, width: slot - 3, height: v, fill: MIX[k % MIX.length] }));
        y -= v;
      });
    });
    const legend = el("ul", { class: "legend" }, ...classes.map((c, k) => el("li", {},
      el("span", { class: `swatch mix-${k % MIX.length}`, "aria-hidden": "true" }), c)));
    return el("figure", {}, chart, legend, el("figcaption", { class: "hint",
      text: `${points.length} reports, oldest first: ${when(points[0])} to ${when(points[points.length - 1])} UTC` }));
  }

  function renderMonitoring(answer) {
    const box = $("monitoring-report"), r = answer.report;
    if (!r) { box.replaceChildren(el("p", { id: "monitoring-status", class: "hint", text: answer.message })); return; }
    const drifted = r.drifted_features || [];
    const state = r.status !== "ok" ? "quiet" : drifted.length || (r.violations || []).length ? "alert" : "calm";
    box.replaceChildren(
      el("p", { id: "monitoring-status", class: `status ${state}`, text: r.status === "ok" ? (drifted.length ? `Drift in ${drifted.join(", ")}` : "No drift") : r.status }),
      el("p", { id: "monitoring-message", text: r.message }),
      el("p", { class: "meta", text: `report ${r.at.replace("T", " ").slice(0, 19)} UTC` + (r.model ? ` · model ${r.model.version}` : "")
        + (r.window ? ` · predictions since ${r.window.since.replace("T", " ").slice(0, 16)} UTC: ${r.predictions}` : "") }),
    );
    const charts = el("div", { class: "charts" });
    if (r.features && r.features.length) charts.append(el("div", {}, el("h3", { text: "Drift per feature" }), driftChart(r.features)));
    const pred = r.prediction_drift;
    if (pred) charts.append(el("div", {}, el("h3", { text: "Class mix" }), classMixChart(pred)));
    const days = ((r.accuracy || {}).days || []).map((d) => ({ x: d.day.slice(5), y: d.accuracy, low: d.low, high: d.high }));
    const holdout = r.model && r.model.holdout_accuracy;
    charts.append(el("div", {}, el("h3", { text: "Accuracy from feedback, per day" }), days.length
      ? el("figure", {}, timeChart("accuracy-chart", days, { reference: holdout, referenceLabel: "holdout", label: "accuracy from feedback per day" }),
        el("figcaption", { class: "hint", text: "labels sent for the day's predictions, with a 95% interval" }))
      : el("p", { class: "hint", text: "No feedback yet: tell the model the true class in Recent predictions, and its accuracy shows here." })));
    const trend = r.trend || [];
    const estimates = trend.filter((p) => p.estimated_accuracy != null).map((p) => ({ x: p.at.slice(5, 16).replace("T", " "), y: p.estimated_accuracy, bad: p.drifted_features > 0 }));
    if (estimates.length > 1) charts.append(el("div", {}, el("h3", { text: "Estimated accuracy per report" }),
      el("figure", {}, timeChart("estimate-chart", estimates, { reference: holdout, referenceLabel: "holdout", label: "estimated accuracy per report" }),
        el("figcaption", { class: "hint", text: "an estimate from confidence before labels arrive (red: a report that found drift)" }))));
    if (pred && trend.filter((p) => p.classes).length > 1) charts.append(el("div", {}, el("h3", { text: "Class mix per report" }), classTrendChart(trend, Object.keys(pred.baseline_classes))));
    box.append(charts);
    const violations = r.violations || [];
    if (r.quality) box.append(el("h3", { text: `Data quality: ${violations.length ? violations.length + " violation(s)" : "no violations"}` }),
      el("ul", { id: "violations" }, ...violations.map((q) => el("li", { text: `${q.feature ? q.feature + ": " : ""}${q.message}` }))));
  }

  async function loadMonitoring() {
    const box = $("monitoring-report");
    try {
      renderMonitoring(await api("/monitoring"));
    } catch (e) {
      box.replaceChildren(el("p", { id: "monitoring-status", class: "error-text", text: e.message }));
    }
  }

  /* ---------------- start ---------------- */
  async function start() {
    $("predict-form").addEventListener("submit", predictOne);
    $("example-button").addEventListener("click", fillExample);
    $("batch-button").addEventListener("click", predictFile);
    $("batch-download").addEventListener("click", downloadBatch);
    $("history-refresh").addEventListener("click", loadHistory);
    $("history-whose").dataset.own = $("history-whose").textContent;
    $("history-key-form").addEventListener("submit", showKeyHistory);
    $("monitoring-refresh").addEventListener("click", loadMonitoring);
    if (!cfg.apiUrl) { banner("This page has no API configured (config.js)."); return; }
    try {
      model = await api("/model");
    } catch (e) {
      $("api-status").textContent = e.status === 0 ? "API down" : `API error ${e.status}`;
      banner(e.message);
      return;
    }
    $("api-status").textContent = `model ${model.version}`;
    const dataset = (model.dataset && model.dataset.name) || "the data";
    $("dataset-title").textContent = `Predict ${model.target || "the class"} from ${model.features.length} features (dataset ${dataset}).`;
    $("dataset-description").textContent = model.description || "";
    document.title = `Sommelier · ${dataset}`;
    buildForm();
    // a text model's form starts empty: the words are what a person types, and an example's other values, left in the
    // form, would answer for them ("Fill with an example" fills every field); a table of numbers starts from the example
    if (!model.features.some((f) => f.type === "text")) fillExample();
    modelCard();
    loadHistory();
    loadMonitoring();
  }

  start();
})();
