// SPDX-License-Identifier: LGPL-2.1-or-later
// FAM/E management page.  Vanilla JS, no dependencies, no external URLs.
//
// Safety rule: every string from the API reaches the DOM through createElement,
// textContent or setAttribute, never through innerHTML and friends: shelf paths and node
// names come from the database and may contain markup.
//
// Data flow: poll /api/v1/summary every second and /api/v1/nodes every two seconds.
// When the summary's generation changes, refetch shelves + the FAM map and redraw them;
// when the nodes change, redraw the machine and refetch the map (offline books follow
// node state).  Each poll re-arms itself only when the previous one finished, so a slow
// server never gets a pile of overlapping requests.
'use strict';

const API = 'api/v1/';   // relative: the page works under any prefix the server mounts it at
const STATES = ['ready', 'booting', 'down', 'stopped', 'unknown'];
// Canvas colours (RGB) for the non-shelf cell kinds; the legend swatches use app.css.
const FREE = [224, 224, 224], ZOMBIE = [255, 112, 67], OFFLINE = [66, 66, 66];
const BG = [246, 246, 244];

const S = {
  generation: null,   // last generation drawn
  nodesKey: null,     // JSON of the last nodes answer, to detect changes cheaply
  nodes: [],
  shelves: [],
  map: null,
  colors: [],         // per map shelf index: [r, g, b]
  selected: null,     // selected shelf path (survives redraws, ids may not)
  drawnOnce: false,
};

// ---- small DOM helpers (text only, never HTML) ----
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}
const $ = (sel) => document.querySelector(sel);

function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : String(n)) + ' ' + u[i];
}
const hex = (big) => '0x' + big.toString(16);
const pad2 = (n) => String(n).padStart(2, '0');

// A stable colour per shelf id: the hue steps by the golden angle per id (consecutive ids,
// the common case, land far apart on the wheel) and a hash of the id varies saturation and
// lightness, so a shelf keeps its colour across redraws and page loads.
function shelfColor(id) {
  let h = Math.imul(Number(id) ^ 0x5bd1e995, 0x27d4eb2d);
  h = (h ^ (h >>> 15)) >>> 0;
  const hue = (Number(id) * 137.508) % 360;
  const sat = 0.55 + (h % 30) / 100;
  const light = 0.40 + ((h >>> 8) % 22) / 100;
  return hslToRgb(hue / 360, sat, light);
}
function hslToRgb(h, s, l) {
  const q = l < 0.5 ? l * (1 + s) : l + s - l * s, p = 2 * l - q;
  const f = (t) => {
    if (t < 0) t += 1; if (t > 1) t -= 1;
    if (t < 1 / 6) return p + (q - p) * 6 * t;
    if (t < 1 / 2) return q;
    if (t < 2 / 3) return p + (q - p) * (2 / 3 - t) * 6;
    return p;
  };
  return [f(h + 1 / 3), f(h), f(h - 1 / 3)].map((x) => Math.round(x * 255));
}
const css = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

async function getJSON(path) {
  const r = await fetch(API + path, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// ---- error banner and "updated" indicator ----
function showError(err) {
  const e = $('#error');
  e.textContent = 'server unreachable: ' + (err && err.message ? err.message : String(err));
  e.hidden = false;
}
function clearError() { const e = $('#error'); e.hidden = true; e.textContent = ''; }
function markUpdated() {
  const d = new Date();
  const u = $('#updated');
  u.textContent = `updated ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  u.dataset.time = String(d.getTime());
}

// ---- header ----
function drawSummary(sm) {
  $('#cluster').textContent = sm.cluster || '(unnamed cluster)';
  const f = sm.fam || {}, l = sm.librarian || {}, c = sm.check || {};
  const items = [
    ['FAM', fmtBytes(f.size_bytes || 0)],
    ['books', `${f.books_total} total, ${f.books_allocated} used, ${f.books_free} free`],
    ['zombie', f.books_zombie, f.books_zombie > 0],
    ['offline', f.books_offline, f.books_offline > 0],
    ['req/s', Number(l.requests_per_second || 0).toFixed(1)],
    ['connections', l.connections],
    ['generation', sm.generation],
  ];
  if (c.enabled) items.push(['checker findings', c.findings, c.findings > 0]);
  const dl = $('#summary');
  dl.replaceChildren(...items.map(([k, v, warn]) =>
    el('div', warn ? { class: 'warn' } : {}, el('dt', { text: k }), el('dd', { text: String(v) }))));
}

// ---- The Machine ----
function drawLegend(ul, entries) {
  ul.replaceChildren(...entries.map(([cls, text]) => el('li', { class: cls, text })));
}
function drawMachine(nodes) {
  const racks = new Map();
  for (const n of nodes) {
    if (!racks.has(n.rack)) racks.set(n.rack, new Map());
    const encs = racks.get(n.rack);
    if (!encs.has(n.enclosure)) encs.set(n.enclosure, []);
    encs.get(n.enclosure).push(n);
  }
  const byNum = (a, b) => a[0] - b[0];
  const boxes = [...racks].sort(byNum).map(([rack, encs]) =>
    el('div', { class: 'rack', 'data-rack': rack },
      el('span', { class: 'box-title', text: `Rack ${rack}` }),
      ...[...encs].sort(byNum).map(([enc, ns]) =>
        el('div', { class: 'enclosure', 'data-enclosure': enc },
          el('span', { class: 'box-title', text: `Enclosure ${enc}` }),
          ...ns.sort((a, b) => a.node - b.node).map(nodeBox)))));
  $('#machine').replaceChildren(...boxes);
}
function nodeBox(n) {
  const state = STATES.includes(n.state) ? n.state : 'unknown';
  const hb = n.heartbeat_age_s == null ? 'no heartbeat' : `heartbeat ${n.heartbeat_age_s.toFixed(1)} s ago`;
  return el('div', {
    class: 'node state-' + state, 'data-node-name': n.name, 'data-state': state,
    'data-node-id': n.node_id, title: `${n.name}: ${n.state}\n${n.coordinate}\n${hb}` },
  el('span', { class: 'name', text: n.name }),
  el('span', { class: 'meta', text: n.state }),
  el('span', { class: 'meta', text: [n.arch || '?', n.accel || '?'].join(' · ') }));
}

// ---- shelves table ----
function drawShelves(shelves) {
  const rows = [...shelves].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((s) => {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = css(shelfColor(s.id));   // CSSOM, allowed under the CSP
    const tr = el('tr', { 'data-shelf-path': s.path, 'data-shelf-id': s.id },
      el('td', {}, sw, el('span', { text: s.path + (s.is_dir ? '/' : '') })),
      el('td', { text: `${s.uid}:${s.gid}` }),
      el('td', { text: s.mode }),
      el('td', { class: 'num', text: fmtBytes(s.size_bytes) }),
      el('td', { class: 'num', text: String(s.book_count) }),
      el('td', { class: 'num', text: String(s.open_count) }));
    if (s.path === S.selected) tr.classList.add('selected');
    return tr;
  });
  $('#shelves tbody').replaceChildren(...rows);
}
function select(path) {
  S.selected = (path === S.selected) ? null : path;   // clicking again clears the selection
  for (const tr of document.querySelectorAll('#shelves tbody tr'))
    tr.classList.toggle('selected', tr.dataset.shelfPath === S.selected);
  document.body.dataset.selected = S.selected || '';
  paintAll();
}

// ---- FAM map ----
// One canvas per interleave group, painted through ImageData (one putImageData per group
// instead of 3277 fillRect calls), plus a collapsed DOM table of per-shelf counts.
function cellGeometry(map) {
  const width = Math.max(300, $("#fam-map").clientWidth - 260);   // minus the group label
  const maxBooks = Math.max(1, ...map.groups.map((g) => g.books));
  // Square-ish cells: big for small FAMs, down to 4 px (3 + 1 gap) for 128 Ki books.
  const cell = Math.max(4, Math.min(16, Math.floor(Math.sqrt((width * 48) / maxBooks))));
  return { cell, cols: Math.max(1, Math.floor(width / cell)) };
}
function drawMap(map) {
  S.map = map;
  S.colors = map.shelves.map((s) => shelfColor(s.id));
  const geo = cellGeometry(map);
  S.geo = geo;
  const nodeName = new Map(S.nodes.map((n) => [n.node_id, n.name]));
  const blocks = map.groups.map((g, gi) => {
    const rows = Math.ceil(g.books / geo.cols);
    // One canvas pixel per book, scaled up by CSS (image-rendering: pixelated) and overlaid
    // with a CSS grid for the gaps: 128 Ki pixels to paint instead of ~2 M, which is what
    // made the first draw slow on a software-rendered canvas.
    const cv = el('canvas', { width: geo.cols, height: Math.max(1, rows),
      'data-group': gi, 'aria-label': `interleave group ${g.ig} book map` });
    cv.style.width = geo.cols * geo.cell + 'px';
    cv.style.height = Math.max(1, rows) * geo.cell + 'px';
    cv.addEventListener('mousemove', (ev) => hover(ev, gi));
    cv.addEventListener('mouseleave', () => { $('#fam-tip').hidden = true; });
    cv.addEventListener('click', (ev) => {
      const k = hitTest(ev, gi);
      if (k >= 0 && g.cells[k] >= 0) select(map.shelves[g.cells[k]].path);
    });
    return el('div', { class: 'group', 'data-ig': g.ig, 'data-node-id': g.node_id },
      groupSummary(map, g, nodeName.get(g.node_id)), el('div', { class: 'cells' }, cv));
  });
  $('#fam-map').style.setProperty('--cell', geo.cell + 'px');
  $('#fam-map').replaceChildren(...blocks);
  paintAll();
  drawLegend($('#fam-legend'), [['cell-shelf', 'shelf (one colour per shelf)'], ['cell-free', 'free'],
    ['cell-zombie', 'zombie'], ['cell-offline', 'offline']]);
}
function groupSummary(map, g, nodeName) {
  const counts = new Map();
  for (const c of g.cells) counts.set(c, (counts.get(c) || 0) + 1);
  const kinds = { '-1': 'free', '-2': 'zombie', '-3': 'offline' };
  const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([c, n]) => {
    const tr = el('tr', { 'data-count': n },
      el('td', { text: c >= 0 ? map.shelves[c].path : kinds[c] || 'unknown' }), el('td', { text: String(n) }));
    if (c >= 0) tr.setAttribute('data-shelf-path', map.shelves[c].path);
    else tr.setAttribute('data-kind', kinds[c] || 'unknown');
    return tr;
  });
  const free = counts.get(-1) || 0;
  return el('details', { class: 'group-label' },
    el('summary', { text: `IG ${g.ig} · ${nodeName || 'node ' + g.node_id}: ${g.books} books, ${free} free` }),
    el('table', { class: 'group-counts', 'data-ig': g.ig }, el('tbody', {}, ...rows)));
}
function paintAll() {
  if (!S.map) return;
  const canvases = document.querySelectorAll('#fam-map canvas');
  const pal = palette();
  S.map.groups.forEach((g, gi) => paintGroup(canvases[gi], g, pal));
}
// Pack [r, g, b] as one little-endian RGBA pixel (every browser that matters is LE), so a
// book is one 32-bit store.
const pack = (c) => ((255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
const fade = (c) => c.map((v) => (v + 3 * 255) >> 2);   // unselected cells when a shelf is selected
function palette() {
  const sel = S.selected;
  const kind = (rgb) => pack(sel === null ? rgb : fade(rgb));
  return {
    shelf: S.map.shelves.map((s, i) => pack(sel === null || s.path === sel ? S.colors[i] : fade(S.colors[i]))),
    free: kind(FREE), zombie: kind(ZOMBIE), offline: kind(OFFLINE),
  };
}
function paintGroup(cv, g, pal) {
  const ctx = cv.getContext('2d');
  const img = ctx.createImageData(cv.width, cv.height);
  const px = new Uint32Array(img.data.buffer);
  px.fill(pack(BG));   // the tail of the last row
  for (let k = 0; k < g.books; k++) {
    const c = g.cells[k];
    px[k] = c >= 0 ? pal.shelf[c] : c === -1 ? pal.free : c === -2 ? pal.zombie : pal.offline;
  }
  ctx.putImageData(img, 0, 0);
}
function hitTest(ev, gi) {
  const g = S.map.groups[gi], { cell, cols } = S.geo;
  const r = ev.target.getBoundingClientRect();
  const x = Math.floor((ev.clientX - r.left) / cell), y = Math.floor((ev.clientY - r.top) / cell);
  const k = y * cols + x;
  return x >= 0 && x < cols && y >= 0 && k < g.books ? k : -1;
}
// What the spec says a book is: LZA = (ig << 46) | (k << 33), offset = first_offset + k * book_size.
// BigInt, because ig << 46 overflows doubles' exact range for large group numbers.
function bookInfo(g, k) {
  const lza = (BigInt(g.ig) << 46n) | (BigInt(k) << 33n);
  const off = BigInt(g.first_offset) + BigInt(k) * BigInt(S.map.book_size);
  const c = g.cells[k];
  const what = c >= 0 ? `${S.map.shelves[c].path}  owner ${S.map.shelves[c].uid}:${S.map.shelves[c].gid ?? '?'}`
    : c === -1 ? 'free' : c === -2 ? 'zombie' : 'offline';
  return `IG ${g.ig} book ${k}: ${what}\nLZA ${hex(lza)}  FAM offset ${hex(off)}`;
}
function hover(ev, gi) {
  const k = hitTest(ev, gi), tip = $('#fam-tip');
  if (k < 0) { tip.hidden = true; return; }
  const text = bookInfo(S.map.groups[gi], k);
  tip.textContent = text;
  $('#fam-info').textContent = text;
  tip.hidden = false;
  tip.style.left = (ev.clientX + 14) + 'px';
  tip.style.top = (ev.clientY + 14) + 'px';
}

// ---- polling ----
async function refreshData(generation) {
  const t0 = performance.now();
  const [sh, map] = await Promise.all([getJSON('shelves'), getJSON('fam/map')]);
  const t1 = performance.now();
  S.shelves = sh.shelves;
  drawShelves(sh.shelves);
  drawMap(map);
  document.body.dataset.generation = String(generation);
  // drawMs: time spent building the DOM and painting, excluding the network fetch.
  document.body.dataset.drawMs = String(Math.round(performance.now() - t1));
  document.body.dataset.fetchMs = String(Math.round(t1 - t0));
  if (!S.drawnOnce) {
    S.drawnOnce = true;
    document.body.dataset.firstDrawAt = String(Math.round(performance.now()));  // since navigation
  }
}
async function pollSummary() {
  try {
    const sm = await getJSON('summary');
    drawSummary(sm);
    if (S.nodesKey === null) await pollNodesOnce();   // the map labels want node names
    if (sm.generation !== S.generation) {
      await refreshData(sm.generation);
      S.generation = sm.generation;
    }
    clearError();
    markUpdated();
  } catch (err) {
    showError(err);
  }
  setTimeout(pollSummary, 1000);
}
async function pollNodesOnce() {
  const d = await getJSON('nodes');
  const key = JSON.stringify(d.nodes.map((n) => [n.node_id, n.name, n.state, n.arch, n.accel, n.rack, n.enclosure]));
  if (key === S.nodesKey) return false;
  const first = S.nodesKey === null;
  S.nodesKey = key;
  S.nodes = d.nodes;
  drawMachine(d.nodes);
  document.body.dataset.nodes = String(d.nodes.length);
  if (!first && S.generation !== null) {   // offline books follow node state: refetch the map
    try { await refreshData(S.generation); } catch (err) { S.generation = null; throw err; }  // summary poll retries
  }
  return true;
}
async function pollNodes() {
  try { await pollNodesOnce(); } catch (err) { showError(err); }
  setTimeout(pollNodes, 2000);
}

function start() {
  drawLegend($('#machine-legend'), STATES.map((s) => ['state-' + s, s]));
  $('#shelves tbody').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-shelf-path]');
    if (tr) select(tr.dataset.shelfPath);
  });
  let resizeTimer = 0;   // re-layout the map when the window width changes
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (S.map) drawMap(S.map); }, 200);
  });
  pollSummary();
  setTimeout(pollNodes, 2000);
}
document.addEventListener('DOMContentLoaded', start);
