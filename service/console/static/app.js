// Esquire's web console: a page over the service's own APIs (no framework, no build step).
// Searches are submitted, stopped and deleted through each language's public API; the list of
// the caller's searches and their rows come from /_console/api. The session's API key travels
// as a header (never a cookie), so every request, downloads included, goes through fetch().

const KEY = "esquire.console.key";
const HISTORY = "esquire.console.history";
const HISTORY_MAX = 20;
const POLL_RUNNING_MS = 250;
const POLL_IDLE_MS = 3000;
const FINAL = new Set(["COMPLETED", "STOPPED", "FAILED"]);
const LABELS = { esql: "ES|QL", eql: "EQL", sml: "SML" };

const $ = (id) => document.getElementById(id);
const state = { current: null, submittedAt: 0, page: null, searches: [], timer: 0 };

// --- the wire -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const reason = body?.error?.reason ?? body?.error ?? `HTTP ${status}`;
    super(typeof reason === "string" ? reason : JSON.stringify(reason));
    this.status = status;
  }
}

function headers(json) {
  const h = {};
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = `ApiKey ${key}`;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

/** A request with the session's key; the answer's JSON, or ApiError (a 401 shows the login). */
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  const resp = await fetch(path, {
    method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  // only for the session still held: a poll answered after a logout must not say it ended
  if (resp.status === 401 && key && key === sessionStorage.getItem(KEY)) showLogin("Your session has ended: log in again.");
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// --- session ------------------------------------------------------------------------------

async function start() {
  const session = await api("GET", "/_console/api/session");
  if (session.security && !session.user) return showLogin("");
  showApp(session);
}

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  clearTimeout(state.timer);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-panel").hidden = false;
  $("login-error").textContent = message;
  $("username").focus();
}

function showApp(session) {
  $("login-panel").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = !session.security;
  $("who").textContent = session.user ? `Logged in as ${session.user.username}` : "";
  renderHistory();
  refreshSearches();
  $("query").focus();
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const answer = await api("POST", "/_console/api/session",
      { username: $("username").value, password: $("password").value });
    sessionStorage.setItem(KEY, answer.api_key);
    $("password").value = "";
    showApp({ security: true, user: answer });
  } catch (err) {
    $("login-error").textContent = err.message;
  }
}

async function logout() {
  try {
    await api("DELETE", "/_console/api/session");
  } finally {
    state.current = null;
    $("current").hidden = true;
    $("results").hidden = true;
    showLogin("You have logged out.");
  }
}

// --- the editor -----------------------------------------------------------------------------

function language() {
  return $("language").value;
}

function syncLanguage() {
  document.body.dataset.language = language();
  document.body.dataset.range = $("range").value;
}

function history() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY)) ?? [];
  } catch {
    return [];
  }
}

function remember(entry) {
  const same = (e) => e.language === entry.language && e.query === entry.query;
  const list = [entry, ...history().filter((e) => !same(e))].slice(0, HISTORY_MAX);
  localStorage.setItem(HISTORY, JSON.stringify(list));
  renderHistory();
}

function renderHistory() {
  const select = $("history");
  select.replaceChildren(new Option("Pick a recent query…", ""));
  history().forEach((e, i) => select.add(new Option(`${LABELS[e.language]}: ${e.query.replace(/\s+/g, " ")}`, i)));
}

function pickHistory() {
  const entry = history()[Number($("history").value)];
  if (!$("history").value || !entry) return;
  $("language").value = entry.language;
  $("query").value = entry.query;
  if (entry.index) $("index").value = entry.index;
  $("history").value = "";  // so picking the same entry again is a change too
  syncLanguage();
  $("query").focus();
}

function clearQueryError() {
  $("query-error").hidden = true;
  $("query").removeAttribute("aria-invalid");
}

/** An error's message; with its ``line L:C``, that line shown with a caret and the editor's
 * cursor put there. */
function showQueryError(message) {
  const box = $("query-error");
  $("query-error-message").textContent = message;
  $("query-error-line").textContent = "";
  const at = /line (\d+):(\d+)/.exec(message);
  const lines = $("query").value.split("\n");
  if (at && Number(at[1]) >= 1 && Number(at[1]) <= lines.length) {
    const line = Number(at[1]);
    const column = Math.max(1, Number(at[2]));
    const text = lines[line - 1];
    $("query-error-line").textContent = `${line} | ${text}\n${" ".repeat(String(line).length)} | ${" ".repeat(column - 1)}^`;
    box.dataset.line = line;
    box.dataset.column = column;
    const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.min(column - 1, text.length);
    $("query").focus();
    $("query").setSelectionRange(offset, Math.min(offset + 1, $("query").value.length));
  }
  $("query").setAttribute("aria-invalid", "true");
  box.hidden = false;
}

// --- submitting and controlling a search ------------------------------------------------------

function timeRange() {
  const range = $("range").value;
  if (range !== "custom") return { dtStart: range, dtEnd: "now" };
  return { dtStart: $("dt-start").value.trim(), dtEnd: $("dt-end").value.trim() || "now" };
}

/** Submits through the language's own async API; returns the new search's id. */
async function submit(kind, query) {
  if (kind === "esql") {
    const body = { query, wait_for_completion_timeout: "0s", keep_on_completion: true };
    return (await api("POST", "/_query/async", body)).id;
  }
  if (kind === "eql") {
    const index = encodeURIComponent($("index").value.trim() || "*");
    const body = { query, size: Number($("size").value) || 100, wait_for_completion_timeout: "0s",
      keep_on_completion: true };
    return (await api("POST", `/${index}/_eql/search`, body)).id;
  }
  return (await api("POST", "/_sme/async_requests/request", { query, ...timeRange(), calculateStats: true })).id;
}

async function run(event) {
  event?.preventDefault();
  const query = $("query").value;  // as typed: an error's line:col points into the editor's text
  if (!query.trim()) return;
  clearQueryError();
  const kind = language();
  $("run").disabled = true;
  try {
    const id = await submit(kind, query);
    remember({ language: kind, query, index: kind === "eql" ? $("index").value : undefined });
    state.submittedAt = Date.now();
    open({ id, kind, query, state: "PENDING", progress: 0, partial: false });
  } catch (err) {
    showQueryError(err.message);
  } finally {
    $("run").disabled = false;
  }
}

const CONTROL = {
  esql: { stop: (id) => api("POST", `/_query/async/${id}/stop`), remove: (id) => api("DELETE", `/_query/async/${id}`),
    failure: async (id) => failureOf(() => api("GET", `/_query/async/${id}`)) },
  eql: { stop: null, remove: (id) => api("DELETE", `/_eql/search/${id}`),
    failure: async (id) => failureOf(() => api("GET", `/_eql/search/${id}`)) },
  sml: { stop: (id) => api("POST", `/_sme/async_requests/break/${id}`),
    remove: (id) => api("DELETE", `/_sme/async_requests/delete/${id}`),
    failure: async (id) => {
      const status = await api("GET", `/_sme/async_requests/status/${id}`);
      return status.error?.reason ?? status.error ?? "the search failed";
    } },
};

async function failureOf(read) {
  try {
    const answer = await read();
    return answer?.error?.reason ?? "the search failed";
  } catch (err) {
    return err.message;
  }
}

async function stopSearch(item) {
  await CONTROL[item.kind].stop(item.id);
  await refreshSearches();
}

async function deleteSearch(item) {
  await CONTROL[item.kind].remove(item.id);
  if (state.current?.id === item.id) {
    state.current = null;
    $("current").hidden = true;
    $("results").hidden = true;
  }
  $("mine-status").textContent = `Deleted ${LABELS[item.kind]} search ${item.id}.`;
  await refreshSearches();
}

/** Makes ``item`` the shown search: its status, and its first page once it has rows. */
function open(item) {
  state.current = { ...item };
  if (typeof item.query === "string") {  // the editor holds what is open: a filter or a re-run starts from it
    $("language").value = item.kind;
    $("query").value = item.query;
    if (item.index) $("index").value = item.index;
    syncLanguage();
  }
  state.page = null;
  $("page-from").value = 0;
  $("search-error").hidden = true;
  $("current").hidden = false;
  $("results").hidden = true;
  $("timeline").hidden = true;
  showCurrent();
  if (FINAL.has(item.state)) guarded(finished, "search-error")();
  refreshSearches();
}

function showCurrent() {
  const cur = state.current;
  if (!cur) return;
  const done = FINAL.has(cur.state);
  $("status").textContent = `${LABELS[cur.kind]} search ${cur.state.toLowerCase()}` +
    (cur.rows !== undefined && cur.rows !== null ? `: ${cur.rows} rows` : "");
  $("current").dataset.state = cur.state;
  $("current").dataset.id = cur.id;
  $("progress").value = done && cur.state === "COMPLETED" ? 1 : (cur.progress ?? 0);
  $("partial").hidden = !cur.partial;
  const ms = done && cur.duration_ms != null ? cur.duration_ms : Date.now() - (cur.started_ms ?? state.submittedAt);
  $("elapsed").textContent = formatDuration(ms);
  $("stop").hidden = done || !CONTROL[cur.kind].stop;
  $("cancel").hidden = done;
  $("delete").hidden = !done;
}

async function finished() {
  const cur = state.current;
  if (cur.state === "FAILED") {
    $("search-error").textContent = await CONTROL[cur.kind].failure(cur.id);
    $("search-error").hidden = false;
    return;
  }
  await loadPage(0);
}

// --- my searches ------------------------------------------------------------------------------

async function refreshSearches() {
  clearTimeout(state.timer);
  try {
    state.searches = (await api("GET", "/_console/api/searches")).searches;
  } catch (err) {
    if (err.status === 401) return;
    $("mine-status").textContent = err.message;
  }
  renderSearches();
  const cur = state.current;
  const listed = cur && state.searches.find((s) => s.id === cur.id);
  if (listed) {
    const wasDone = FINAL.has(cur.state);
    Object.assign(cur, listed);
    showCurrent();
    if (!wasDone && FINAL.has(cur.state)) guarded(finished, "search-error")();
  }
  const busy = state.searches.some((s) => !FINAL.has(s.state));
  if (!$("app").hidden) state.timer = setTimeout(refreshSearches, busy ? POLL_RUNNING_MS : POLL_IDLE_MS);
}

/** A handler whose failure is told to the user (in ``where``) rather than lost as an
 * unhandled rejection. */
function guarded(action, where = "mine-status") {
  return async (...args) => {
    try {
      await action(...args);
    } catch (err) {
      if (err.status === 401) return;  // the login is shown
      $(where).textContent = err.message;
      $(where).hidden = false;
    }
  };
}

function button(label, testid, action, title) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.testid = testid;
  if (title) b.setAttribute("aria-label", title);
  b.addEventListener("click", guarded(action));
  return b;
}

function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content);
  else td.textContent = content ?? "";
  return td;
}

/** The list updated in place, row by row (a row's buttons are rebuilt only when its
 * actions change), so a poll neither loses the keyboard focus nor a click on its way. */
function renderSearches() {
  const body = $("searches-body");
  const rows = new Map([...body.rows].map((tr) => [tr.dataset.id, tr]));
  state.searches.forEach((item, i) => {
    let tr = rows.get(item.id);
    if (!tr) tr = newSearchRow(item);
    rows.delete(item.id);
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] ?? null);
    fillSearchRow(tr, item);
  });
  rows.forEach((tr) => tr.remove());
  const status = $("mine-status");
  if (!state.searches.length) status.textContent = "No searches yet.";
  else if (status.textContent === "No searches yet.") status.textContent = "";
}

function newSearchRow(item) {
  const tr = document.createElement("tr");
  tr.dataset.testid = "search-row";
  tr.dataset.id = item.id;
  cell(tr, LABELS[item.kind]);
  const query = cell(tr, item.index ? `${item.index}: ${item.query}` : item.query);
  query.className = "query-text";
  query.title = item.query;
  cell(tr, "").dataset.testid = "search-state";
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.setAttribute("aria-label", `Progress of ${LABELS[item.kind]} search ${item.id}`);
  cell(tr, bar);
  cell(tr, item.started_ms ? new Date(item.started_ms).toLocaleString() : "");
  cell(tr, "");
  cell(tr, "").dataset.testid = "search-rows";
  cell(tr, "").className = "actions";
  return tr;
}

function fillSearchRow(tr, item) {
  const [, , stateCell, progressCell, , durationCell, rowsCell, actionsCell] = tr.cells;
  tr.dataset.state = item.state;
  tr.classList.toggle("selected", state.current?.id === item.id);
  stateCell.textContent = item.partial ? `${item.state} (partial)` : item.state;
  progressCell.firstChild.value = item.progress ?? 0;
  durationCell.textContent = item.duration_ms != null ? formatDuration(item.duration_ms) : "";
  rowsCell.textContent = item.rows ?? "";
  const done = FINAL.has(item.state);
  const actions = `${done}:${item.state === "FAILED"}`;
  if (actionsCell.dataset.actions === actions) return;
  actionsCell.dataset.actions = actions;
  const what = `${LABELS[item.kind]} search ${item.id}`;
  const find = () => state.searches.find((s) => s.id === item.id) ?? item;
  const list = [button("Open", "open", () => open(find()), `Open ${what}`)];
  if (!done && CONTROL[item.kind].stop) list.push(button("Stop", "stop-search", () => stopSearch(item), `Stop ${what}`));
  list.push(button("Delete", "delete-search", () => deleteSearch(item), `Delete ${what}`));
  if (done && item.state !== "FAILED") {
    list.push(button("Download", "download", () => downloadSearch(item), `Download ${what}`));
  }
  actionsCell.replaceChildren(...list);
}

/** The file through fetch (the key is a header) handed to the browser as a Blob link. */
async function downloadSearch(item) {
  const format = $("dl-format").value;
  const all = $("dl-all").checked;
  const body = { file_type: format, compress_results: $("dl-zip").checked, download_all_results: all,
    file_name: `esquire-${item.kind}-${item.id.slice(0, 8)}` };
  if (!all) body.download_results_size = Math.max(1, Number($("dl-size").value) || 1);
  $("mine-status").textContent = `Preparing the ${format.toUpperCase()} file…`;
  const resp = await fetch(`/_console/api/searches/${item.id}/_download`,
    { method: "POST", headers: headers(true), body: JSON.stringify(body) });
  if (!resp.ok) {
    const text = await resp.text();
    $("mine-status").textContent = new ApiError(resp.status, text ? JSON.parse(text) : null).message;
    return;
  }
  const named = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") ?? "");
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = named ? named[1] : `${body.file_name}.${body.compress_results ? "zip" : format}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  $("mine-status").textContent = `Downloaded ${a.download}.`;
}

// --- results ----------------------------------------------------------------------------------

function pageSize() {
  return Number($("page-size").value);
}

async function loadPage(from) {
  const cur = state.current;
  const start = Math.max(0, from);
  const page = await api("GET", `/_console/api/searches/${cur.id}/rows?from=${start}&to=${start + pageSize()}`);
  if (state.current !== cur) return;
  state.page = page;
  $("page-from").value = page.from;
  renderPage(page);
  if (cur.kind === "sml") await loadStats(cur);
  else renderFields(pageStats(tableOf(page)), `Top values in rows ${page.from + 1}–${page.to}`);
}

/** One shape for every language's page: columns, and groups (an EQL sequence each) of rows
 * whose cells follow the columns, each with its raw JSON. */
function tableOf(page) {
  if (page.kind === "esql") {
    const names = page.columns.map((c) => c.name);
    const rows = page.rows.map((values) => ({ cells: values, raw: Object.fromEntries(names.map((n, i) => [n, values[i]])) }));
    return { columns: page.columns, groups: [{ label: null, rows }] };
  }
  if (page.kind === "sml") {
    const rows = page.rows.map((event) => ({ cells: page.columns.map((c) => pick(event, c.name)), raw: event }));
    return { columns: page.columns, groups: [{ label: null, rows }] };
  }
  const flat = (hit) => ({ _index: hit._index, _id: hit._id, ...flatten(hit._source ?? {}) });
  const groups = page.hits_kind === "sequences"
    ? page.rows.map((seq, i) => ({ label: `Sequence ${page.from + i + 1}` + (seq.join_keys?.length ? ` by ${JSON.stringify(seq.join_keys)}` : ""),
      events: seq.events ?? [] }))
    : [{ label: null, events: page.rows }];
  const names = [...new Set(groups.flatMap((g) => g.events.flatMap((e) => Object.keys(flat(e)))))];
  const columns = names.map((name) => ({ name, type: typeOf(groups.flatMap((g) => g.events.map((e) => flat(e)[name]))) }));
  return { columns, groups: groups.map((g) => ({ label: g.label,
    rows: g.events.map((e) => ({ cells: names.map((n) => flat(e)[n]), raw: e })) })) };
}

/** A dotted column's value in a nested event (``host.name``), or a flat key of that name. */
function pick(event, name) {
  if (name in event) return event[name];
  let value = event;
  for (const part of name.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}

function flatten(source, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(source)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) flatten(v, `${prefix}${k}.`, out);
    else out[prefix + k] = v;
  }
  return out;
}

function typeOf(values) {
  const kinds = new Set(values.filter((v) => v !== null && v !== undefined).map((v) =>
    Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "long" : "double")
      : typeof v === "string" ? "keyword" : typeof v === "boolean" ? "boolean" : "object"));
  return kinds.size === 1 ? [...kinds][0] : kinds.size ? "mixed" : null;
}

function show(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function renderPage(page) {
  const table = tableOf(page);
  const el = $("result-table");
  el.replaceChildren();
  el.dataset.kind = page.kind;
  const caption = el.createCaption();
  caption.textContent = `${page.total} ${page.kind === "eql" ? page.hits_kind : "rows"}` + (page.partial ? " (partial)" : "");
  const head = el.createTHead().insertRow();
  for (const c of table.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.testid = "column";
    th.append(c.name);
    const type = document.createElement("span");
    type.className = "type";
    type.dataset.testid = "column-type";
    type.textContent = c.type ?? "null";
    th.append(type);
    head.append(th);
  }
  head.append(Object.assign(document.createElement("th"), { scope: "col", textContent: "JSON" }));
  for (const group of table.groups) {
    const body = el.createTBody();
    if (group.label) {
      body.dataset.testid = "sequence";
      const th = document.createElement("th");
      th.colSpan = table.columns.length + 1;
      th.scope = "rowgroup";
      th.textContent = group.label;
      body.insertRow().append(th);
    }
    for (const row of group.rows) {
      const tr = body.insertRow();
      tr.dataset.testid = "result-row";
      row.cells.forEach((v) => { cell(tr, show(v)); });
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "raw";
      const pre = document.createElement("pre");
      pre.dataset.testid = "raw-json";
      pre.textContent = JSON.stringify(row.raw, null, 2);
      details.append(summary, pre);
      cell(tr, details);
    }
  }
  const last = page.from >= page.to ? page.from : page.to;
  $("page-info").textContent = page.total ? `Rows ${page.from + 1}–${last} of ${page.total}` : "No rows";
  $("page-info").dataset.from = page.from;
  $("page-info").dataset.to = page.to;
  $("prev").disabled = page.from === 0;
  $("next").disabled = page.to >= page.total;
  $("results").hidden = false;
}

/** The top values of each column of the shown page (the SML sidebar's shape). */
function pageStats(table) {
  const rows = table.groups.flatMap((g) => g.rows);
  return table.columns.map((c, i) => {
    const counts = new Map();
    for (const row of rows) {
      const v = row.cells[i];
      if (v === null || v === undefined || typeof v === "object") continue;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const topValues = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([value, count]) => ({ value, count }));
    return { field: c.name, count: [...counts.values()].reduce((a, b) => a + b, 0), distinctCount: counts.size, topValues };
  });
}

async function loadStats(cur) {
  const answer = await api("GET", `/_sme/async_requests/response/${cur.id}?from=0&to=0`);
  if (state.current !== cur) return;
  if (answer.sidebar) renderFields(answer.sidebar.fields, `Top values of all ${answer.sidebar.totalEvents} events`);
  if (answer.timeline) renderTimeline(answer.timeline);
}

function renderFields(fields, scope) {
  $("fields-scope").textContent = scope;
  const list = $("field-list");
  list.replaceChildren();
  for (const f of fields) {
    const details = document.createElement("details");
    details.dataset.testid = "sidebar-field";
    details.dataset.field = f.field;
    const summary = document.createElement("summary");
    summary.textContent = `${f.field} (${f.distinctCount ?? f.topValues.length})`;
    details.append(summary);
    const ul = document.createElement("ul");
    for (const top of f.topValues ?? []) {
      const li = document.createElement("li");
      const b = button(show(top.value), "sidebar-value", () => addFilter(f.field, top.value),
        `Filter on ${f.field} = ${show(top.value)}`);
      b.dataset.field = f.field;
      b.dataset.value = show(top.value);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = top.count;
      li.append(b, count);
      ul.append(li);
    }
    details.append(ul);
    list.append(details);
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** The timeline as bars, one per interval, heights relative to the busiest. */
function renderTimeline(timeline) {
  const svg = $("timeline-svg");
  svg.replaceChildren();
  const buckets = timeline.fields ?? [];
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const width = 600 / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    const h = (b.count / max) * 76;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", i * width + 0.5);
    rect.setAttribute("y", 80 - h);
    rect.setAttribute("width", Math.max(1, width - 1));
    rect.setAttribute("height", h);
    rect.setAttribute("class", "bar");
    rect.dataset.testid = "timeline-bar";
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${b[timeline.field]}: ${b.count}`;
    rect.append(title);
    svg.append(rect);
  });
  $("timeline-caption").textContent = `Events per ${timeline.interval} (${timeline.field})`;
  $("timeline").hidden = false;
}

// --- filters from values ------------------------------------------------------------------------

function literal(value) {
  return typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(String(value));
}

/** ``field == value`` added as the language writes it: a last pipe for SML and ES|QL; for
 * EQL, and-ed to the condition (of each of a sequence's or sample's queries). */
function addFilter(field, value) {
  const kind = state.current?.kind ?? language();
  let query = (state.current?.query ?? $("query").value).trimEnd();
  if (kind === "sml") {
    query += `\n| where ${/^[A-Za-z_@][A-Za-z0-9_.@]*$/.test(field) ? field : `"${field}"`} == ${literal(value)}`;
  } else {
    const name = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(field) ? field : `\`${field}\``;
    const test = `${name} == ${literal(value)}`;
    if (kind === "esql") query += `\n| WHERE ${test}`;
    else if (/^\s*(sequence|sample)\b/i.test(query)) {
      query = query.replace(/\[\s*([^\]]*?)\s+where\s+([^\]]*?)\s*\]/gi, (_, category, cond) => `[${category} where (${cond}) and ${test}]`);
    } else query = query.replace(/^(\s*\S+\s+where\s+)([\s\S]*)$/i, (_, head, cond) => `${head}(${cond}) and ${test}`);
  }
  $("language").value = kind;
  syncLanguage();
  $("query").value = query;
  $("query").focus();
}

// --- small things -----------------------------------------------------------------------------

function formatDuration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function wire() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("query-form").addEventListener("submit", run);
  $("query").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e);
  });
  $("query").addEventListener("input", clearQueryError);
  $("language").addEventListener("change", syncLanguage);
  $("range").addEventListener("change", syncLanguage);
  $("history").addEventListener("change", pickHistory);
  const onCurrent = (type, id, action) => $(id).addEventListener(type, guarded(action, "search-error"));
  onCurrent("click", "stop", () => stopSearch(state.current));
  onCurrent("click", "cancel", () => deleteSearch(state.current));
  onCurrent("click", "delete", () => deleteSearch(state.current));
  onCurrent("click", "prev", () => loadPage(state.page.from - pageSize()));
  onCurrent("click", "next", () => loadPage(state.page.to));
  onCurrent("change", "page-size", () => loadPage(state.page?.from ?? 0));
  onCurrent("change", "page-from", () => loadPage(Number($("page-from").value) || 0));
  setInterval(() => { if (state.current && !FINAL.has(state.current.state)) showCurrent(); }, 100);
  syncLanguage();
}

wire();
start().catch((err) => showLogin(err.message));
