// A session that ends (expired, or the password changed) sends the user to sign in again.
const nativeFetch = window.fetch.bind(window);
window.fetch = async (...args) => {
  const response = await nativeFetch(...args);
  if (response.status === 401) location.href = "/login";
  return response;
};

// NewWave web client: search (results stream in as NDJSON lines), play, more like
// this, record-to-search, feedback, and the library page. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { hits: [], current: -1, lastQuery: null, nextOffset: 0, pageSize: 20, more: null };

// -- searching -------------------------------------------------------------------------

async function streamSearch(url, options = {}, append = false) {
  if (!append) { state.hits = []; $("results").replaceChildren(); }
  $("status").textContent = "Searching…";
  $("more-button").hidden = true;
  const response = await fetch(url, { ...options, headers: { Accept: "application/x-ndjson" } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    $("status").textContent = body.error || `Error ${response.status}`;
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let summary = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      const message = JSON.parse(line);
      if (message.type === "hit") addHit(message);
      else if (message.type === "summary") summary = message;
    }
  }
  if (summary) {
    const notes = summary.notes.length ? ` — ${summary.notes.join("; ")}` : "";
    $("status").textContent = state.hits.length
      ? `${state.hits.length} tracks (${Math.round(summary.elapsed_ms)} ms)${notes}`
      : `No matching tracks${notes}`;
    $("more-button").hidden = !state.more || summary.returned < state.pageSize;
  }
}

function searchUrl(offset) {
  const q = state.lastQuery;
  const params = new URLSearchParams({ q: q.text, limit: state.pageSize, offset });
  return `/search/${q.mode}?${params}`;
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) return;
  state.lastQuery = { text, mode: $("mode").value };
  state.more = () => streamSearch(searchUrl(state.hits.length), {}, true);
  streamSearch(searchUrl(0));
});

$("more-button").addEventListener("click", () => state.more && state.more());

function moreLikeThis(track) {
  state.lastQuery = null;
  $("query").value = "";
  const url = (offset) => `/tracks/${track.id}/similar?limit=${state.pageSize}&offset=${offset}`;
  state.more = () => streamSearch(url(state.hits.length), {}, true);
  streamSearch(url(0)).then(() => {
    $("status").textContent = `Sounds like “${track.title}” — ${$("status").textContent}`;
  });
}

// -- results ---------------------------------------------------------------------------

function addHit(hit) {
  const index = state.hits.length;
  state.hits.push(hit);
  const item = $("hit-template").content.firstElementChild.cloneNode(true);
  const track = hit.track;
  item.dataset.trackId = track.id;
  item.querySelector(".title").textContent = track.title;
  item.querySelector(".artist").textContent = [track.artist, track.album].filter(Boolean).join(" · ");
  item.querySelector(".why").textContent = hit.why;
  const measured = describeMeasured(track.descriptors);
  if (measured) {
    const line = document.createElement("span");
    line.className = "descriptors";
    line.textContent = measured;
    item.querySelector(".why").before(line);
  }
  const cover = item.querySelector(".cover");
  if (track.cover_url) cover.src = `${track.cover_url}?size=112`; else cover.style.visibility = "hidden";
  item.querySelector(".play").addEventListener("click", () => play(index));
  item.querySelector(".similar").addEventListener("click", () => moreLikeThis(track));
  for (const kind of ["like", "dislike"]) {
    const button = item.querySelector(`.${kind}`);
    button.addEventListener("click", () => sendFeedback(track.id, kind, button));
  }
  $("results").appendChild(item);
}

// "128 BPM · A minor" from the tempo and key measured when the track was indexed.
function describeMeasured(descriptors) {
  if (!descriptors) return "";
  const parts = [];
  if (descriptors.bpm) parts.push(`${Math.round(descriptors.bpm)} BPM`);
  if (descriptors.key) parts.push(`${descriptors.key} ${descriptors.mode}`);
  return parts.join(" · ");
}

async function sendFeedback(trackId, kind, button) {
  const response = await fetch("/feedback", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ track_id: trackId, kind, query: state.lastQuery?.text ?? null }),
  });
  if (response.ok && button) button.classList.add("sent");
}

// -- player ----------------------------------------------------------------------------

function play(index) {
  if (index < 0 || index >= state.hits.length) return;
  const audio = $("audio");
  if (state.current >= 0 && state.current !== index && !audio.ended && audio.currentTime > 0
      && audio.currentTime < 30) {
    sendFeedback(state.hits[state.current].track.id, "skip"); // left early: a skip
  }
  state.current = index;
  const track = state.hits[index].track;
  audio.src = track.audio_url;
  audio.play();
  $("now-title").textContent = track.title;
  $("now-artist").textContent = track.artist || "";
  const cover = $("now-cover");
  cover.hidden = !track.cover_url;
  if (track.cover_url) cover.src = `${track.cover_url}?size=88`;
  document.querySelectorAll(".hit").forEach((el, i) => el.classList.toggle("playing", i === index));
  sendFeedback(track.id, "play");
}

$("next-button").addEventListener("click", () => play(state.current + 1));
$("prev-button").addEventListener("click", () => play(state.current - 1));
$("audio").addEventListener("ended", () => play(state.current + 1));

// -- recording -------------------------------------------------------------------------

let recorder = null;
$("record-button").addEventListener("click", async () => {
  const button = $("record-button");
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    $("status").textContent = `Microphone unavailable: ${error.message}`;
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    button.classList.remove("recording");
    button.textContent = "● Record";
    recorder = null;
    const type = chunks[0]?.type || "audio/webm";
    const form = new FormData();
    form.append("file", new Blob(chunks, { type }), `recording.${type.includes("mp4") ? "mp4" : "webm"}`);
    state.lastQuery = null;
    state.more = null;
    streamSearch(`/search/by-audio?limit=${state.pageSize}`, { method: "POST", body: form });
  };
  recorder.start();
  button.classList.add("recording");
  button.textContent = "■ Stop (search)";
  $("status").textContent = "Recording… play or hum something, then press Stop (3 s or more).";
  setTimeout(() => recorder && recorder.state === "recording" && recorder.stop(), 15000);
});

// -- library ---------------------------------------------------------------------------

async function loadStats() {
  const stats = await (await fetch("/stats")).json();
  const hours = (stats.total_duration / 3600).toFixed(1);
  const rows = [["Tracks", stats.tracks], ["Artists", stats.artists], ["Albums", stats.albums],
    ["Length", `${hours} h`], ["With lyrics", stats.with_lyrics], ["Missing files", stats.missing],
    ["Scan errors", stats.errors], ["Sound model", stats.audio_model], ["Text model", stats.text_model]];
  $("stats").replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value;
    return [dt, dd];
  }));
}

$("scan-button").addEventListener("click", async () => {
  const response = await fetch("/library/scan", { method: "POST" });
  const job = await response.json();
  if (!response.ok) { $("scan-status").textContent = job.error; return; }
  const bar = $("scan-progress");
  bar.hidden = false;
  const poll = async () => {
    const current = await (await fetch(`/jobs/${job.id}`)).json();
    bar.max = current.total || 1;
    bar.value = current.done;
    $("scan-status").textContent = `${current.status}: ${current.message || ""}`;
    if (current.status === "running") setTimeout(poll, 700);
    else { bar.hidden = true; loadStats(); }
  };
  poll();
});

document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === tab.dataset.view));
  if (tab.dataset.view === "library-view") loadStats();
}));
