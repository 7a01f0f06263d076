// hearsay's status page: polls the agent's API once a second and tails its
// message stream. No framework, no build step; served with a strict
// Content-Security-Policy, so nothing here is inline or from elsewhere.
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // points in the charts: two minutes
const TAIL_ROWS = 200;
const TOKEN_KEY = "hearsay-api-token";

const $ = (id) => document.getElementById(id);

// --- the API token -------------------------------------------------------
// Given once: in the URL fragment (#token=...) for a first load, or in the
// form. Kept in sessionStorage (this tab only), and the fragment is removed
// from the address bar at once.
function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token !== null) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

class Unauthorized extends Error {}

// api GETs a path of the API, relative to this page (/ui/ -> ../v1/...), so
// that the page also works behind a proxy's path prefix.
async function api(path, asText) {
  const resp = await fetch("../" + path, { headers: authHeaders(), cache: "no-store" });
  if (resp.status === 401) {
    throw new Unauthorized();
  }
  if (!resp.ok) {
    throw new Error(path + ": " + resp.status);
  }
  return asText ? resp.text() : resp.json();
}

function askForToken(wrong) {
  $("auth").hidden = false;
  $("auth-error").textContent = wrong ? "The agent refused this token." : "";
  setConn("down", "token needed");
}

function setupAuthForm() {
  $("auth-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("auth-token").value.trim());
    $("auth-token").value = "";
    $("auth").hidden = true;
    tokenTried = true;
    poll();
    tail.restart();
  });
}

let tokenTried = false;

// --- formatting ----------------------------------------------------------
function fmtInt(n) {
  return Number(n).toLocaleString("en-US");
}

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

function fmtRate(r) {
  if (r >= 100) return r.toFixed(0);
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(2);
}

function fmtDuration(seconds) {
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [];
  if (d) parts.push(d + "d");
  if (d || h) parts.push(h + "h");
  if (d || h || m) parts.push(m + "m");
  parts.push(s + "s");
  return parts.join(" ");
}

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== String(text)) {
    el.textContent = text;
  }
}

function setConn(kind, text) {
  const el = $("conn");
  el.className = "pill " + kind;
  el.textContent = text;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// --- /metrics ------------------------------------------------------------
// parseMetrics reads Prometheus' text format into {name: [{labels, value}]}.
function parseMetrics(text) {
  const out = {};
  const re = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;
  for (const line of text.split("\n")) {
    if (line === "" || line[0] === "#") continue;
    const m = re.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const pair of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2];
      }
    }
    (out[m[1]] = out[m[1]] || []).push({ labels, value: Number(m[3]) });
  }
  return out;
}

function metricValue(metrics, name, label, want) {
  for (const s of metrics[name] || []) {
    if (label === undefined || s.labels[label] === want) return s.value;
  }
  return 0;
}

// --- charts --------------------------------------------------------------
const series = { delivered: [], published: [], pullsOut: [], pullsIn: [] };
let last = null; // the previous sample: {t, delivered, published, pullsOut, pullsIn}

function pushRates(now, status, metrics) {
  const sample = {
    t: now,
    delivered: status.messages_delivered,
    published: status.messages_published,
    pullsOut: metricValue(metrics, "hearsay_pulls_total", "direction", "out"),
    pullsIn: metricValue(metrics, "hearsay_pulls_total", "direction", "in"),
  };
  if (last && sample.t > last.t) {
    const dt = (sample.t - last.t) / 1000;
    for (const k of Object.keys(series)) {
      series[k].push(Math.max(0, (sample[k] - last[k]) / dt));
      if (series[k].length > HISTORY) series[k].shift();
    }
  }
  last = sample;
  const latest = (k) => (series[k].length ? series[k][series[k].length - 1] : 0);
  setText("rate-delivered", fmtRate(latest("delivered")));
  setText("rate-published", fmtRate(latest("published")));
  setText("rate-pulls-out", fmtRate(latest("pullsOut")));
  setText("rate-pulls-in", fmtRate(latest("pullsIn")));
  drawChart($("chart-delivered"), [series.delivered]);
  drawChart($("chart-published"), [series.published]);
  drawChart($("chart-pulls"), [series.pullsOut, series.pullsIn]);
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// drawChart draws lines (the first filled) on a 300x80 SVG, newest on the
// right, scaled to the largest value shown.
function drawChart(svg, lines) {
  const W = 300, H = 80, top = 12;
  let peak = 0;
  for (const l of lines) for (const v of l) peak = Math.max(peak, v);
  const scale = peak > 0 ? niceCeil(peak) : 1;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  for (const f of [0.5, 1]) {
    const y = H - (H - top) * f;
    svg.appendChild(svgEl("line", { class: "grid", x1: 0, x2: W, y1: y, y2: y }));
  }
  const label = svgEl("text", { x: 4, y: 10 });
  label.textContent = (scale >= 1 ? String(scale) : scale.toFixed(2)) + "/s";
  svg.appendChild(label);
  lines.forEach((values, i) => {
    if (values.length < 2) return;
    // A short history is drawn wider, so that a fresh page shows a line.
    const slots = Math.min(HISTORY, Math.max(20, values.length));
    const step = W / (slots - 1);
    const x0 = W - (values.length - 1) * step;
    const pts = values.map((v, j) => [x0 + j * step, H - (H - top) * (v / scale)]);
    const d = pts.map((p, j) => (j ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
    if (i === 0) {
      svg.appendChild(svgEl("path", { class: "area", d: d + ` L${W} ${H} L${x0.toFixed(1)} ${H} Z` }));
    }
    svg.appendChild(svgEl("path", { class: i === 0 ? "line" : "line2", d }));
  });
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// --- the panels ----------------------------------------------------------
let nodeID = "";

function showStatus(s) {
  nodeID = s.id;
  setText("node-name", s.name);
  document.title = s.name + " · hearsay";
  setText("version", "hearsay " + s.version);
  setText("node-id", s.id);
  setText("node-addr", s.gossip_addr);
  setText("node-bind", s.bind_addr);
  setText("node-uptime", fmtDuration(s.uptime_seconds));
  setText("node-rounds", fmtInt(s.rounds));
  setText("node-gossip", `fanout ${s.fanout}, every ${s.interval}, datagrams ≤ ${fmtInt(s.max_packet_size)} B`);
  setText("node-filter", s.filter + " · " + fmtInt(s.filter_ids) + " IDs");
  setText("node-subs", fmtInt(s.subscribers));

  meter("cache-msgs", s.cache_messages, s.cache_max_messages, fmtInt);
  meter("cache-bytes", s.cache_bytes, s.cache_max_bytes, fmtBytes);
  meter("log-bytes", s.log_bytes, s.log_max_bytes, fmtBytes);
  setText("log-msgs", fmtInt(s.log_messages));
  setText("filter-ids", fmtInt(s.filter_ids));
  setText("delivered", fmtInt(s.messages_delivered) + " (" + fmtInt(s.messages_published) + " published here)");
  setText("duplicates", fmtInt(s.duplicates));
  setText("merkle", s.merkle_root);
  setText("encrypted", s.encrypted ? "sealed (" + (s.cipher || "unknown cipher") + ")" : "off: gossip is neither encrypted nor authenticated");
  $("encrypted").className = s.encrypted ? "" : "error";
}

function meter(id, value, max, fmt) {
  const bar = $(id + "-bar");
  if (max > 0) {
    const f = Math.min(1, value / max);
    setText(id, `${fmt(value)} of ${fmt(max)} (${(f * 100).toFixed(f < 0.1 ? 1 : 0)}%)`);
    bar.style.width = (f * 100).toFixed(2) + "%";
    bar.className = f > 0.8 ? "high" : "";
  } else {
    setText(id, fmt(value));
    bar.style.width = "0";
  }
}

function showPeers(info) {
  setText("peers-count", info.peers.length);
  setText("registry", info.registry + " registry");
  const suspects = new Set(info.suspects);
  const extra = {}; // address -> the registry's word on it
  let extraHead = "";
  if (info.members) {
    extraHead = "member";
    for (const m of info.members) {
      if (m.gossip_addr) extra[m.gossip_addr] = { text: m.name, state: m.state };
    }
  } else if (info.contacts) {
    extraHead = "DHT contact";
    for (const c of info.contacts) {
      extra[c.addr] = { text: c.answering ? "answering" : `${c.fails} unanswered`, state: c.answering ? "alive" : "suspect" };
    }
  }
  setText("peers-extra-head", extraHead);
  const rows = [];
  for (const addr of [...info.peers].sort()) {
    const tr = el("tr");
    tr.appendChild(el("td", "mono", addr));
    let state = suspects.has(addr) ? "suspect" : "alive";
    if (extra[addr] && extra[addr].state === "gone") state = "gone";
    const td = el("td");
    td.appendChild(el("span", "state " + state, state === "suspect" ? "not answering" : state));
    tr.appendChild(td);
    tr.appendChild(el("td", "muted", extra[addr] ? extra[addr].text : ""));
    rows.push(tr);
  }
  $("peers").replaceChildren(...rows);
  $("peers-empty").hidden = rows.length > 0;
}

function showKeys(k) {
  if (!k.keys.length) {
    setText("keys", "none");
    return;
  }
  // Key IDs only: the API never hands out key material.
  setText("keys", k.keys.map((key) => key.id + (key.primary ? " (primary)" : "")).join(", "));
}

// The counters shown as drops: what the node refused or threw away, by
// reason, with what kind of thing it was.
const DROPS = [
  ["hearsay_messages_dropped_total", "message"],
  ["hearsay_datagrams_dropped_total", "datagram"],
  ["hearsay_messages_refused_total", "publish refused"],
  ["hearsay_socket_errors_total", "socket"],
];

function showDrops(metrics) {
  const items = [];
  for (const [name, kind] of DROPS) {
    for (const s of metrics[name] || []) {
      if (s.value > 0) items.push({ reason: s.labels.reason || s.labels.kind, kind, value: s.value });
    }
  }
  items.sort((a, b) => b.value - a.value);
  $("drops").replaceChildren(...items.map((d) => {
    const li = el("li");
    const left = el("span", "", d.reason);
    left.appendChild(el("span", "kind", d.kind));
    li.appendChild(left);
    li.appendChild(el("b", "", fmtInt(d.value)));
    return li;
  }));
  $("drops-none").hidden = items.length > 0;
}

let polling = false;

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [status, peers, keys, metricsText] = await Promise.all([
      api("v1/status"), api("v1/peers"), api("v1/keys"), api("metrics", true),
    ]);
    const metrics = parseMetrics(metricsText);
    showStatus(status);
    showPeers(peers);
    showKeys(keys);
    showDrops(metrics);
    pushRates(Date.now(), status, metrics);
    $("auth").hidden = true;
    if (tail.live) setConn("live", "live");
    else setConn("", "polling");
  } catch (err) {
    if (err instanceof Unauthorized) {
      askForToken(tokenTried || sessionStorage.getItem(TOKEN_KEY) !== null);
    } else {
      setConn("down", "agent unreachable");
    }
  } finally {
    polling = false;
  }
}

// --- the live tail -------------------------------------------------------
// EventSource cannot send an Authorization header, so the stream is read
// with fetch: the same Server-Sent Events, parsed here, with the token in
// a header rather than the URL (where logs and history would keep it).
// Like EventSource, it reconnects with Last-Event-ID, so the agent resumes
// the stream from its log without a gap.
class Tail {
  constructor() {
    this.ctrl = null;
    this.lastID = "";
    this.pattern = ">";
    this.live = false;
    this.retry = 1000;
    this.generation = 0;
  }

  restart(pattern) {
    if (pattern !== undefined && pattern !== this.pattern) {
      this.pattern = pattern;
      this.lastID = ""; // another pattern: from now on
    }
    if (this.ctrl) this.ctrl.abort();
    this.run(++this.generation);
  }

  async run(gen) {
    this.ctrl = new AbortController();
    const headers = authHeaders();
    if (this.lastID) headers["Last-Event-ID"] = this.lastID;
    try {
      const resp = await fetch("../v1/messages/stream?topic=" + encodeURIComponent(this.pattern),
        { headers, signal: this.ctrl.signal, cache: "no-store" });
      if (resp.status === 401) {
        this.setLive(false, "token needed");
        return; // poll asks for it; the form restarts the tail
      }
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        this.setLive(false, body.error || "stream refused: " + resp.status);
        return; // a bad pattern: wait for another
      }
      this.setLive(true, "live, topic " + this.pattern);
      this.retry = 1000;
      await this.read(resp.body.getReader());
      if (gen === this.generation) this.setLive(false, "stream ended, reconnecting");
    } catch (err) {
      if (err.name === "AbortError") return;
      this.setLive(false, "disconnected, reconnecting");
    }
    if (gen !== this.generation) return;
    setTimeout(() => { if (gen === this.generation) this.run(gen); }, this.retry);
    this.retry = Math.min(this.retry * 2, 15000);
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
        this.event(block);
      }
    }
  }

  // event handles one Server-Sent Event block.
  event(block) {
    let type = "message", data = "", id = null;
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line[0] === ":") continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "id") id = value;
    }
    if (id !== null) this.lastID = id;
    if (type === "message" && data) {
      try {
        addMessage(JSON.parse(data));
      } catch (e) {
        // not a message we understand: skip it
      }
    } else if (type === "error") {
      let reason = data;
      try { reason = JSON.parse(data).error; } catch (e) { /* as sent */ }
      this.setLive(false, reason);
    }
  }

  setLive(live, text) {
    this.live = live;
    setText("tail-state", text);
    if (live) setConn("live", "live");
  }
}

const tail = new Tail();

function decodePayload(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// preview shows a payload as text if it is printable UTF-8, else as hex.
function preview(bytes) {
  const max = 240;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, Math.min(bytes.length, 4 * max)));
    if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) {
      const flat = text.replace(/\s+/g, " ");
      return flat.length > max ? flat.slice(0, max) + "…" : flat;
    }
  } catch (e) {
    // not UTF-8: hex below
  }
  const hex = Array.from(bytes.subarray(0, 48), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return "hex " + hex + (bytes.length > 48 ? " …" : "");
}

function addMessage(m) {
  const bytes = decodePayload(m.payload || "");
  const tr = el("tr");
  tr.dataset.id = m.id;
  tr.title = "id " + m.id + "\norigin " + m.origin + "\ncreated " + m.created;
  tr.appendChild(el("td", "when", new Date().toLocaleTimeString("en-GB")));
  tr.appendChild(el("td", "topic", m.topic));
  tr.appendChild(el("td", "origin", m.origin === nodeID ? "this node" : m.origin.slice(0, 8)));
  tr.appendChild(el("td", "size", fmtBytes(bytes.length)));
  tr.appendChild(el("td", "payload", preview(bytes)));
  const body = $("tail");
  body.insertBefore(tr, body.firstChild);
  while (body.children.length > TAIL_ROWS) body.removeChild(body.lastChild);
  $("tail-empty").hidden = true;
}

function setupTailForm() {
  $("tail-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    tail.restart($("tail-topic").value.trim() || ">");
  });
  $("tail-clear").addEventListener("click", () => {
    $("tail").replaceChildren();
    $("tail-empty").hidden = false;
  });
}

// --- start ---------------------------------------------------------------
takeTokenFromFragment();
setupAuthForm();
setupTailForm();
poll();
setInterval(poll, POLL_MS);
tail.restart();
