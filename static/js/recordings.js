// The camera page's recordings (templates/recordings/_playback.html): a timeline of the footage recorded in the
// last 24 hours (GET /api/v1/cameras/{id}/recordings/, session auth). The recorded ranges are the bar's base; three
// thin lanes on top mark the segments with motion, with objects and with events, each lane merging only adjacent
// segments that carry its mark. Click to play from a moment, or drag along the bar (mouse, pen or touch): the cursor
// and a time label follow the pointer, the video previews the moment (at most every PREVIEW_MS) and plays from
// where the pointer is released. The bar is a focusable slider: Left/Right step 10 s (Shift: 60 s) from the
// current moment. Playback goes on across segment boundaries (the next segment starts when one ends) at the
// chosen speed (recplayer.js).
(function () {
  "use strict";
  const root = document.getElementById("recordings");
  if (!root) return;
  const bar = root.querySelector("#rec-timeline");
  const cursor = root.querySelector("#rec-cursor");
  const label = root.querySelector("#rec-scrub-time");
  const video = root.querySelector("#rec-video");
  const speed = root.querySelector("#rec-speed");
  const clock = root.querySelector("#rec-time");
  const empty = root.querySelector("#rec-empty");
  const GAP_MS = 2000; // segments closer than this draw as one range
  const PREVIEW_MS = 250; // while dragging, the video previews the moment at most this often
  const STEP_MS = 10000; // Left/Right; with Shift, LONG_STEP_MS
  const LONG_STEP_MS = 60000;
  const LANES = [["motion", "has_motion"], ["objects", "has_objects"], ["event", "has_event"]];
  let segments = [];
  let since = 0;
  let until = 0;
  let moment = null; // the moment shown (epoch ms): playing, previewed or stepped to; null before any
  let dragging = null; // {id, at} while a pointer drags along the bar
  let lastPreview = 0;
  let previewTimer = null;
  let releasedAt = 0; // when a pointer was released: the click that follows was handled by the release

  for (const el of root.querySelectorAll("#rec-legend [data-label]")) {
    el.textContent = root.dataset[el.dataset.label + "Label"] || el.dataset.label;
  }

  function pct(t) {
    return Math.max(0, Math.min(100, ((t - since) / (until - since)) * 100));
  }

  // Runs of the segments for which ``keep(s)`` is true, adjacent ones (closer than GAP_MS) merged: [{t0, t1}].
  function runs(keep) {
    const out = [];
    let run = null;
    for (const s of segments) {
      if (!keep(s)) {
        run = null;
      } else if (run && s.t0 - run.t1 <= GAP_MS) {
        run.t1 = Math.max(run.t1, s.t1);
      } else {
        run = { t0: s.t0, t1: s.t1 };
        out.push(run);
      }
    }
    return out;
  }

  function span(run, className, name) {
    const el = document.createElement("span");
    const left = pct(run.t0);
    el.className = className;
    el.style.left = left + "%";
    el.style.width = Math.min(100 - left, Math.max(0.2, pct(run.t1) - left)) + "%";
    el.title = new Date(run.t0).toLocaleTimeString() + " – " + new Date(run.t1).toLocaleTimeString() +
      (name ? " (" + name + ")" : "");
    bar.appendChild(el);
  }

  function draw() {
    bar.querySelectorAll(".rec-range, .rec-lane").forEach((el) => el.remove());
    for (const r of runs(() => true)) span(r, "rec-range", root.dataset.recordedLabel);
    for (const [name, field] of LANES) {
      const title = root.dataset[name + "Label"];
      for (const r of runs((s) => s[field])) span(r, "rec-lane " + name, title);
    }
    empty.hidden = segments.length > 0;
    bar.setAttribute("aria-valuemin", String(Math.round(since / 1000)));
    bar.setAttribute("aria-valuemax", String(Math.round(until / 1000)));
    show(moment, Boolean(dragging)); // the list refreshes every minute, a drag may be under way
  }

  // Put the cursor (and, while dragging, the time label) at ``at``; the slider's value follows.
  function show(at, withLabel) {
    const value = at === null ? until : at;
    bar.setAttribute("aria-valuenow", String(Math.round(value / 1000)));
    bar.setAttribute("aria-valuetext", value ? new Date(value).toLocaleString() : "");
    if (at !== null && until) {
      cursor.hidden = false;
      cursor.style.left = pct(at) + "%";
    }
    label.hidden = !withLabel;
    if (withLabel) {
      const left = pct(at);
      const day = new Date(at);
      label.textContent = day.toDateString() === new Date().toDateString() ? day.toLocaleTimeString()
        : day.toLocaleString();
      label.style.left = left + "%";
      label.style.transform = left < 6 ? "none" : left > 94 ? "translateX(-100%)" : "translateX(-50%)";
    }
  }

  const player = window.SurveillanceRecPlayer(video, {
    onTime(at) {
      clock.textContent = new Date(at).toLocaleString();
      if (dragging) return; // the cursor follows the pointer, not the preview
      moment = at;
      show(at, false);
    },
  });

  async function load() {
    const data = await player.load(root.dataset.url);
    if (!data) return;
    since = data.since;
    until = data.until;
    segments = data.segments;
    draw();
  }

  // Play from ``at`` (epoch ms): the segment that holds it, else the next one recorded after it, else the last
  // one (a click just past the end of a short range). ``how``: {autoplay: false} loads and seeks only.
  function play(at, how) {
    if (!player.play(at, how)) return false;
    root.querySelector("#rec-controls").hidden = false;
    return true;
  }

  // Show the moment ``at`` without playing: within the segment already loaded, a seek; else that segment loads.
  function preview(at) {
    lastPreview = performance.now();
    const list = player.segments();
    const index = list.findIndex((s) => s.t1 > at);
    const s = list[index];
    if (s && index === player.current() && at >= s.t0 && video.readyState >= 1 && video.duration) {
      video.pause();
      video.currentTime = Math.max(0, Math.min((at - s.t0) / 1000, video.duration - 0.05));
    } else {
      play(at, { autoplay: false });
    }
  }

  // While dragging: at most one preview every PREVIEW_MS, and the latest moment previewed once the pointer rests.
  function previewSoon(at) {
    clearTimeout(previewTimer);
    const wait = PREVIEW_MS - (performance.now() - lastPreview);
    if (wait <= 0) preview(at);
    else previewTimer = setTimeout(() => dragging && preview(dragging.at), wait);
  }

  function momentAt(clientX) {
    const box = bar.getBoundingClientRect();
    if (!box.width || !until) return null;
    return since + Math.max(0, Math.min(1, (clientX - box.left) / box.width)) * (until - since);
  }

  player.setRate(speed.value); // a speed the browser kept from before
  speed.addEventListener("change", () => player.setRate(speed.value));

  bar.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !segments.length) return;
    const at = momentAt(e.clientX);
    if (at === null) return;
    try {
      bar.setPointerCapture(e.pointerId); // the drag goes on outside the bar
    } catch (err) {
      // a pointer the browser no longer tracks: the drag ends at the bar's edge
    }
    dragging = { id: e.pointerId, at };
    moment = at;
    show(at, true);
    previewSoon(at);
  });

  bar.addEventListener("pointermove", (e) => {
    if (!dragging || e.pointerId !== dragging.id) return;
    const at = momentAt(e.clientX);
    if (at === null) return;
    dragging.at = moment = at;
    show(at, true);
    previewSoon(at);
  });

  function endDrag(e, playIt) {
    if (!dragging || e.pointerId !== dragging.id) return;
    const at = e.type === "pointerup" ? momentAt(e.clientX) ?? dragging.at : dragging.at;
    dragging = null;
    clearTimeout(previewTimer);
    if (bar.hasPointerCapture && bar.hasPointerCapture(e.pointerId)) bar.releasePointerCapture(e.pointerId);
    moment = at;
    show(at, false);
    if (playIt) {
      releasedAt = performance.now();
      play(at);
    }
  }

  bar.addEventListener("pointerup", (e) => endDrag(e, true));
  bar.addEventListener("pointercancel", (e) => endDrag(e, false)); // the browser took the gesture: stay previewed

  // A click that came without pointer events (assistive technology, a script): play from that moment.
  bar.addEventListener("click", (e) => {
    if (performance.now() - releasedAt < 500) return;
    const at = momentAt(e.clientX);
    if (at !== null && segments.length) {
      moment = at;
      show(at, false);
      play(at);
    }
  });

  // Keys: Left/Right step 10 s (Shift: 60 s) from the current moment (else from the end of the footage), Home and
  // End go to the first and the last footage. Playing goes on playing; a paused video stays paused there.
  bar.addEventListener("keydown", (e) => {
    if (!segments.length || e.altKey || e.ctrlKey || e.metaKey) return;
    const from = moment !== null ? moment : segments[segments.length - 1].t1;
    const step = e.shiftKey ? LONG_STEP_MS : STEP_MS;
    let at;
    if (e.key === "ArrowLeft" || e.key === "ArrowDown") at = from - step;
    else if (e.key === "ArrowRight" || e.key === "ArrowUp") at = from + step;
    else if (e.key === "Home") at = segments[0].t0;
    else if (e.key === "End") at = segments[segments.length - 1].t1 - 1000;
    else return;
    e.preventDefault();
    at = Math.max(since, Math.min(until, at));
    const keepPaused = video.getAttribute("src") && video.paused && !video.ended;
    moment = at;
    show(at, false);
    if (keepPaused) preview(at);
    else play(at);
  });

  // Export a time range to MP4 (POST /api/v1/exports/ with the session): progress, then the download links.
  const form = root.querySelector("#rec-export");
  const status = root.querySelector("#rec-export-status");
  const pad = (n) => String(n).padStart(2, "0");
  const local = (ms) => {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  let exportTimer = null;

  function showExport(data) {
    status.replaceChildren();
    if (data.status === "done") {
      status.append(`${status.dataset.done} ${new Date(data.expires_at).toLocaleString()}) `);
      for (const file of data.files || []) {
        const link = document.createElement("a");
        link.href = file.url;
        link.download = file.name;
        link.textContent = `${status.dataset.download} ${file.name}`;
        link.dataset.role = "export-file";
        status.append(link, " ");
      }
      return true;
    }
    if (data.status === "failed") {
      status.append(`${status.dataset.failed} ${data.message || ""}`);
      return true;
    }
    status.append(data.status === "running" ? `${status.dataset.running} ${Math.round((data.progress || 0) * 100)}%`
      : status.dataset.queued);
    return false;
  }

  async function follow(url) {
    clearTimeout(exportTimer);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok && showExport(await response.json())) return;
    } catch (err) {
      // a moment offline: try again
    }
    exportTimer = setTimeout(() => follow(url), 2000);
  }

  function problem(body) {
    if (!body || typeof body !== "object") return "";
    return Object.entries(body).map(([k, v]) => (k === "detail" ? "" : `${k}: `) + [].concat(v).join(" ")).join("; ");
  }

  if (form) {
    form.hidden = false;
    form.since.value = local(Date.now() - 10 * 60 * 1000);
    form.until.value = local(Date.now());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { cameras: [Number(form.dataset.camera)], since: new Date(form.since.value).toISOString(),
                     until: new Date(form.until.value).toISOString() };
      const response = await fetch(form.dataset.url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json",
                   "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        status.textContent = `${status.dataset.failed} ${problem(data) || response.status}`;
        return;
      }
      showExport(data);
      follow(response.headers.get("Location") || `${form.dataset.url}${data.id}/`);
    });
  }

  window.SurveillanceRecordings = { load, play, segments: () => segments, current: player.current, at: player.at,
                                    moment: () => moment, range: () => ({ since, until }) };
  load();
  setInterval(load, 60000);
})();
