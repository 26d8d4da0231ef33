// The live view: polls /api/state twice a second and redraws the counters,
// the picture of the connected users and the operations.  Every string from
// the server goes into the page as text (textContent, createTextNode,
// setAttribute), never as markup, so a user named "<img ...>" stays text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 500;
let lastSeq = 0;            // the newest operation shown so far
let lastCounts = {};

// An element of the given tag (in the SVG namespace when svg), with
// attributes and an optional text content.
function el(tag, attrs, text, svg) {
  const e = svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// A table row of text cells; each cell is [text, class] or just text.
function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    const [text, cls] = Array.isArray(c) ? c : [c, ""];
    tr.appendChild(el("td", cls ? {class: cls} : {}, text));
  }
  return tr;
}

// Unix milliseconds as local HH:MM:SS.
function clock(ms) {
  return new Date(ms).toLocaleTimeString([], {hour12: false});
}

// A name cut to n characters for the picture (the table shows it whole).
function shorten(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
}

function setCounter(id, value) {
  const tile = document.getElementById(id);
  const changed = lastCounts[id] !== undefined && lastCounts[id] !== value;
  tile.textContent = String(value);
  tile.parentElement.classList.toggle("bump", changed);
  lastCounts[id] = value;
}

function drawCounters(s) {
  setCounter("c-users", s.totals.users);
  setCounter("c-connected", s.totals.connected);
  setCounter("c-files", s.totals.files);
  setCounter("c-operations", s.totals.operations);
  setCounter("c-conns", s.totals.connections_open);
  setCounter("c-expiries", s.totals.expiries);
}

// The index in the middle, each connected user on a circle around it, its
// node growing with its file count.
function drawPicture(s) {
  const svg = document.getElementById("picture");
  svg.replaceChildren();
  const cx = 300, cy = 210, ring = 160, users = s.users;
  if (users.length === 0)
    svg.appendChild(el("text", {x: cx, y: cy + 70, class: "empty"}, "no user connected", true));
  const maxFiles = Math.max(1, ...users.map(u => u.files));
  const links = el("g", {}, undefined, true), nodes = el("g", {}, undefined, true);
  users.forEach((u, i) => {
    const a = 2 * Math.PI * i / users.length - Math.PI / 2;
    const x = cx + ring * Math.cos(a), y = cy + ring * 0.8 * Math.sin(a);
    const r = 12 + 16 * Math.sqrt(u.files / maxFiles);
    links.appendChild(el("line", {x1: cx, y1: cy, x2: x, y2: y, class: "link"}, undefined, true));
    const g = el("g", {class: "user", "data-name": u.name}, undefined, true);
    g.appendChild(el("title", {}, u.name + " at " + u.address + ":" + u.port +
                     ", " + u.files + " files", true));
    g.appendChild(el("circle", {cx: x, cy: y, r: r, class: "node"}, undefined, true));
    g.appendChild(el("text", {x: x, y: y + 5, class: "count"}, u.files, true));
    g.appendChild(el("text", {x: x, y: y + r + 16, class: "name"}, shorten(u.name, 18), true));
    nodes.appendChild(g);
  });
  svg.appendChild(links);
  svg.appendChild(nodes);
  svg.appendChild(el("circle", {cx: cx, cy: cy, r: 34, class: "hub"}, undefined, true));
  svg.appendChild(el("text", {x: cx, y: cy + 5, class: "hub-label"}, "index", true));
  const more = s.totals.connected - users.length;
  document.getElementById("more").textContent =
    more > 0 ? "and " + more + " more connected users not drawn" : "";
}

function drawUsers(s) {
  const body = document.querySelector("#user-table tbody");
  body.replaceChildren(...s.users.map(u => row([
    [u.name, "name"], u.address, u.port, [u.files, "files"], clock(u.since * 1000)])));
}

function drawOps(s) {
  const body = document.querySelector("#ops tbody");
  body.replaceChildren(...s.recent.map(op => {
    const expired = op.operation === "EXPIRED";
    const tr = row([clock(op.time_ms), [op.user, "user"], [op.operation, "op"],
                    [op.path, "path"], [expired ? "-" : op.result,
                                        "result " + (op.result === 0 ? "r0" : "rx")]]);
    if (op.seq > lastSeq && lastSeq > 0) tr.classList.add("fresh");
    if (expired) tr.classList.add("expired");
    return tr;
  }));
  if (s.recent.length > 0) lastSeq = Math.max(lastSeq, s.recent[0].seq);
}

function drawOpCounts(s) {
  const body = document.querySelector("#op-counts tbody");
  body.replaceChildren(...Object.keys(s.operations).map(name => {
    const by = s.operations[name];
    return row([name, by["0"] || 0, by["1"] || 0, by["2"] || 0, by["3"] || 0, by["4"] || 0]);
  }));
}

function setStatus(live, text) {
  const st = document.getElementById("status");
  st.className = "status " + (live ? "live" : "stale");
  st.textContent = text;
}

async function poll() {
  try {
    const r = await fetch("/api/state", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    drawCounters(s);
    drawPicture(s);
    drawUsers(s);
    drawOps(s);
    drawOpCounts(s);
    setStatus(true, "live \u00b7 up " + Math.floor(s.uptime_s) + " s \u00b7 " +
              new Date().toLocaleTimeString([], {hour12: false}));
  } catch (e) {
    setStatus(false, "cannot reach the server (" + e.message + "); retrying");
  }
  setTimeout(poll, POLL_MS);
}

poll();
