/* Camera page: live picture at the chosen frame rate, live score chart, the 24-hour timeline, new events. */
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
  }

  // -- the last 24 hours: each event's score curve at its time, a dot where it started ------------
  const dayStart = timeline.since;
  const xs = [dayStart], ys = [null], marks = [null], ids = [null];  // the chart spans the whole day
  const events = timeline.events.slice().sort((a, b) => a.t - b.t);
  for (const e of events) {
    const points = e.curve && e.curve.length ? e.curve : [[0, e.peak]];
    points.forEach(([dt, score], i) => {
      xs.push(e.t + dt); ys.push(score); marks.push(i === 0 ? e.peak : null); ids.push(e.id);
    });
    const last = e.t + points[points.length - 1][0];
    xs.push(last + 0.001); ys.push(null); marks.push(null); ids.push(e.id);  // a gap between events
  }
  const dayEnd = Date.now() / 1000;
  xs.push(dayEnd); ys.push(null); marks.push(null); ids.push(null);
  let span = 86400;
  const dayChart = C.timeChart(document.getElementById("chart-day"),
    [C.scoreSeries(L.score), C.thresholdSeries(L.threshold), C.markSeries(L.event)],
    [xs, ys, xs.map(() => threshold), marks], {
      threshold,
      onClickIndex: (i) => { if (ids[i]) location.href = root.dataset.eventUrl.replace("00000000-0000-0000-0000-000000000000", ids[i]); },
    });

  document.querySelectorAll("[data-span]").forEach((button) => button.addEventListener("click", () => {
    span = Number(button.dataset.span);
    document.querySelectorAll("[data-span]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    dayChart.setScale("x", { min: Math.max(dayStart, dayEnd - span), max: dayEnd });
  }));

  // -- the live connection -------------------------------------------------------------------
  const live = new S.LiveStream();
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
  });
  live.on("event", (m) => {
    if (m.event.camera === camera) S.upsertRow(table.tBodies[0], table.dataset.rowUrl, m.event.id, 50);
  });
})();
