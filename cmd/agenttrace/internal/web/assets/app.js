// agenttrace viewer: runs, a run (span tree and waterfall), agents.
// Plain JavaScript, no build step; every value from the API goes into the
// page as text (never as HTML).
"use strict";

const ROW = 24; // px, the height of a span row (see --row)
const MARKER = "_agenttrace";

// ---- helpers -------------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) for (const k in attrs) {
    const v = attrs[k];
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") el.style.cssText = v; // CSSOM: allowed by the page's style-src 'self'

    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

class AuthError extends Error {}

async function api(path) {
  const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new AuthError("signed out");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || res.statusText);
  return body;
}

const nf = new Intl.NumberFormat("en-US");
function fmtInt(n) { return n == null ? "–" : nf.format(n); }
function fmtCost(v, cur) {
  if (!cur && !v) return "–";
  const d = v !== 0 && Math.abs(v) < 0.01 ? 6 : 4;
  return v.toFixed(d).replace(/0+$/, "").replace(/\.$/, ".00") + " " + (cur || "USD");
}
function fmtDur(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const m = Math.floor(ms / 60000), s = Math.round((ms % 60000) / 1000);
  return m + " min " + s + " s";
}
function pad(n) { return String(n).padStart(2, "0"); }
function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}
function ms(iso) { return iso ? Date.parse(iso) : NaN; }
function badge(status) { return h("span", { class: "badge s-" + status, "data-status": status, text: status }); }
function say(msg) { document.getElementById("live").textContent = msg; }
function shortID(id) { return id.length > 12 ? id.slice(0, 6) + "…" + id.slice(-4) : id; }

// ---- routing -------------------------------------------------------------

let current = null; // the page shown: {stop()}

function navigate(url, replace) {
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", () => route());

function route() {
  if (current) current.stop();
  current = null;
  const main = document.getElementById("main");
  main.replaceChildren();
  const path = location.pathname;
  let page = "runs";
  let m;
  if ((m = path.match(/^\/runs\/([^/]+)$/))) { page = "run"; current = runPage(main, decodeURIComponent(m[1])); }
  else if (path === "/agents") { page = "agents"; current = agentsPage(main); }
  else current = runsPage(main);
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === page || (page === "run" && a.dataset.page === "runs")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// poller calls fn every `every` ms while the tab is visible, backing off to
// four times fn's own duration when reads are slow (a big live run).
function poller(fn, every) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    let wait = every;
    if (!document.hidden) {
      const t0 = performance.now();
      try { await fn(); } catch (e) { if (e instanceof AuthError) return; }
      wait = Math.max(every, 4 * (performance.now() - t0));
    }
    if (!stopped) timer = setTimeout(tick, wait);
  };
  timer = setTimeout(tick, every);
  return { stop() { stopped = true; clearTimeout(timer); } };
}

// ---- runs ----------------------------------------------------------------

// agentList reads the agents and versions for the runs page's menus
// (without their statistics, which read every run).
let agentsCache = null;
async function agentList() {
  if (!agentsCache) agentsCache = api("/viewer/api/agents?stats=false").then((b) => b.agents).catch((e) => { agentsCache = null; throw e; });
  return agentsCache;
}

const RUN_FILTERS = ["agent", "version", "status", "user", "group", "search", "from", "to", "sort", "pageSize", "page"];

function localInput(iso) { // RFC 3339 -> datetime-local value
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

function runsPage(main) {
  const params = new URLSearchParams(location.search);
  const val = (k) => params.get(k) || "";
  main.append(h("h1", { text: "Runs" }));
  const agentSel = h("select", { name: "agent", id: "f-agent" }, h("option", { value: "", text: "All agents" }));
  const versionSel = h("select", { name: "version", id: "f-version" }, h("option", { value: "", text: "All versions" }));
  const statusSel = h("select", { name: "status", id: "f-status" },
    ["", "active", "pending", "complete", "failed", "cancelled", "terminated"].map((s) =>
      h("option", { value: s, text: s || "Any status", selected: val("status") === s })));
  const sortSel = h("select", { name: "sort", id: "f-sort" },
    h("option", { value: "desc", text: "Newest first" }), h("option", { value: "asc", text: "Oldest first", selected: val("sort") === "asc" }));
  const sizeSel = h("select", { name: "pageSize", id: "f-size" },
    ["20", "50", "100", "200"].map((s) => h("option", { value: s, text: s, selected: (val("pageSize") || "20") === s })));
  const input = (name, label, type, cls) => h("label", null, label,
    h("input", { name, id: "f-" + name, type: type || "text", value: type === "datetime-local" ? localInput(val(name)) : val(name), class: cls }));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter runs" },
    h("label", null, "Agent", agentSel), h("label", null, "Version", versionSel), h("label", null, "Status", statusSel),
    input("user", "User", "text", "short"), input("group", "Group", "text", "short"),
    input("search", "Search names", "search"), input("from", "Started from", "datetime-local"), input("to", "Started to", "datetime-local"),
    h("label", null, "Sort", sortSel), h("label", null, "Per page", sizeSel),
    h("button", { type: "submit", text: "Apply" }));
  const summary = h("p", { class: "muted", id: "runs-summary", "aria-live": "polite" });
  const tbody = h("tbody");
  const table = h("table", { id: "runs" },
    h("thead", null, h("tr", null, ["Run", "Agent", "Version", "Status", "User", "Group", "Channel", "Started", "Duration"].map((t) => h("th", { scope: "col", text: t })),
      ["Spans", "Tokens", "Cost", "TTFT"].map((t) => h("th", { scope: "col", class: "num", text: t })))), tbody);
  const pager = h("nav", { class: "pager", "aria-label": "Pages of runs" });
  main.append(form, summary, h("div", { class: "tablewrap" }, table), pager);

  const query = () => {
    const q = new URLSearchParams();
    for (const k of RUN_FILTERS) {
      let v = params.get(k);
      if (!v) continue;
      if (k === "from" || k === "to") { const d = new Date(v); if (isNaN(d)) continue; v = d.toISOString(); }
      q.set(k, v);
    }
    return q;
  };

  const submit = (e) => {
    if (e) e.preventDefault();
    const q = new URLSearchParams();
    for (const el of form.elements) {
      if (!el.name || !el.value) continue;
      if (el.name === "sort" && el.value === "desc") continue;
      if (el.name === "pageSize" && el.value === "20") continue;
      q.set(el.name, el.type === "datetime-local" ? new Date(el.value).toISOString() : el.value);
    }
    const s = q.toString();
    navigate("/runs" + (s ? "?" + s : ""));
  };
  form.addEventListener("submit", submit);
  for (const sel of [agentSel, versionSel, statusSel, sortSel, sizeSel]) sel.addEventListener("change", () => {
    if (sel === agentSel) versionSel.value = "";
    submit();
  });

  let agents = [];
  const fillVersions = () => {
    versionSel.replaceChildren(h("option", { value: "", text: "All versions" }));
    const a = agents.find((x) => x.id === agentSel.value);
    for (const v of a ? a.versions : []) versionSel.append(h("option", { value: v.id, text: "v" + v.number + (v.name ? " · " + v.name : ""), selected: val("version") === v.id }));
    versionSel.disabled = !a;
  };
  agentList().then((list) => {
    agents = list;
    for (const a of list) agentSel.append(h("option", { value: a.id, text: a.name || a.externalId || a.id, selected: val("agent") === a.id }));
    fillVersions();
  }).catch(() => {});
  fillVersions();

  let lastBody = "";
  const render = (page) => {
    const body = JSON.stringify(page.items);
    if (body !== lastBody) {
      const prev = new Map([...tbody.rows].map((r) => [r.dataset.id, r.dataset.status]));
      lastBody = body;
      tbody.replaceChildren(...page.items.map(runRow));
      if (!page.items.length) tbody.append(h("tr", null, h("td", { colspan: 13, class: "muted", text: "No runs match these filters." })));
      for (const r of page.items) if (prev.has(r.id) && prev.get(r.id) !== r.status) say("Run " + (r.name || r.id) + " is now " + r.status);
    }
    const pages = Math.max(1, Math.ceil(page.total / page.pageSize));
    summary.textContent = fmtInt(page.total) + (page.total === 1 ? " run" : " runs") + (page.total ? " · page " + fmtInt(page.page) + " of " + fmtInt(pages) : "");
    const link = (p, text) => {
      const q = query(); if (p === 1) q.delete("page"); else q.set("page", p);
      const s = q.toString();
      const off = p < 1 || p > pages || p === page.page;
      return h("a", { href: "/runs" + (s ? "?" + s : ""), "data-nav": true, "aria-disabled": off ? "true" : null, tabindex: off ? "-1" : null, text });
    };
    pager.replaceChildren(link(1, "« First"), link(page.page - 1, "‹ Previous"), h("span", { text: fmtInt(page.page) + " / " + fmtInt(pages) }), link(page.page + 1, "Next ›"), link(pages, "Last »"));
  };
  const load = async () => render(await api("/viewer/api/runs?" + query().toString()));
  load().catch((e) => { if (!(e instanceof AuthError)) summary.textContent = "Could not load runs: " + e.message; });
  // Live: the page is read again every 2 s, and rows whose run changed are redrawn.
  const live = poller(load, 2000);
  const onKey = (e) => { if (e.key === "/" && !/INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName)) { e.preventDefault(); form.elements.search.focus(); } };
  document.addEventListener("keydown", onKey);
  return { stop() { live.stop(); document.removeEventListener("keydown", onKey); } };
}

function runRow(r) {
  const c = r.spanCounts;
  return h("tr", { "data-id": r.id, "data-status": r.status },
    h("td", null, h("a", { href: "/runs/" + encodeURIComponent(r.id), "data-nav": true, text: r.name || shortID(r.id), title: r.id })),
    h("td", { text: r.agentName || "–" }),
    h("td", { text: r.agentVersion ? "v" + r.agentVersion + (r.versionName ? " · " + r.versionName : "") : "–" }),
    h("td", null, badge(r.status)),
    h("td", { text: r.userIdentifier || "–" }), h("td", { text: r.groupIdentifier || "–" }), h("td", { text: r.channel || "–" }),
    h("td", { text: fmtTime(r.startDate || r.insertedAt) }),
    h("td", { text: r.durationMs != null ? fmtDur(r.durationMs) : (r.status === "active" ? "running" : "–") }),
    h("td", { class: "num" }, fmtInt(c.total), c.failed ? h("span", { class: "failcount", title: c.failed + " failed" }, " (" + c.failed + " failed)") : ""),
    h("td", { class: "num", "data-col": "tokens", text: fmtInt(r.usage.totalTokens) }),
    h("td", { class: "num", "data-col": "cost", text: fmtCost(r.costs.total, r.costs.currency) }),
    h("td", { class: "num", text: r.timeToFirstToken != null ? fmtDur(r.timeToFirstToken) : "–" }));
}

// ---- payload reading ------------------------------------------------------

function obj(v) { return v && typeof v === "object" && !Array.isArray(v) ? v : null; }

// spanFacts reads what a span reports: usage, cost and time to first token
// (from its result, else its payload), as the server's rollup does.
function spanFacts(s) {
  const res = obj(s.result_payload) || {}, par = obj(s.payload) || {};
  const u = obj(res.token_usage) || obj(par.token_usage);
  const c = obj(res.cost) || obj(par.cost);
  const f = {};
  if (u) {
    f.prompt = +u.prompt_tokens || 0; f.completion = +u.completion_tokens || 0;
    f.tokens = +u.total_tokens || f.prompt + f.completion;
  }
  if (c) { f.currency = c.currency || "USD"; f.cost = +c.total || (+c.prompt || 0) + (+c.completion || 0) + (+c.other || 0); }
  for (const p of [res, par]) {
    if (f.ttft != null) break;
    if (typeof p.ttft_ms === "number" && p.ttft_ms >= 0) f.ttft = p.ttft_ms;
    else if (typeof p.first_token_at === "string" && s.started_at) {
      const d = Date.parse(p.first_token_at) - Date.parse(s.started_at);
      if (d >= 0) f.ttft = d;
    }
  }
  return f;
}

// markers lists what was done to a payload: truncated, redacted, an error.
function markers(p) {
  const out = [];
  const m = obj(p) && obj(p[MARKER]);
  if (m) {
    if (m.truncated) out.push({ kind: "truncated", text: "truncated" + (m.original_bytes ? " (was " + fmtInt(m.original_bytes) + " bytes)" : "") });
    if (m.redacted) out.push({ kind: "redacted", text: "redacted" + (Array.isArray(m.fields) ? ": " + m.fields.join(", ") : "") });
    if (m.error) out.push({ kind: "error", text: m.error + " error" + (m.message ? ": " + m.message : "") });
  }
  let red = 0, cut = 0;
  const walk = (v, depth) => {
    if (depth > 20) return;
    if (typeof v === "string") {
      if (/^\[redacted\]$|^\*{3,}$|^<redacted>$/i.test(v)) red++;
      else if (v.endsWith("…[truncated]")) cut++;
    } else if (v && typeof v === "object") for (const k in v) { if (k.endsWith("…[truncated]")) cut++; walk(v[k], depth + 1); }
  };
  walk(p, 0);
  if (red && !out.some((x) => x.kind === "redacted")) out.push({ kind: "redacted", text: "redacted (" + red + (red === 1 ? " value)" : " values)") });
  if (cut && !out.some((x) => x.kind === "truncated")) out.push({ kind: "truncated", text: "truncated (" + cut + (cut === 1 ? " place)" : " places)") });
  return out;
}

function spanLabel(s) {
  if (s.summary) return s.summary;
  const p = obj(s.payload) || {};
  return p.name || p.tool || p.model || p.operation || p.query || "";
}

// ---- JSON viewer ----------------------------------------------------------

const JSON_OPEN_DEPTH = 2, JSON_MAX_ITEMS = 200;

function jsonView(v) {
  return h("div", { class: "json" }, jsonNode(v, null, 0));
}

function jsonScalar(v) {
  if (typeof v === "string") return h("span", { class: "str", text: JSON.stringify(v) });
  if (typeof v === "number") return h("span", { class: "num", text: String(v) });
  return h("span", { class: "lit", text: String(v) });
}

function jsonNode(v, key, depth) {
  const k = key == null ? null : h("span", { class: "k", text: JSON.stringify(key) + ": " });
  if (v === null || typeof v !== "object") return h("div", { class: "leaf" }, k, jsonScalar(v));
  const arr = Array.isArray(v);
  const keys = arr ? null : Object.keys(v);
  const n = arr ? v.length : keys.length;
  const [o, c] = arr ? ["[", "]"] : ["{", "}"];
  if (n === 0) return h("div", { class: "leaf" }, k, o + c);
  const d = h("details", { open: depth < JSON_OPEN_DEPTH }, h("summary", null, k, o, h("span", { class: "ellip", text: " " + n + (arr ? " items " : " keys ") }), c));
  let filled = false;
  const fill = () => {
    if (filled) return;
    filled = true;
    const lim = Math.min(n, JSON_MAX_ITEMS);
    for (let i = 0; i < lim; i++) d.append(arr ? jsonNode(v[i], i, depth + 1) : jsonNode(v[keys[i]], keys[i], depth + 1));
    if (n > lim) {
      const more = h("button", { type: "button", text: "show " + (n - lim) + " more" });
      more.addEventListener("click", () => { more.remove(); for (let i = lim; i < n; i++) d.append(arr ? jsonNode(v[i], i, depth + 1) : jsonNode(v[keys[i]], keys[i], depth + 1)); });
      d.append(more);
    }
  };
  if (d.open) fill(); else d.addEventListener("toggle", fill);
  return d;
}

// ---- conversation ---------------------------------------------------------

function messageView(m) {
  const role = String(m.role || "message");
  const box = h("div", { class: "msg " + role.replace(/[^a-z]/gi, "") }, h("div", { class: "role", text: role + (m.name ? " · " + m.name : "") + (m.tool_call_id ? " · result of " + m.tool_call_id : "") }));
  if (m.content != null && m.content !== "") box.append(h("div", { class: "text", text: typeof m.content === "string" ? m.content : JSON.stringify(m.content, null, 2) }));
  for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls : []) box.append(toolCallView(tc));
  return box;
}

function toolCallView(tc) {
  let args = tc.arguments;
  if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* shown as text */ } }
  return h("div", { class: "toolcall" }, h("div", null, h("strong", { text: "tool call " }), h("code", { text: String(tc.name || "?") }), tc.id ? h("span", { class: "muted", text: " " + tc.id }) : ""),
    args != null ? (typeof args === "object" ? jsonView(args) : h("div", { class: "text", text: String(args) })) : "");
}

function conversation(s) {
  const p = obj(s.payload) || {}, r = obj(s.result_payload) || {};
  const msgs = [];
  if (typeof p.system === "string" && p.system) msgs.push({ role: "system", content: p.system });
  if (Array.isArray(p.messages)) msgs.push(...p.messages.filter(obj));
  const out = [];
  if (Array.isArray(r.messages)) out.push(...r.messages.filter(obj));
  else if (r.text || Array.isArray(r.tool_calls)) out.push({ role: "assistant", content: r.text || "", tool_calls: r.tool_calls });
  if (!msgs.length && !out.length) return null;
  const box = h("div", { class: "conv", id: "conversation" }, msgs.map(messageView));
  if (out.length) { box.append(h("div", { class: "muted", text: "response" + (r.finish_reason ? " · " + r.finish_reason : "") })); box.append(...out.map(messageView)); }
  return box;
}

// ---- a run ------------------------------------------------------------------

function buildTree(spans) {
  const byID = new Map();
  const nodes = spans.map((s, i) => {
    const n = { s, i, kids: [], depth: 0, parent: null, facts: spanFacts(s), start: ms(s.started_at || s.inserted_at), end: ms(s.finished_at) };
    byID.set(s.id, n);
    return n;
  });
  const roots = [];
  for (const n of nodes) {
    const p = n.s.parent_span_id && byID.get(n.s.parent_span_id);
    if (p && p !== n) { n.parent = p; p.kids.push(n); } else roots.push(n);
  }
  const order = (a, b) => (a.start - b.start) || (a.i - b.i);
  roots.sort(order);
  let t0 = Infinity, t1 = -Infinity;
  const now = Date.now();
  // Iterative depth-first pass: depths, time bounds, subtree rollups.
  const post = [];
  const stack = roots.map((r) => [r, 0]).reverse();
  while (stack.length) {
    const [n, d] = stack.pop();
    n.depth = d;
    n.kids.sort(order);
    if (!isNaN(n.start)) { t0 = Math.min(t0, n.start); t1 = Math.max(t1, isNaN(n.end) ? now : n.end); }
    post.push(n);
    for (let i = n.kids.length - 1; i >= 0; i--) stack.push([n.kids[i], d + 1]);
  }
  for (let i = post.length - 1; i >= 0; i--) {
    const n = post[i], f = n.facts;
    const r = n.roll = { tokens: f.tokens || 0, cost: f.cost || 0, currency: f.currency || "", failed: n.s.status === "failed" ? 1 : 0, spans: 1 };
    for (const k of n.kids) {
      r.tokens += k.roll.tokens; r.spans += k.roll.spans; r.failed += k.roll.failed;
      if (k.roll.currency && (!r.currency || r.currency === k.roll.currency)) { r.currency = k.roll.currency; r.cost += k.roll.cost; }
    }
  }
  if (!isFinite(t0)) { t0 = now; t1 = now + 1; }
  return { byID, roots, t0, t1: Math.max(t1, t0 + 1), order: post };
}

function runPage(main, id) {
  let model = null, detail = null, tree = null, collapsed = new Set(), selected = null, visible = [], search = "", matches = [];
  const params = new URLSearchParams(location.search);
  selected = params.get("span");
  const title = h("h1", null, "Run ", h("span", { class: "muted", text: shortID(id) }));
  const facts = h("dl", { class: "facts", id: "run-facts" });
  const failBtn = h("button", { type: "button", id: "next-failed", title: "Next failed span (f)" }, "Next failed");
  const searchBox = h("input", { type: "search", id: "span-search", placeholder: "Find spans (/)", "aria-label": "Find spans" });
  const countLine = h("span", { class: "muted", id: "span-count" });
  const toolbar = h("div", { class: "toolbar" }, searchBox, failBtn,
    h("button", { type: "button", onclick: () => { collapsed.clear(); refresh(); } }, "Expand all"),
    h("button", { type: "button", onclick: () => { for (const n of model.order) if (n.kids.length && n.depth > 0) collapsed.add(n.s.id); refresh(); } }, "Collapse all"),
    countLine);
  const ticks = h("div", { class: "ticks" });
  const axis = h("div", { class: "axis", "aria-hidden": "true" }, h("div", { style: "padding:3px 6px", text: "Span" }), ticks);
  const spacer = h("div", { class: "spacer" });
  const viewport = h("div", { class: "viewport", id: "tree", role: "tree", tabindex: "0", "aria-label": "Spans of the run" }, spacer);
  detail = h("section", { class: "detail", id: "span-detail", "aria-label": "Selected span" }, h("p", { class: "muted", text: "Select a span to see its payload and result." }));
  main.append(h("p", null, h("a", { href: "/runs", "data-nav": true, text: "‹ Runs" })), title, facts, toolbar,
    h("div", { class: "split" }, h("div", { class: "trace" }, axis, viewport), detail));

  const fact = (k, v, idAttr) => h("div", null, h("dt", { text: k }), h("dd", { id: idAttr, text: v }));
  const renderFacts = (d) => {
    const r = d.run, c = r.spanCounts;
    title.replaceChildren(r.name || "Run", " ", badge(r.status), " ", h("span", { class: "muted", text: shortID(r.id), title: r.id }));
    facts.replaceChildren(
      fact("Agent", r.agentName || "–"), fact("Version", r.agentVersion ? "v" + r.agentVersion + (r.versionName ? " · " + r.versionName : "") : "–"),
      fact("User", r.userIdentifier || "–"), fact("Group", r.groupIdentifier || "–"), fact("Channel", r.channel || "–"), fact("Session", r.sessionId || "–"),
      fact("Started", fmtTime(r.startDate || r.insertedAt)), fact("Duration", r.durationMs != null ? fmtDur(r.durationMs) : r.status === "active" ? "running" : "–"),
      fact("Spans", fmtInt(c.total) + " · " + c.complete + " complete · " + c.failed + " failed" + (c.active ? " · " + c.active + " active" : "") + (c.pending ? " · " + c.pending + " pending" : "") + (c.cancelled ? " · " + c.cancelled + " cancelled" : "")),
      fact("Tokens", fmtInt(r.usage.totalTokens) + " (" + fmtInt(r.usage.promptTokens) + " in · " + fmtInt(r.usage.completionTokens) + " out)", "run-tokens"),
      fact("Cost", fmtCost(r.costs.total, r.costs.currency), "run-cost"),
      fact("Time to first token", r.timeToFirstToken != null ? fmtDur(r.timeToFirstToken) : "–", "run-ttft"));
  };

  const flatten = () => {
    visible = [];
    const stack = model.roots.slice().reverse();
    while (stack.length) {
      const n = stack.pop();
      visible.push(n);
      if (!collapsed.has(n.s.id)) for (let i = n.kids.length - 1; i >= 0; i--) stack.push(n.kids[i]);
    }
    spacer.style.height = visible.length * ROW + "px";
  };

  const renderTicks = () => {
    const span = model.t1 - model.t0;
    ticks.replaceChildren(...[0, 0.25, 0.5, 0.75].map((f) => h("span", { style: "left:" + f * 100 + "%", text: fmtDur(span * f) })));
  };

  const rowEl = (n, idx) => {
    const s = n.s, span = model.t1 - model.t0;
    const open = isNaN(n.end);
    const st = isNaN(n.start) ? model.t0 : n.start, en = open ? (s.status === "active" ? Date.now() : st) : n.end;
    const left = ((st - model.t0) / span) * 100, width = Math.max(((en - st) / span) * 100, 0.15);
    const hasKids = n.kids.length > 0, isCol = collapsed.has(s.id);
    const label = spanLabel(s);
    const el = h("div", { class: "row s-" + s.status + (search && matches.includes(n) ? " match" : ""), role: "treeitem", id: "span-" + s.id,
      "data-id": s.id, "data-status": s.status, "aria-level": n.depth + 1, "aria-selected": s.id === selected ? "true" : "false",
      "aria-expanded": hasKids ? String(!isCol) : null, style: "top:" + idx * ROW + "px" },
      h("div", { class: "name", style: "padding-left:" + (4 + n.depth * 14) + "px" },
        h("button", { class: "tog", type: "button", tabindex: "-1", "aria-hidden": "true", text: hasKids ? (isCol ? "▸" : "▾") : "" }),
        h("span", { class: "dot" }), h("span", { class: "type", text: s.schema_title || s.schema_name }),
        h("span", { class: "label", text: label + (isCol ? "  (+" + fmtInt(n.roll.spans - 1) + (n.roll.failed ? ", " + fmtInt(n.roll.failed) + " failed" : "") + ")" : "") })),
      h("div", { class: "wf" }, h("div", { class: "bar" + (open && s.status === "active" ? " open" : ""), style: "left:" + left + "%;width:" + width + "%", title: fmtDur(en - st) }),
        n.facts.ttft != null && !isNaN(n.start) ? h("div", { class: "ttft", style: "left:" + (((Math.min(n.start + n.facts.ttft, en) - model.t0) / span) * 100) + "%", title: "first token after " + fmtDur(n.facts.ttft) }) : null,
        h("span", { class: "dur", style: left + width > 80 ? "right:" + (100 - left + 1) + "%" : "left:calc(" + (left + width) + "% + 4px)", text: open && s.status !== "active" ? s.status : fmtDur(en - st) })));
    return el;
  };

  let drawn = "";
  const draw = (force) => {
    if (!model) return;
    const top = viewport.scrollTop, hgt = Math.max(viewport.clientHeight, Math.min(window.innerHeight * 0.7, 640));
    const a = Math.max(0, Math.floor(top / ROW) - 15), b = Math.min(visible.length, Math.ceil((top + hgt) / ROW) + 15);
    const key = a + ":" + b;
    if (!force && key === drawn) return;
    drawn = key;
    const frag = document.createDocumentFragment();
    for (let i = a; i < b; i++) frag.append(rowEl(visible[i], i));
    spacer.replaceChildren(frag);
  };
  viewport.addEventListener("scroll", () => draw(false), { passive: true });

  const refresh = () => { flatten(); draw(true); };

  const reveal = (n) => { // expands the ancestors of n
    for (let p = n.parent; p; p = p.parent) collapsed.delete(p.s.id);
  };

  const scrollTo = (n) => {
    const i = visible.indexOf(n);
    if (i < 0) return;
    const top = i * ROW, hgt = viewport.clientHeight;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW > viewport.scrollTop + hgt) viewport.scrollTop = top + ROW - hgt;
  };

  const select = (sid, opts) => {
    const n = model && model.byID.get(sid);
    if (!n) return;
    selected = sid;
    reveal(n);
    flatten();
    scrollTo(n);
    draw(true);
    viewport.setAttribute("aria-activedescendant", "span-" + sid);
    const q = new URLSearchParams(location.search); q.set("span", sid);
    history.replaceState(null, "", location.pathname + "?" + q.toString());
    showDetail(n);
    if (opts && opts.focus) viewport.focus({ preventScroll: true });
  };

  const showDetail = (n) => {
    const s = n.s, f = n.facts, r = n.roll;
    const dur = !isNaN(n.start) && !isNaN(n.end) ? n.end - n.start : null;
    const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    const parts = [h("h2", null, badge(s.status), " ", (s.schema_title || s.schema_name) + (spanLabel(s) ? ": " + spanLabel(s) : ""))];
    parts.push(kv([["Span", s.id], ["Type", s.schema_name], ["Started", s.started_at ? "+" + fmtDur(n.start - model.t0) + " (" + fmtTime(s.started_at) + ")" : "–"],
      ["Duration", dur != null ? fmtDur(dur) : s.status === "active" ? "running" : "–"],
      f.tokens != null && ["Tokens", fmtInt(f.tokens) + " (" + fmtInt(f.prompt) + " in · " + fmtInt(f.completion) + " out)"],
      f.cost != null && ["Cost", fmtCost(f.cost, f.currency)], f.ttft != null && ["Time to first token", fmtDur(f.ttft)],
      n.kids.length && ["Subtree", fmtInt(r.spans) + " spans" + (r.failed ? ", " + r.failed + " failed" : "") + " · " + fmtInt(r.tokens) + " tokens · " + fmtCost(r.cost, r.currency)]]));
    const res = obj(s.result_payload);
    const err = res && (obj(res.error) || (typeof res.error === "string" ? { message: res.error } : null));
    if (s.status === "failed" && err) parts.push(h("h3", { text: "Error" }), h("div", { class: "errbox", id: "span-error", text: [err.type, err.message].filter(Boolean).join(": ") || JSON.stringify(err) }));
    const conv = conversation(s);
    if (conv) parts.push(h("h3", { text: "Conversation" }), conv);
    for (const [name, v, idp] of [["Payload", s.payload, "payload"], ["Result", s.result_payload, "result"]]) {
      if (v == null) continue;
      const mk = markers(v);
      parts.push(h("h3", null, name, " ", mk.map((m) => h("span", { class: "marker " + m.kind, "data-marker": m.kind, text: m.text }))), h("div", { id: idp }, jsonView(v)));
    }
    detail.replaceChildren(...parts);
  };

  viewport.addEventListener("click", (e) => {
    const row = e.target.closest(".row");
    if (!row) return;
    const n = model.byID.get(row.dataset.id);
    if (e.target.closest(".tog") && n.kids.length) { toggle(n); return; }
    select(row.dataset.id, { focus: true });
  });

  const toggle = (n, open) => {
    const id = n.s.id;
    if (open === undefined) open = collapsed.has(id);
    if (open) collapsed.delete(id); else collapsed.add(id);
    refresh();
  };

  const failed = () => visible.length && model ? model.order.filter((n) => n.s.status === "failed").sort((a, b) => visibleIndexOrTree(a) - visibleIndexOrTree(b)) : [];
  const treeIndex = new Map();
  const visibleIndexOrTree = (n) => treeIndex.get(n);
  const nextFailed = (dir) => {
    const list = failed();
    if (!list.length) { say("No failed spans"); return; }
    const cur = selected && model.byID.get(selected);
    const ci = cur ? treeIndex.get(cur) : -1;
    let t = dir > 0 ? list.find((n) => treeIndex.get(n) > ci) : list.slice().reverse().find((n) => treeIndex.get(n) < ci);
    if (!t) t = dir > 0 ? list[0] : list[list.length - 1];
    select(t.s.id, { focus: true });
    say("Failed span " + (list.indexOf(t) + 1) + " of " + list.length);
  };
  failBtn.addEventListener("click", () => nextFailed(1));

  viewport.addEventListener("keydown", (e) => {
    if (!model || !visible.length) return;
    const cur = model.byID.get(selected);
    let i = cur ? visible.indexOf(cur) : -1;
    const go = (j) => { j = Math.max(0, Math.min(visible.length - 1, j)); select(visible[j].s.id); };
    switch (e.key) {
      case "ArrowDown": go(i + 1); break;
      case "ArrowUp": go(i < 0 ? 0 : i - 1); break;
      case "Home": go(0); break;
      case "End": go(visible.length - 1); break;
      case "PageDown": go(i + Math.floor(viewport.clientHeight / ROW)); break;
      case "PageUp": go(i - Math.floor(viewport.clientHeight / ROW)); break;
      case "ArrowRight": if (cur) { if (cur.kids.length && collapsed.has(cur.s.id)) toggle(cur, true); else if (cur.kids.length) select(cur.kids[0].s.id); } break;
      case "ArrowLeft": if (cur) { if (cur.kids.length && !collapsed.has(cur.s.id)) toggle(cur, false); else if (cur.parent) select(cur.parent.s.id); } break;
      case "Enter": case " ": if (cur && cur.kids.length) toggle(cur); break;
      default: return;
    }
    e.preventDefault();
  });

  const onKey = (e) => {
    if (/INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName)) { if (e.key === "Escape") viewport.focus(); return; }
    if (e.key === "/") { e.preventDefault(); searchBox.focus(); }
    else if (e.key === "f" || e.key === "F") { e.preventDefault(); nextFailed(e.key === "f" ? 1 : -1); }
  };
  document.addEventListener("keydown", onKey);

  let searchTimer = null;
  searchBox.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(doSearch, 150); });
  searchBox.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && matches.length) {
      e.preventDefault();
      const cur = selected && model.byID.get(selected);
      const ci = cur ? treeIndex.get(cur) : -1;
      const t = matches.find((n) => treeIndex.get(n) > ci) || matches[0];
      select(t.s.id);
    }
  });
  const doSearch = () => {
    search = searchBox.value.trim().toLowerCase();
    matches = !search ? [] : model.order.filter((n) => (n.s.schema_name + " " + (n.s.schema_title || "") + " " + spanLabel(n.s) + " " + n.s.id).toLowerCase().includes(search));
    for (const n of matches) reveal(n);
    countLine.textContent = search ? matches.length + " matching spans (Enter: next)" : countText;
    refresh();
  };

  let countText = "";
  const apply = (d) => {
    const first = !model;
    model = buildTree(d.spans);
    model.order.forEach((n, i) => treeIndex.set(n, i));
    renderFacts(d);
    renderTicks();
    const nf = model.order.filter((n) => n.s.status === "failed").length;
    failBtn.textContent = "Next failed (" + nf + ")";
    failBtn.disabled = nf === 0;
    countText = fmtInt(d.spans.length) + " spans";
    countLine.textContent = countText;
    if (search) doSearch(); else refresh();
    if (selected && model.byID.get(selected)) { if (first) select(selected); else showDetail(model.byID.get(selected)); }
    document.title = (d.run.name || "Run " + shortID(d.run.id)) + " · agenttrace";
    main.dataset.ready = "true";
  };

  let lastStatus = "";
  let live = null;
  const load = async () => {
    performance.mark("run-fetch");
    const d = await api("/viewer/api/runs/" + encodeURIComponent(id));
    performance.mark("run-fetched");
    if (lastStatus && d.run.status !== lastStatus) say("The run is now " + d.run.status);
    lastStatus = d.run.status;
    apply(d);
    performance.mark("run-drawn");
    if (d.run.status !== "active" && d.run.status !== "pending" && live) { live.stop(); live = null; }
  };
  load().then(() => {
    if (lastStatus === "active" || lastStatus === "pending") live = poller(load, 2000);
  }).catch((e) => { if (!(e instanceof AuthError)) facts.replaceChildren(h("p", { class: "error", text: "Could not load the run: " + e.message })); });
  const onResize = () => draw(true);
  window.addEventListener("resize", onResize);
  return { stop() { if (live) live.stop(); document.removeEventListener("keydown", onKey); window.removeEventListener("resize", onResize); } };
}

// ---- agents -----------------------------------------------------------------

const PALETTE = ["#1f6fd1", "#2e8540", "#b26a00", "#7b3fa6", "#c62828", "#00838f", "#6d4c41"];

// chart draws a version's cost (or, without costs, tokens) per UTC day
// as grouped bars: one group per day, one bar per version.
function chart(versions) {
  const days = [...new Set(versions.flatMap((v) => v.days.map((d) => d.day)))].sort().slice(-30);
  if (!days.length) return h("p", { class: "muted", text: "No runs yet." });
  const useCost = versions.some((v) => v.days.some((d) => d.cost > 0));
  const metric = (d) => useCost ? d.cost : d.tokens;
  const byDay = versions.map((v) => new Map(v.days.map((d) => [d.day, d])));
  const max = Math.max(1e-12, ...versions.flatMap((v) => v.days.map(metric)));
  const W = 720, H = 160, L = 56, B = 22, T = 8;
  const gw = (W - L - 8) / days.length, bw = Math.max(2, Math.min(28, (gw - 6) / versions.length));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const ns = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text != null) e.textContent = text; return e; };
  const label = useCost ? "Cost" : "Tokens";
  const svg = s("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label + " per day by version" });
  svg.append(s("line", { x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#ccc" }), s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#ccc" }));
  svg.append(s("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, useCost ? String(+max.toPrecision(3)) : fmtInt(Math.round(max))), s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"));
  const step = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((day, i) => {
    const gx = L + 4 + i * gw + (gw - bw * versions.length) / 2;
    versions.forEach((v, vi) => {
      const d = byDay[vi].get(day);
      if (!d) return;
      const top = y(metric(d));
      const r = s("rect", { x: gx + vi * bw, y: top, width: Math.max(1, bw - 1), height: Math.max(1, H - B - top), fill: PALETTE[vi % PALETTE.length] });
      r.append(s("title", {}, "v" + v.number + " · " + day + ": " + d.runs + " runs, " + fmtInt(d.tokens) + " tokens, cost " + d.cost.toFixed(6)));
      svg.append(r);
    });
    if (i % step === 0 || i === days.length - 1) svg.append(s("text", { x: L + 4 + i * gw + gw / 2, y: H - 6, "text-anchor": "middle" }, day.slice(5)));
  });
  const legend = h("div", { class: "legend" }, h("span", { class: "muted", text: label + " per day (UTC), by version:" }),
    versions.map((v, vi) => h("span", null, h("i", { style: "background:" + PALETTE[vi % PALETTE.length] }), "v" + v.number)));
  return h("figure", { style: "margin:8px 0 0" }, svg, legend);
}

function agentsPage(main) {
  main.append(h("h1", { text: "Agents" }));
  const box = h("div", { id: "agents" }, h("p", { class: "muted", text: "Loading…" }));
  main.append(box);
  api("/viewer/api/agents").then((b) => b.agents).then((agents) => {
    if (!agents.length) { box.replaceChildren(h("p", { class: "muted", text: "No agents yet: runs register them." })); return; }
    box.replaceChildren(...agents.map((a) => {
      const c = a.counts;
      const rows = a.versions.map((v) => h("tr", { "data-version": v.id },
        h("td", null, h("a", { href: "/runs?agent=" + encodeURIComponent(a.id) + "&version=" + encodeURIComponent(v.id), "data-nav": true, text: "v" + v.number }), v.current ? h("span", { class: "muted", text: " current" }) : ""),
        h("td", { text: v.name || "–" }), h("td", { text: fmtTime(v.createdAt) }),
        ["total", "active", "pending", "complete", "failed", "cancelled"].map((k) => h("td", { class: "num" + (k === "failed" && v.counts.failed ? " failcount" : ""), text: fmtInt(v.counts[k]) })),
        h("td", { class: "num", text: fmtInt(v.usage.totalTokens) }), h("td", { class: "num", text: fmtCost(v.costs.total, v.costs.currency) })));
      return h("section", { class: "agent", "data-agent": a.id, "aria-label": a.name || a.id },
        h("h2", null, h("a", { href: "/runs?agent=" + encodeURIComponent(a.id), "data-nav": true, text: a.name || a.externalId || a.id }), " ", h("span", { class: "badge", text: a.status })),
        h("p", { class: "muted", text: fmtInt(c.total) + " runs · " + c.active + " active · " + c.complete + " complete · " + c.failed + " failed · " + c.cancelled + " cancelled" }),
        h("div", { class: "tablewrap" }, h("table", null, h("thead", null, h("tr", null, ["Version", "Name", "Created"].map((t) => h("th", { scope: "col", text: t })),
          ["Runs", "Active", "Pending", "Complete", "Failed", "Cancelled", "Tokens", "Cost"].map((t) => h("th", { scope: "col", class: "num", text: t })))), h("tbody", null, rows))),
        chart(a.versions));
    }));
    main.dataset.ready = "true";
  }).catch((e) => { if (!(e instanceof AuthError)) box.replaceChildren(h("p", { class: "error", text: "Could not load agents: " + e.message })); });
  return { stop() {} };
}

route();
