// The dashboard page: one WebSocket of conflated updates, drawn into charts and tables.
// Prices arrive as prices (numbers for the charts, strings for the tables): no tick
// arithmetic here. Every text is set with textContent, never parsed as HTML.
"use strict";

const LC = window.LightweightCharts;
const $ = (id) => document.getElementById(id);
const state = {
  symbols: [], symbol: null, data: {}, charts: null, ws: null,
  leaderboard: null, services: null, fundamental: false,
};
// What the tests (and curious people) can read: how much the page has drawn.
window.agoraDashboard = { tradesDrawn: 0, updates: 0, phase: {}, fair: {}, leaderboardRows: 0 };

function symbolData(sym) {
  if (!state.data[sym]) {
    state.data[sym] = { line: new Map(), candles: new Map(), fundamental: new Map(),
                        tape: [], tob: null, status: null, depth: null, stats: null };
  }
  return state.data[sym];
}

// ---------------------------------------------------------------- charts
function makeCharts() {
  const opts = (el) => ({
    width: el.clientWidth || 800, height: el.clientHeight || 300,
    layout: { background: { color: "#ffffff" }, textColor: "#1d2330" },
    timeScale: { timeVisible: true, secondsVisible: true },
    rightPriceScale: { borderVisible: false },
    localization: { timeFormatter: (t) => new Date(t * 1000).toLocaleTimeString() },
  });
  const priceEl = $("price-chart"), candleEl = $("candle-chart");
  const price = LC.createChart(priceEl, opts(priceEl));
  const candle = LC.createChart(candleEl, opts(candleEl));
  const last = price.addSeries(LC.LineSeries, { color: "#1f6feb", lineWidth: 2, title: "last" });
  const fair = price.addSeries(LC.LineSeries, { color: "#ef6c00", lineWidth: 1, lineStyle: 2, title: "F(t)" });
  const candles = candle.addSeries(LC.CandlestickSeries, {});
  const volume = candle.addSeries(LC.HistogramSeries, { priceScaleId: "vol", color: "#9fb3c8", priceFormat: { type: "volume" } });
  candle.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  new ResizeObserver(() => {
    price.applyOptions({ width: priceEl.clientWidth });
    candle.applyOptions({ width: candleEl.clientWidth });
  }).observe(document.body);
  return { price, candle, last, fair, candles, volume, lastT: 0, fairT: 0, candleT: 0 };
}

function setPrecision(decimals) {
  const c = state.charts;
  const fmt = { type: "price", precision: decimals, minMove: Math.pow(10, -decimals) };
  c.last.applyOptions({ priceFormat: fmt });
  c.fair.applyOptions({ priceFormat: fmt });
  c.candles.applyOptions({ priceFormat: fmt });
}

function redrawCharts() {
  // the selected symbol's whole history (after a full state or a change of symbol)
  const c = state.charts, d = symbolData(state.symbol);
  const line = [...d.line.entries()].sort((a, b) => a[0] - b[0]);
  c.last.setData(line.map(([t, p]) => ({ time: t, value: p[0] })));
  c.lastT = line.length ? line[line.length - 1][0] : 0;
  window.agoraDashboard.tradesDrawn = line.reduce((n, [, p]) => n + p[1], 0);
  const fair = [...d.fundamental.entries()].sort((a, b) => a[0] - b[0]);
  c.fair.setData(fair.map(([t, v]) => ({ time: t, value: v })));
  c.fairT = fair.length ? fair[fair.length - 1][0] : 0;
  const candles = [...d.candles.entries()].sort((a, b) => a[0] - b[0]);
  c.candles.setData(candles.map(([t, k]) => ({ time: t, open: k[0], high: k[1], low: k[2], close: k[3] })));
  c.volume.setData(candles.map(([t, k]) => ({ time: t, value: k[4] })));
  c.candleT = candles.length ? candles[candles.length - 1][0] : 0;
  if (d.stats) setPrecision(d.stats.decimals);
  c.price.timeScale().fitContent();
  c.candle.timeScale().fitContent();
}

function drawIncrement(part) {
  const c = state.charts, d = symbolData(state.symbol);
  for (const [t, p] of part.line || []) {
    if (t >= c.lastT) { c.last.update({ time: t, value: p }); c.lastT = t; }
  }
  window.agoraDashboard.tradesDrawn = [...d.line.values()].reduce((n, p) => n + p[1], 0);
  for (const [t, v] of part.fundamental || []) {
    if (t >= c.fairT) { c.fair.update({ time: t, value: v }); c.fairT = t; }
  }
  for (const [t, o, h, l, cl, vol] of part.candles || []) {
    if (t >= c.candleT) {
      c.candles.update({ time: t, open: o, high: h, low: l, close: cl });
      c.volume.update({ time: t, value: vol });
      c.candleT = t;
    }
  }
}

function drawDepth(depth) {
  const canvas = $("depth-chart"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!depth || (!depth.bids.length && !depth.asks.length)) {
    g.fillStyle = "#667"; g.fillText("empty book", 10, 20); return;
  }
  const prices = [...depth.bids, ...depth.asks].map((l) => l[0]);
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const top = Math.max(...[...depth.bids, ...depth.asks].map((l) => l[4]), 1);
  const x = (p) => 30 + (hi > lo ? (p - lo) / (hi - lo) : 0.5) * (w - 60);
  const y = (q) => h - 20 - (q / top) * (h - 40);
  const side = (levels, color) => {
    if (!levels.length) return;
    g.beginPath(); g.moveTo(x(levels[0][0]), h - 20);
    for (const l of levels) { g.lineTo(x(l[0]), y(l[4])); }
    g.lineTo(x(levels[levels.length - 1][0]), h - 20); g.closePath();
    g.fillStyle = color; g.fill();
  };
  side(depth.bids, "rgba(46,125,50,.35)");
  side(depth.asks, "rgba(198,40,40,.35)");
  g.fillStyle = "#1d2330";
  g.fillText(depth.bids.length ? depth.bids[depth.bids.length - 1][1] : "", 4, h - 4);
  const hiText = depth.asks.length ? depth.asks[depth.asks.length - 1][1] : "";
  g.fillText(hiText, w - g.measureText(hiText).width - 4, h - 4);
}

// ---------------------------------------------------------------- tables
function row(cells, classes) {
  const tr = document.createElement("tr");
  cells.forEach((v, i) => {
    const td = document.createElement("td");
    td.textContent = v === null || v === undefined ? "-" : String(v);
    if (classes && classes[i]) td.className = classes[i];
    tr.appendChild(td);
  });
  return tr;
}

function fill(tbody, rows) { tbody.replaceChildren(...rows); }

function drawLadder(depth) {
  const rows = [];
  if (depth) {
    for (const l of [...depth.asks].reverse()) rows.push(row(["", "", l[1], l[2], l[3]], ["", "", "ask", "ask", ""]));
    for (const l of depth.bids) rows.push(row([l[3], l[2], l[1], "", ""], ["", "bid", "bid", "", ""]));
  }
  fill($("ladder").tBodies[0], rows);
}

function drawTape(tape) {
  fill($("tape").tBodies[0], [...tape].reverse().slice(0, 25).map(([ms, p, q, side]) =>
    row([new Date(ms).toLocaleTimeString(), p, q, side], ["", side, "", side])));
}

function drawStatus(d) {
  const s = d.status, t = d.tob, st = d.stats;
  if (s) {
    $("phase").textContent = s.phase; $("phase").dataset.phase = s.phase;
    $("phase-reason").textContent = s.reason ? `(${s.reason})` : "";
    $("band").textContent = `${s.band_low} – ${s.band_high}`;
    $("halt-until").textContent = s.halt_until_ms ? `reopens ${new Date(s.halt_until_ms).toLocaleTimeString()}` : "";
    window.agoraDashboard.phase[state.symbol] = s.phase;
  }
  if (t) {
    $("bid").textContent = t.bid; $("bid-qty").textContent = t.bid_qty;
    $("ask").textContent = t.ask; $("ask-qty").textContent = t.ask_qty;
    $("spread").textContent = t.spread;
  }
  if (st) { $("last").textContent = st.last; $("trades").textContent = st.trades.toLocaleString(); $("volume").textContent = st.volume; }
}

function drawLeaderboard(b) {
  if (!b) return;
  $("board-note").textContent = `${b.accounts ?? 0} accounts, ${b.note}`;
  // the risk figures (agents.metrics) as columns of their own, named by the service
  const riskKeys = [];
  for (const r of b.rows) for (const k of Object.keys(r.risk || {})) if (!riskKeys.includes(k)) riskKeys.push(k);
  const head = $("leaderboard").tHead.rows[0];
  while (head.cells.length > 8) head.deleteCell(-1);
  for (const k of riskKeys) { const th = document.createElement("th"); th.textContent = k; head.appendChild(th); }
  fill($("leaderboard").tBodies[0], b.rows.slice(0, 200).map((r) => row([
    r.rank, r.account, r.strategy, r.trading_pnl, r.inventory_pnl, r.pnl, r.equity,
    Object.entries(r.positions || {}).map(([s, q]) => `${s} ${q}`).join(", "),
    ...riskKeys.map((k) => (r.risk || {})[k] ?? "-"),
  ])));
  fill($("classes").tBodies[0], (b.classes || []).map((g) => row([
    g.strategy, g.agents, g.trading_pnl_per_agent, g.trading_pnl, g.inventory_pnl, g.pnl])));
  window.agoraDashboard.leaderboardRows = b.rows.length;
}

function duration(s) {
  if (s === null || s === undefined) return "-";
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function drawServices(sv) {
  if (!sv) return;
  $("services-note").textContent = sv.note || "";
  const kv = (o) => Object.entries(o || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const lat = (r) => ["ack_ms", "settlement_lag_ms", "feed_lag_ms"].filter((k) => r[k])
    .map((k) => `${k.replace("_ms", "").replace("_", " ")} ${r[k].p50} / ${r[k].p99}`).join("; ");
  fill($("services").tBodies[0], sv.rows.map((r) => row([
    r.service, r.up ? "up" : `down: ${r.error || ""}`, duration(r.uptime_s), kv(r.rates), kv(r.rejects),
    lat(r), r.feed_subscribers, r.journal_bytes !== undefined ? `${(r.journal_bytes / 1e6).toFixed(1)} MB` : "-",
    kv(Object.fromEntries(["sessions", "open_orders", "agents", "browsers", "feed_gaps"].filter((k) => r[k] !== undefined).map((k) => [k, r[k]]))) +
      (r.errors ? ` errors: ${kv(r.errors)}` : ""),
  ])));
}

// ---------------------------------------------------------------- updates
function merge(sym, part) {
  const d = symbolData(sym);
  for (const [t, p, n] of part.line || []) d.line.set(t, [p, n]);
  for (const [t, ...k] of part.candles || []) d.candles.set(t, k);
  for (const [t, v] of part.fundamental || []) { d.fundamental.set(t, v); window.agoraDashboard.fair[sym] = v; }
  if (part.tape) { d.tape.push(...part.tape); d.tape.splice(0, Math.max(0, d.tape.length - 40)); }
  for (const k of ["tob", "status", "depth", "stats"]) if (part[k]) d[k] = part[k];
  if (part.status) window.agoraDashboard.phase[sym] = part.status.phase;
}

function drawAll(part, full) {
  const d = symbolData(state.symbol);
  if (full) redrawCharts(); else if (part) drawIncrement(part);
  if (part && part.stats) setPrecision(part.stats.decimals);
  drawStatus(d);
  if (full || (part && part.depth)) { drawDepth(d.depth); drawLadder(d.depth); }
  if (full || (part && part.tape)) drawTape(d.tape);
}

function onMessage(msg) {
  if (msg.t === "hello") {
    state.symbols = msg.symbols; state.fundamental = msg.fundamental;
    $("market-name").textContent = msg.market || "";
    $("f-legend").hidden = !msg.fundamental;
    const sel = $("symbol");
    if (!sel.options.length) {
      for (const s of msg.symbols) { const o = document.createElement("option"); o.value = o.textContent = s; sel.appendChild(o); }
    }
    state.symbol = state.symbol || msg.symbols[0];
    return;
  }
  if (msg.t === "control") { onControl(msg); return; }
  const full = msg.t === "full";
  if (full) state.data = {};
  for (const [sym, part] of Object.entries(msg.market || {})) merge(sym, part);
  if (state.symbol) drawAll((msg.market || {})[state.symbol], full);
  if (msg.leaderboard) { state.leaderboard = msg.leaderboard; drawLeaderboard(msg.leaderboard); }
  if (msg.services) { state.services = msg.services; drawServices(msg.services); }
  window.agoraDashboard.updates += 1;
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn on"; };
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    $("conn").textContent = "disconnected: retrying"; $("conn").className = "conn off";
    setTimeout(connect, 2000);
  };
}

// ---------------------------------------------------------------- actions
let controlId = 0;
function control(action, scenario) {
  // over the WebSocket: a refusal is an answer, not a failed HTTP request
  const out = $("control-result");
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    out.textContent = "not connected"; out.className = "result err"; return;
  }
  out.textContent = `${action}…`; out.className = "result";
  controlId += 1;
  state.ws.send(JSON.stringify({ t: "control", id: controlId, symbol: state.symbol, action, scenario, token: $("token").value }));
}

function onControl(msg) {
  const out = $("control-result");
  out.textContent = msg.ok ? msg.text : `refused (${msg.reason}): ${msg.text}`;
  out.className = msg.ok ? "result ok" : "result err";
  out.dataset.outcome = msg.ok ? "ok" : msg.reason;
}

async function loadScenarios() {
  try {
    const body = await (await fetch("/api/scenarios")).json();
    const names = Object.entries(body.scenarios || {});
    $("scenario-box").hidden = !names.length;
    for (const [name, what] of names) {
      const o = document.createElement("option"); o.value = name; o.textContent = name; o.title = what;
      $("scenario").appendChild(o);
    }
    $("scenarios").textContent = body.note;
  } catch (e) { $("scenarios").textContent = ""; }
}

for (const b of document.querySelectorAll("nav .tab")) {
  b.addEventListener("click", () => {
    for (const x of document.querySelectorAll("nav .tab")) x.classList.toggle("active", x === b);
    for (const p of document.querySelectorAll(".tab-page")) p.hidden = p.id !== `tab-${b.dataset.tab}`;
  });
}
$("symbol").addEventListener("change", (e) => { state.symbol = e.target.value; drawAll(null, true); });
$("halt").addEventListener("click", () => control("halt"));
$("resume").addEventListener("click", () => control("resume"));
$("run-scenario").addEventListener("click", () => control("scenario", $("scenario").value));
state.charts = makeCharts();
loadScenarios();
connect();
