// The camera page's recordings (templates/recordings/_playback.html): a timeline of the footage recorded in the
// last 24 hours, or on any day (local midnight to midnight of the browser's time zone) chosen with the buttons above
// the bar or the date input (GET /api/v1/cameras/{id}/recordings/?since=&until=, session auth; a truncated answer is
// completed from its last segment's end, at most MAX_PAGES answers). The recorded ranges are the bar's base; three
// thin lanes on top mark the segments with motion, with objects and with events, each lane merging only adjacent
// segments that carry its mark. Click to play from a moment, or drag along the bar (mouse, pen or touch): the cursor
// and a time label follow the pointer, the video previews the moment (at most every PREVIEW_MS) and plays from
// where the pointer is released. The bar is a focusable slider: Left/Right step 10 s (Shift: 60 s) from the
// current moment. Playback goes on across segment boundaries (the next segment starts when one ends) at the
// chosen speed (recplayer.js). The list refreshes every minute in the last 24 hours' view only.
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
  const partial = root.querySelector("#rec-partial");
  const ticks = root.querySelector("#rec-ticks");
  const axisStart = root.querySelector("#rec-axis-start");
  const axisEnd = root.querySelector("#rec-axis-end");
  const prevButton = root.querySelector("#rec-prev");
  const nextButton = root.querySelector("#rec-next");
  const liveButton = root.querySelector("#rec-live");
  const dayInput = root.querySelector("#rec-day");
  const gotoLabel = root.querySelector("#rec-goto");
  const gotoInput = root.querySelector("#rec-goto-time");
  const playerControls = root.querySelector("#rec-controls");
  // The live view's words, from the template: the day view puts its own in their place.
  const LIVE = { start: axisStart.textContent, end: axisEnd.textContent, empty: empty.textContent,
                 aria: bar.getAttribute("aria-label") };
  const GAP_MS = 2000; // segments closer than this draw as one range
  const PREVIEW_MS = 250; // while dragging, the video previews the moment at most this often
  const STEP_MS = 10000; // Left/Right; with Shift, LONG_STEP_MS
  const LONG_STEP_MS = 60000;
  const LANES = [["motion", "has_motion"], ["objects", "has_objects"], ["event", "has_event"]];
  const MAX_PAGES = 5; // a truncated answer is completed with at most this many answers in all
  const HOUR_MS = 3600 * 1000;
  const DAY_MS = 24 * HOUR_MS;
  const TICK_HOURS = 3; // hour ticks under the bar (on a phone, every other one: 6 hours)
  // Dates in the page's language, in the browser's variant of it where it has one (en-GB: "Tue 1 Dec").
  const LOCALE = (() => {
    const lang = (document.documentElement.lang || "").toLowerCase();
    const base = lang.split("-")[0];
    return (navigator.languages || []).find((l) => !base || l.toLowerCase().split("-")[0] === base) || lang || undefined;
  })();
  let segments = [];
  let since = 0;
  let until = 0;
  let dayStart = null; // the day shown: its local midnight (epoch ms); null: the last 24 hours (the live view)
  let loaded = false; // the period shown has its list
  let truncated = false; // more segments in the period than the answers listed
  let loadFailed = false;
  let loads = 0; // loads started: the answer to an older one is dropped
  let moment = null; // the moment shown (epoch ms): playing, previewed or stepped to; null before any
  let dragging = null; // {id, at} while a pointer drags along the bar
  let lastPreview = 0;
  let previewTimer = null;
  let releasedAt = 0; // when a pointer was released: the click that follows was handled by the release

  const pad = (n) => String(n).padStart(2, "0");

  // The local midnight that starts the day of ``ms``, ``plusDays`` days on (23 or 25 hours apart across a DST change).
  function midnight(ms, plusDays) {
    const d = new Date(ms);
    return new Date(d.getFullYear(), d.getMonth(), d.getDate() + (plusDays || 0)).getTime();
  }

  function isoDay(ms) {
    const d = new Date(ms);
    return `${String(d.getFullYear()).padStart(4, "0")}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  // "YYYY-MM-DD" (a date input's value): its local midnight, or null.
  function parseDay(value) {
    const m = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!m) return null;
    const d = new Date(2000, 0, 1);
    d.setFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    return Number.isNaN(d.getTime()) ? null : d.getTime();
  }

  function dayName(ms) {
    const d = new Date(ms);
    const how = { weekday: "short", day: "numeric", month: "short" };
    if (d.getFullYear() !== new Date().getFullYear()) how.year = "numeric";
    return d.toLocaleDateString(LOCALE, how);
  }

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

  // The axis: the period's start and end under the bar, hour ticks (with faint lines across the bar) and, on today's
  // day view, the hours still to come hatched.
  function drawAxis() {
    axisStart.textContent = dayStart === null ? LIVE.start : `${dayName(dayStart)} 00:00`;
    axisEnd.textContent = dayStart === null ? LIVE.end : "24:00";
    ticks.replaceChildren();
    bar.querySelectorAll(".rec-grid, .rec-future").forEach((el) => el.remove());
    if (!until) return;
    const QUARTER = 15 * 60 * 1000; // local hours start on a quarter of an hour in every time zone
    for (let t = Math.ceil(since / QUARTER) * QUARTER; t < until; t += QUARTER) {
      const d = new Date(t);
      const left = pct(t);
      if (d.getMinutes() || d.getHours() % TICK_HOURS || left < 3 || left > 97) continue;
      const tick = document.createElement("span");
      tick.className = "rec-tick" + (d.getHours() % (2 * TICK_HOURS) ? " minor" : "");
      tick.style.left = left + "%";
      tick.textContent = `${pad(d.getHours())}:00`;
      ticks.appendChild(tick);
      const grid = document.createElement("span");
      grid.className = "rec-grid" + (d.getHours() % (2 * TICK_HOURS) ? " minor" : "");
      grid.style.left = left + "%";
      bar.prepend(grid);
    }
    const now = Date.now();
    if (dayStart !== null && now < until) {
      const future = document.createElement("span");
      future.className = "rec-future";
      future.style.left = pct(Math.max(since, now)) + "%";
      bar.prepend(future);
    }
  }

  function draw() {
    bar.querySelectorAll(".rec-range, .rec-lane").forEach((el) => el.remove());
    for (const r of runs(() => true)) span(r, "rec-range", root.dataset.recordedLabel);
    for (const [name, field] of LANES) {
      const title = root.dataset[name + "Label"];
      for (const r of runs((s) => s[field])) span(r, "rec-lane " + name, title);
    }
    drawAxis();
    empty.textContent = dayStart === null ? LIVE.empty : empty.dataset.day;
    empty.hidden = !loaded || segments.length > 0;
    partial.hidden = !loaded || !truncated;
    bar.setAttribute("aria-valuemin", String(Math.round(since / 1000)));
    bar.setAttribute("aria-valuemax", String(Math.round(until / 1000)));
    show(moment, Boolean(dragging)); // the list refreshes every minute, a drag may be under way
  }

  // Put the cursor (and, while dragging, the time label) at ``at``; the slider's value follows.
  function show(at, withLabel) {
    const value = at === null ? until : at;
    bar.setAttribute("aria-valuenow", String(Math.round(value / 1000)));
    bar.setAttribute("aria-valuetext", value ? new Date(value).toLocaleString() : "");
    cursor.hidden = at === null || !until || at < since || at > until; // a moment of another period: no cursor
    if (!cursor.hidden) cursor.style.left = pct(at) + "%";
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

  // The list of the period shown: the last 24 hours (the API's default, up to the server's now), or the day.
  function url() {
    if (dayStart === null) return root.dataset.url;
    const query = new URLSearchParams({ since: new Date(dayStart).toISOString(),
                                        until: new Date(midnight(dayStart, 1)).toISOString() });
    return `${root.dataset.url}?${query}`;
  }

  async function load() {
    const seq = ++loads;
    bar.setAttribute("aria-busy", "true");
    const data = await player.load(url(), { pages: MAX_PAGES });
    if (seq !== loads) return; // another period was chosen meanwhile: its own load draws
    bar.removeAttribute("aria-busy");
    loadFailed = !data;
    if (!data) return; // tried again at the next minute
    since = data.since;
    until = data.until;
    segments = data.segments;
    truncated = data.truncated;
    loaded = true;
    draw();
  }

  // The buttons and inputs above the bar follow the period shown (``withValue``: the date input's value too,
  // which is left alone while a minute passes, in case someone is typing into it).
  function controls(withValue) {
    const now = Date.now();
    dayInput.max = isoDay(now);
    if (withValue) dayInput.value = dayStart === null ? "" : isoDay(dayStart);
    nextButton.disabled = dayStart === null || midnight(dayStart, 1) > now; // the next day has not begun
    liveButton.setAttribute("aria-pressed", String(dayStart === null));
    gotoLabel.hidden = dayStart === null;
    bar.setAttribute("aria-label", dayStart === null ? LIVE.aria : `${bar.dataset.dayLabel}: ${dayName(dayStart)}`);
  }

  // Show a period: ``day`` is a moment of the day to show (null: the last 24 hours). A video that plays footage of
  // that period goes on; any other stops, and the period's list loads.
  function setView(day) {
    const next = day === null ? null : Math.min(midnight(day), midnight(Date.now())); // never past today
    if (next !== null && next === dayStart) {
      controls(true);
      return;
    }
    dayStart = next;
    const now = Date.now();
    since = dayStart === null ? now - DAY_MS : dayStart;
    until = dayStart === null ? now : midnight(dayStart, 1);
    const playing = player.segments()[player.current()];
    if (video.getAttribute("src") && !(playing && playing.t0 < until && playing.t1 > since)) {
      player.stop();
      video.hidden = playerControls.hidden = true;
      clock.textContent = "";
      moment = null;
    }
    if (moment !== null && (moment < since || moment > until)) moment = null;
    segments = [];
    truncated = false;
    loaded = false;
    controls(true);
    draw();
    load();
  }

  // Play from ``at`` (epoch ms): the segment that holds it, else the next one recorded after it, else the last
  // one (a click just past the end of a short range). ``how``: {autoplay: false} loads and seeks only.
  function play(at, how) {
    if (!player.play(at, how)) return false;
    playerControls.hidden = false;
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

  // The period: the day before (from the live view, yesterday), the day after, a day picked, the last 24 hours.
  prevButton.addEventListener("click", () => setView(midnight(dayStart === null ? Date.now() : dayStart, -1)));
  nextButton.addEventListener("click", () => dayStart !== null && setView(midnight(dayStart, 1)));
  liveButton.addEventListener("click", () => setView(null));
  let dayTimer = null;
  dayInput.addEventListener("change", () => { // typing a date changes it field by field: the last one counts
    clearTimeout(dayTimer);
    dayTimer = setTimeout(() => {
      if (!dayInput.value) setView(null); // cleared: the last 24 hours
      else if (parseDay(dayInput.value) !== null) setView(parseDay(dayInput.value));
    }, 250);
  });

  // Go to a time of the day shown: play from there (from the next footage, in a gap).
  let gotoTimer = null;
  function goTo() {
    clearTimeout(gotoTimer);
    const m = /^(\d{2}):(\d{2})(?::(\d{2}))?/.exec(gotoInput.value);
    if (dayStart === null || !m || !segments.length) return;
    const d = new Date(dayStart);
    d.setHours(Number(m[1]), Number(m[2]), Number(m[3] || 0), 0);
    moment = d.getTime();
    show(moment, false);
    play(moment);
  }
  gotoInput.addEventListener("change", () => {
    clearTimeout(gotoTimer);
    gotoTimer = setTimeout(goTo, 400);
  });
  gotoInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      goTo();
    }
  });

  // Export a time range to MP4 (POST /api/v1/exports/ with the session): progress, then the download links.
  const form = root.querySelector("#rec-export");
  const status = root.querySelector("#rec-export-status");
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
                                    moment: () => moment, range: () => ({ since, until }), day: () => dayStart,
                                    view: setView };
  controls(true);
  load();
  // Every minute: the live view's list refreshes (a day's list loads once, again only after a failure), and the
  // buttons follow the clock (a new day may have begun).
  setInterval(() => {
    controls(false);
    if (dayStart === null || loadFailed) load();
    else if (!dragging) drawAxis();
  }, 60000);
})();
