// lbcp dashboard: polls the master's JSON endpoints (/ui/api/state every second,
// /ui/api/events for what happened since the last look) and redraws the tables
// in place; no reload, no build step, no library. Text goes in with
// textContent only: names come from the cluster and are never parsed as HTML.
"use strict";

const POLL_MS = 1000;
const MAX_EVENTS = 200;
let lastEvent = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function fillBody(table, rows) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...rows);
}

function bar(used, cap) {
  const pct = cap > 0 ? Math.min(100, Math.round(100 * used / cap)) : 0;
  const b = el("span", { class: "bar", role: "img", "aria-label": `${pct}% used` });
  const fill = el("span", {});
  fill.style.width = `${pct}%`; // CSSOM, allowed by the CSP (style attributes are not)
  b.append(fill);
  return el("span", {}, b, `${used} / ${cap}`);
}

function renderServers(servers) {
  const table = document.getElementById("servers");
  // grouped by priority group (best rank first) then zone, each its own tbody
  const groups = new Map();
  for (const s of servers) {
    const key = `${s.group_rank}\u0000${s.group}\u0000${s.zone}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(s);
  }
  const keys = [...groups.keys()].sort((a, b) => {
    const [ra, ga, za] = a.split("\u0000"), [rb, gb, zb] = b.split("\u0000");
    return (Number(ra) - Number(rb)) || ga.localeCompare(gb) || za.localeCompare(zb);
  });
  for (const tb of [...table.tBodies]) tb.remove();
  for (const k of keys) {
    const list = groups.get(k).sort((a, b) => a.id.localeCompare(b.id));
    const [rank, group, zone] = k.split("\u0000");
    const tb = el("tbody", { "data-group": group, "data-zone": zone });
    tb.append(el("tr", {}, el("th", { scope: "rowgroup", colspan: "5" },
      `group ${group || "(none)"} (rank ${rank}) · zone ${zone || "(none)"}`)));
    for (const s of list) {
      const apps = s.apps.map(a => a.ready !== undefined && a.ready > 0
        ? `${a.app} (${a.ready} ready)` : a.app).join(", ");
      tb.append(el("tr", { "data-server": s.id },
        el("th", { scope: "row" }, s.id),
        el("td", {}, el("span", { class: `status status-${s.status}` }, s.status),
          s.health ? el("span", { class: "muted" }, ` ${s.health}`) : ""),
        el("td", {}, bar(s.sessions, s.capacity)),
        el("td", {}, apps),
        el("td", {}, s.host)));
    }
    table.append(tb);
  }
  document.getElementById("server-count").textContent = `(${servers.length})`;
}

function render(st) {
  document.getElementById("this-master").textContent = st.master;
  document.getElementById("leader").textContent = st.leader || "(none)";
  fillBody(document.getElementById("masters"), st.masters
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(m => el("tr", {}, el("th", { scope: "row" }, m.id), el("td", {}, m.role),
                 el("td", {}, m.endpoint))));
  fillBody(document.getElementById("slaves"), st.slaves
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(s => el("tr", { "data-slave": s.id }, el("th", { scope: "row" }, s.id),
                 el("td", {}, s.zone), el("td", {}, s.limit ? bar(s.load, s.limit) : String(s.load)),
                 el("td", {}, s.endpoint), el("td", {}, s.api || "—"))));
  renderServers(st.servers);
}

function addEvents(evs) {
  const tb = document.getElementById("events").tBodies[0];
  for (const e of evs) {
    const t = new Date(e.ts_ms).toLocaleTimeString();
    tb.prepend(el("tr", { "data-event": e.event }, el("td", {}, t), el("td", {}, e.event),
                  el("td", {}, e.subject), el("td", {}, e.detail)));
    lastEvent = Math.max(lastEvent, e.seq);
  }
  while (tb.rows.length > MAX_EVENTS) tb.deleteRow(-1);
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error ? j.error.reason : `HTTP ${r.status}`);
  return j;
}

async function poll() {
  const conn = document.getElementById("conn");
  try {
    const [st, ev] = await Promise.all([getJSON("api/state"),
                                        getJSON(`api/events?since=${lastEvent}`)]);
    render(st);
    addEvents(ev.events);
    conn.textContent = `live · ${new Date(st.ts_ms).toLocaleTimeString()}` +
      (st.etcd_connected ? "" : " · etcd disconnected");
    conn.className = st.etcd_connected ? "" : "bad";
  } catch (e) {
    conn.textContent = `master unreachable: ${e.message}`;
    conn.className = "bad";
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("explain").addEventListener("submit", async ev => {
  ev.preventDefault(); // explain in place: the page never navigates
  const f = new FormData(ev.target);
  const q = new URLSearchParams(f).toString();
  const sum = document.getElementById("explain-summary");
  const table = document.getElementById("verdicts");
  try {
    const x = await getJSON(`api/explain?${q}`);
    sum.textContent = x.action === "REJECT" ? `REJECT: ${x.reason}`
      : `chosen: ${x.server}` + (x.slave ? ` through slave ${x.slave}` : "") +
        (x.reason ? ` (${x.reason})` : "") + (x.alternates.length ? `; alternates ${x.alternates.join(", ")}` : "");
    fillBody(table, x.verdicts.sort((a, b) => (a.rank < 0) - (b.rank < 0) || a.rank - b.rank)
      .map(v => el("tr", { "data-server": v.server },
        el("td", {}, v.rank < 0 ? "—" : String(v.rank)), el("th", { scope: "row" }, v.server),
        el("td", {}, v.zone), el("td", {}, v.group), el("td", {}, v.verdict), el("td", {}, v.detail))));
    table.hidden = false;
  } catch (e) {
    sum.textContent = `explain failed: ${e.message}`;
    table.hidden = true;
  }
});

poll();
