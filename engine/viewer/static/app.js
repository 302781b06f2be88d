// The live page: one WebSocket; binary messages are JPEG frames, text messages the JSON state.
// Every name shown comes from the network, so text goes in with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
// Tableau 10 and two more: neighbours in the model's class list get hues far apart.
const LABEL_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                      "#9c755f", "#bab0ac", "#b6992d", "#a0cbe8"];
let watch = null;        // null: follow whichever stream is live
let socket = null;
let frameUrl = null;
let lastState = null;
let retryMs = 500;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function labelColor(label, names) {
  let i = names.indexOf(label);
  if (i < 0) { i = 0; for (const ch of label) i = (i * 31 + ch.charCodeAt(0)) >>> 0; }
  return LABEL_COLORS[i % LABEL_COLORS.length];
}

function trackColor(track, state) {
  const colors = state.track_colors || [];
  return track < 0 || !colors.length ? "#a0a0a0" : colors[track % colors.length];
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.binaryType = "blob";
  socket.onopen = () => {
    retryMs = 500;
    setLive(true);
    if (watch !== null) socket.send(JSON.stringify({ watch }));
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") render(JSON.parse(event.data));
    else showFrame(event.data);
  };
  socket.onclose = () => {
    setLive(false);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

function setLive(on) {
  $("live").textContent = on ? "live" : "reconnecting…";
  $("live").classList.toggle("on", on);
}

function showFrame(blob) {
  const url = URL.createObjectURL(blob);
  const img = $("video");
  const previous = frameUrl;
  frameUrl = url;
  img.onload = () => { if (previous) URL.revokeObjectURL(previous); $("placeholder").hidden = true; };
  img.src = url;
}

function render(state) {
  lastState = state;
  $("backend").textContent = state.backend || "–";
  $("model").textContent = state.model || "–";
  $("horizon").textContent = Math.round(state.horizon_s || 60);
  renderStreams(state);
  renderCaption(state);
  renderPeople(state);
  renderRates(state);
  renderTimeline(state);
}

function renderStreams(state) {
  const select = $("stream");
  const wanted = ["", ...state.streams];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return;
  select.replaceChildren(...wanted.map((s) => { const o = el("option", "", s || "follow live"); o.value = s; return o; }));
  select.value = watch === null ? "" : watch;
}

function renderCaption(state) {
  const stream = watch === null ? state.auto_stream : watch;
  const frame = stream ? state.frames[stream] : null;
  if (!frame) { $("caption").textContent = state.monitor ? "waiting for frames…" : "no monitor endpoint: labels only"; return; }
  const size = frame.size ? `${frame.size[0]}×${frame.size[1]}` : "";
  const truth = frame.truth ? ` · source says: ${frame.truth}` : "";
  $("caption").textContent = `${stream} · frame ${frame.seq} · ${size} · ${frame.people} ${frame.people === 1 ? "person" : "people"}${truth}`;
  if (!frame.has_frame) $("placeholder").textContent = "frames are not forwarded (keypoints only)";
}

function renderPeople(state) {
  // Exactly who is in the newest frame of the stream shown (the server's list); a person the
  // classifier has not labelled yet is listed as such, not left out.
  const list = $("people");
  const stream = watch === null ? state.auto_stream : watch;
  const people = state.people.filter((p) => !stream || p.stream === stream);
  if (!people.length) {
    list.replaceChildren(el("li", "empty", state.frames[stream] ? "nobody in the frame" : "no labels yet"));
    return;
  }
  list.replaceChildren(...people.map((p) => {
    const item = el("li", "person");
    item.dataset.track = p.track;
    item.style.setProperty("--c", trackColor(p.track, state));
    const head = el("div", "head");
    if (p.label === null) {
      head.append(el("span", "id", `#${p.track}`), el("span", "pending", "no label yet"));
      item.append(head);
      return item;
    }
    head.append(el("span", "id", `#${p.track}`), el("span", "label", p.label), el("span", "score", p.score.toFixed(2)));
    const bar = el("div", "bar");
    const fill = el("i");
    fill.style.width = `${Math.round(100 * Math.max(0, Math.min(1, p.score)))}%`;
    bar.append(fill);
    const others = p.topk.filter(([name]) => name !== p.label).slice(0, 2).map(([n, s]) => `${n} ${s.toFixed(2)}`).join(" · ");
    item.append(head, bar, el("div", "topk", others ? `then ${others}` : ""));
    return item;
  }));
}

function ms(latency, key) {
  return latency && latency[key] !== undefined ? `${Math.round(latency[key])}` : "–";
}

function renderRates(state) {
  const r = state.rates;
  const tiles = [
    [r.frames_fps.toFixed(1), "frames / s (render)"],
    [r.labels_per_s.toFixed(1), "labels / s (classify)"],
    [`${ms(r.label_latency_ms, "p50")} / ${ms(r.label_latency_ms, "p95")} ms`, "capture → label p50 / p95"],
    [`${ms(r.frame_latency_ms, "p50")} ms`, "capture → viewer p50"],
    [r.viewer_fps.toFixed(1), "frames / s shown here"],
    [`${r.dropped} / ${r.lost}`, "dropped at capture / lost"],
  ];
  $("rates").replaceChildren(...tiles.map(([v, k]) => { const t = el("div", "rate"); t.append(el("div", "v", v), el("div", "k", k)); return t; }));
}

function renderTimeline(state) {
  const box = $("timeline");
  const horizon = state.horizon_s || 60;
  const stream = watch === null ? state.auto_stream : watch;
  const rows = state.timeline.filter((row) => !stream || row.stream === stream || state.streams.length < 2);
  const seen = new Set();
  if (!rows.length) { box.replaceChildren(el("div", "empty", "no labels yet")); $("legend").replaceChildren(); return; }
  const nodes = rows.map((row) => {
    const line = el("div", "row");
    const who = el("div", "who");
    const id = el("b", "", `#${row.track}`);
    id.style.color = trackColor(row.track, state);
    who.append(id, document.createTextNode(state.streams.length > 1 ? ` ${row.stream}` : ""));
    who.title = row.stream;
    const track = el("div", "track");
    for (const [ago0, ago1, label, score] of row.segments) {
      const left = 100 * (1 - Math.min(ago0, horizon) / horizon);
      const right = 100 * (1 - Math.max(ago1, 0) / horizon);
      const seg = el("div", "seg", right - left > 8 ? label : "");
      seg.style.left = `${left}%`;
      seg.style.width = `${Math.max(0.4, right - left)}%`;
      seg.style.background = labelColor(label, state.labels);
      seg.title = `${label} (best ${score.toFixed(2)})`;
      track.append(seg);
      seen.add(label);
    }
    line.append(who, track);
    return line;
  });
  const axis = el("div", "axis");
  const ticks = el("div");
  ticks.append(el("span", "", `-${Math.round(horizon)} s`), el("span", "", `-${Math.round(horizon / 2)} s`), el("span", "", "now"));
  axis.append(el("div"), ticks);
  box.replaceChildren(...nodes, axis);
  $("legend").replaceChildren(...[...seen].sort().map((label) => {
    const item = el("span", "", label);
    item.style.setProperty("--c", labelColor(label, state.labels));
    return item;
  }));
}

$("stream").addEventListener("change", (event) => {
  watch = event.target.value === "" ? null : event.target.value;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ watch }));
  if (lastState) render(lastState);
});

connect();
