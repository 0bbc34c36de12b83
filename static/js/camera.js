/* Camera page: live picture at the chosen frame rate (with the camera's zones over it, static/js/zones.js),
   live score chart, the 24-hour timeline, new events, and the camera's facts kept current. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const C = window.SurveillanceCharts;
  const root = document.getElementById("camera");
  const camera = Number(root.dataset.camera);
  const labels = S.json("state-labels") || {};
  const timeline = S.json("timeline");
  const L = C.labels;
  const timeZone = document.body.dataset.timeZone;
  const img = document.getElementById("live-frame");
  const stamp = document.getElementById("live-stamp");
  const rate = document.getElementById("live-rate");
  const select = document.getElementById("live-fps");
  const badge = document.getElementById("camera-state");
  const table = document.getElementById("events");
  const threshold = timeline.threshold;

  // -- live score: the last 3 minutes --------------------------------------------------------
  const WINDOW = 180;
  const liveData = [[], [], []];
  const liveChart = C.timeChart(document.getElementById("chart-live"),
    [C.scoreSeries(L.score), C.thresholdSeries(L.threshold)], liveData, {
      threshold,
      xRange: () => { const now = Date.now() / 1000; return [now - WINDOW, now]; },
      zoom: false,
    });
  function addScore(at, score) {
    liveData[0].push(at); liveData[1].push(score); liveData[2].push(threshold);
    while (liveData[0].length && liveData[0][0] < at - WINDOW) liveData.forEach((a) => a.shift());
    liveChart.setData(liveData);
    appendDay(at, score);  // and the 24-hour chart
  }

  // -- the last 24 hours: the stored score history (highest per step), events marked, live scores appended --
  const DAY = 86400;
  const dayEl = document.getElementById("chart-day");
  const initial = timeline.history || { step_seconds: 60, t: [], max: [] };
  let step = initial.step_seconds || 60;
  let hist = { t: initial.t.slice(), max: initial.max.slice() };
  const marks = new Map();  // event id -> {t, peak, severity}
  for (const e of timeline.events) marks.set(e.id, { t: e.t, peak: e.peak, severity: e.severity });
  const css = getComputedStyle(document.documentElement);
  const sevColor = (s) => css.getPropertyValue(`--sev-${s}`).trim() || "#e3b341";
  const nowS = () => Date.now() / 1000;
  let span = DAY, follow = true, ids = [];

  /* uPlot columns: history points (null after a gap: the camera was stopped) and event starts. */
  function dayData() {
    const rows = [];
    for (let i = 0; i < hist.t.length; i++) {
      if (i && hist.t[i] - hist.t[i - 1] > step * 1.5) rows.push([hist.t[i - 1] + step, null, null, null]);
      rows.push([hist.t[i], hist.max[i], null, null]);
    }
    const start = nowS() - DAY;
    for (const [id, e] of marks) if (e.t >= start) rows.push([e.t, undefined, e.peak, id]);  // undefined: no gap
    rows.sort((x, y) => x[0] - y[0]);
    if (!rows.length || rows[0][0] > start) rows.unshift([start, null, null, null]);  // the chart spans the day
    if (rows[rows.length - 1][0] < nowS()) rows.push([nowS(), null, null, null]);
    ids = rows.map((r) => r[3]);
    return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map(() => threshold), rows.map((r) => r[2])];
  }

  function eventAt(left) {  // the event marked nearest to a click, within 8 px
    let best = null, bestDist = 8;
    for (const [id, e] of marks) {
      const d = Math.abs(dayChart.valToPos(e.t, "x") - left);
      if (d <= bestDist) { best = id; bestDist = d; }
    }
    return best;
  }

  const dayChart = C.timeChart(dayEl,
    [C.scoreSeries(L.score), C.thresholdSeries(L.threshold), C.markSeries(L.event)], dayData(), {
      threshold,
      onClickIndex: (i) => {
        const id = eventAt(dayChart.cursor.left) || ids[i];
        if (id) location.href = root.dataset.eventUrl.replace("00000000-0000-0000-0000-000000000000", id);
      },
      hooks: {
        setSelect: [(u) => { if (u.select.width > 0) follow = false; }],  // a drag zoom stops following now
        draw: [(u) => {  // a vertical line at each event's start, in its severity's colour
          const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          ctx.save();
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          for (const e of marks.values()) {
            if (e.t < u.scales.x.min || e.t > u.scales.x.max) continue;
            const x = Math.round(u.valToPos(e.t, "x", true));
            ctx.strokeStyle = sevColor(e.severity);
            ctx.globalAlpha = 0.55;
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          }
          ctx.restore();
        }],
      },
    });

  function redrawDay() {
    dayChart.setData(dayData(), false);
    if (follow) dayChart.setScale("x", { min: nowS() - span, max: nowS() });
  }
  let pending = null;
  function scheduleDay() { if (!pending) pending = setTimeout(() => { pending = null; redrawDay(); }, 2000); }
  redrawDay();

  /* A live score joins the history at the chart's step (the highest of each step is kept). */
  function appendDay(at, score) {
    const slot = Math.floor(at / step) * step, n = hist.t.length;
    if (n && hist.t[n - 1] === slot) hist.max[n - 1] = Math.max(hist.max[n - 1], score);
    else if (!n || slot > hist.t[n - 1]) { hist.t.push(slot); hist.max.push(score); }
    const start = nowS() - DAY - step;
    while (hist.t.length && hist.t[0] < start) { hist.t.shift(); hist.max.shift(); }
    scheduleDay();
  }

  function markEvent(event) {
    marks.set(event.id, { t: Date.parse(event.started_at) / 1000, peak: event.peak_score, severity: event.severity });
    scheduleDay();
  }

  /* Shorter spans ask the API for finer steps (GET /api/v1/cameras/{id}/scores/?since=). */
  async function loadSpan(seconds) {
    const since = new Date((nowS() - seconds) * 1000).toISOString();
    try {
      const response = await fetch(`${dayEl.dataset.scoresUrl}?since=${encodeURIComponent(since)}`,
                                   { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      if (span !== seconds) return;  // another span was chosen meanwhile
      step = data.step_seconds;
      hist = { t: data.t, max: data.max };
    } catch (e) {
      console.warn("Score history unavailable", e);
    }
    redrawDay();
  }

  document.querySelectorAll("[data-span]").forEach((button) => button.addEventListener("click", () => {
    span = Number(button.dataset.span);
    follow = true;
    document.querySelectorAll("[data-span]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    redrawDay();
    loadSpan(span);
  }));

  // -- the live connection -------------------------------------------------------------------
  const live = new S.LiveStream();
  S.cameraLive = live;  // learning.js listens on the same connection
  const subscribe = () => live.subscribe(camera, { fps: Number(select.value), frames: true });
  subscribe();
  select.addEventListener("change", subscribe);
  let frames = 0, since = performance.now();
  live.on("subscribed", (m) => { if (m.camera === camera && m.state) S.setState(badge, m.state, labels); });
  live.on("frame", (m) => {
    if (m.camera !== camera) return;
    S.showFrame(img, m.blob);
    stamp.textContent = S.clock(m.ts, timeZone);
    frames += 1;
    const elapsed = (performance.now() - since) / 1000;
    if (elapsed >= 2) {
      rate.textContent = `${(frames / elapsed).toFixed(1)} fps`;
      frames = 0; since = performance.now();
    }
  });
  live.on("score", (m) => { if (m.camera === camera) addScore(m.at, m.score); });
  live.on("camera.status", (m) => {
    if (m.camera !== camera) return;
    S.setState(badge, m.state, labels);
    badge.title = m.error || "";
    showState(m.state, m.error || "");
  });
  live.on("event", (m) => {
    if (m.event.camera === camera) S.upsertRow(table.tBodies[0], table.dataset.rowUrl, m.event.id, 50);
  });
  live.on("event", (m) => { if (m.event.camera === camera) markEvent(m.event); });

  // -- the zones over the live view (read-only; the editor's Save redraws them) -----------------------
  const Z = window.SurveillanceZones;
  const zoneOverlay = Z ? Z.overlay(img, S.json("camera-zones") || []) : null;
  const zoneToggle = document.getElementById("live-zones-toggle");
  if (zoneOverlay) {
    zoneOverlay.svg.id = "live-zones";
    zoneToggle.addEventListener("change", () => { zoneOverlay.svg.hidden = !zoneToggle.checked; });
    document.addEventListener("zones:saved", (e) => { if (e.detail.camera === camera) zoneOverlay.set(e.detail.zones); });
  }

  // -- the "Camera" panel, live: the state from the socket at once, the rest from the camera's API ---------
  const facts = document.getElementById("camera-facts");
  const fact = (name) => facts.querySelector(`[data-fact="${name}"]`);
  const language = document.body.dataset.language || undefined;
  const decimals = (v, n) => new Intl.NumberFormat(language, { minimumFractionDigits: n, maximumFractionDigits: n }).format(v);
  const plain = (v) => String(Math.round(Number(v) * 10) / 10);  // 5 and 2.5, as the fps note says them
  function showState(state, error) {
    fact("state").textContent = labels[state] || state;
    const holder = fact("error");
    holder.replaceChildren();
    if (error) {
      const span = document.createElement("span");
      span.className = "error";
      span.textContent = error;
      holder.append(" — ", span);
    }
    note.dataset.state = state;
    showNote();
  }
  function showTime(at) {
    const holder = fact("last_frame_at");
    if (!at) { holder.textContent = "—"; return; }
    const time = document.createElement("time");
    time.dateTime = at;
    // sv-SE writes YYYY-MM-DD HH:MM:SS, as the page does
    time.textContent = new Date(at).toLocaleString("sv-SE", { timeZone, hour12: false });
    holder.replaceChildren(time);
  }
  let lastZones = JSON.stringify(S.json("camera-zones") || []);
  async function refreshFacts() {
    if (document.hidden) return;
    try {
      const response = await fetch(root.dataset.cameraUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const c = await response.json();
      S.setState(badge, c.state, labels);
      badge.title = c.last_error || "";
      fact("measured_fps").textContent = decimals(c.measured_fps, 1);
      fact("analysis_fps").textContent = decimals(c.analysis_fps, 1);
      fact("threshold").textContent = decimals(c.threshold, 2);
      fact("detector").textContent = c.detector;
      showTime(c.last_frame_at);
      note.dataset.analysisFps = c.analysis_fps;
      note.dataset.measuredFps = c.measured_fps;
      showState(c.state, c.last_error || "");
      const zones = JSON.stringify(c.zones || []);
      if (zoneOverlay && zones !== lastZones) { lastZones = zones; zoneOverlay.set(c.zones || []); }
    } catch (e) {
      console.warn("Camera facts unavailable", e);
    }
  }
  document.addEventListener("zones:saved", (e) => { if (e.detail.camera === camera) lastZones = JSON.stringify(e.detail.zones); });

  // -- the frame rate's limit: frames are the analysed ones, so a camera analysed (or delivering) fewer shows fewer --
  const note = document.getElementById("live-fps-note");
  function showNote() {
    const choice = Number(select.value);
    const analysed = Number(note.dataset.analysisFps) || 0;
    const measured = Number(note.dataset.measuredFps) || 0;
    const running = note.dataset.state === "running";
    let text = "";
    if (running && measured > 0 && measured < analysed - 0.5 && choice > measured) {
      text = note.dataset.source.replaceAll("{limit}", plain(measured)).replaceAll("{choice}", String(choice));
    } else if (analysed > 0 && choice > analysed) {
      text = note.dataset.analysed.replaceAll("{limit}", plain(analysed)).replaceAll("{choice}", String(choice));
    }
    note.textContent = text;
    note.hidden = !text;
  }
  select.addEventListener("change", showNote);
  showNote();
  setInterval(refreshFacts, 5000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshFacts(); });
})();
