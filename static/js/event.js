/* Event page: the score curve, and the handling and analysis kept current when another operator acts. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const C = window.SurveillanceCharts;
  const root = document.getElementById("event");
  const eventId = root.dataset.event;
  const camera = Number(root.dataset.camera);
  const curve = S.json("curve");

  /* The curve grows while the event goes on: redrawn from each update of the event. One point (an
     event that has just opened) is drawn as a dot in a 10 s window, not as an empty chart. */
  let points = curve.points;
  const data = () => {
    const xs = points.map(([dt]) => curve.start + dt);
    return [xs, points.map(([, score]) => score), xs.map(() => curve.threshold)];
  };
  const xRange = () => {
    if (!points.length) return [curve.start - 5, curve.start + 5];
    const first = curve.start + points[0][0], last = curve.start + points[points.length - 1][0];
    return last - first < 1 ? [first - 5, last + 5] : [first, last];
  };
  const score = C.scoreSeries(C.labels.score);
  score.points = { show: (u) => u.data[0].length < 3, size: 7 };
  const chart = C.timeChart(document.getElementById("chart-event"),
    [score, C.thresholdSeries(C.labels.threshold)], data(), { threshold: curve.threshold, xRange });

  async function refresh(id, url) {
    const element = await S.fragment(url, eventId);
    const current = document.getElementById(id);
    if (element && current) current.replaceWith(element);
  }

  /* The camera's zones (as they are now: events keep none of their own) over the snapshot and the clip. */
  const Z = window.SurveillanceZones;
  const zones = S.json("event-zones");
  if (Z && Array.isArray(zones) && zones.length) {
    const snapshot = root.querySelector(".snapshot img");
    if (snapshot) Z.overlay(snapshot, zones).svg.id = "snapshot-zones";
    const clip = document.getElementById("clip");
    if (clip) Z.overlay(clip, zones).svg.id = "clip-zones";
  }

  const live = new S.LiveStream();
  live.subscribe(camera, { frames: false });
  live.on("subscribed", (m) => { if (m.camera === camera) root.dataset.live = "1"; });
  live.on("close", () => { delete root.dataset.live; });
  live.on("event", async (m) => {
    if (m.event.id !== eventId) return;
    const next = m.event.details && m.event.details.score_curve;
    if (Array.isArray(next) && next.length) { points = next; chart.setData(data()); }
    await refresh("event-actions", root.dataset.actionsUrl);
    await refresh("event-analysis", root.dataset.analysisUrl);
    if (m.event.clip && root.dataset.hasClip !== "1") location.reload();  // the event ended: show its clip
  });
})();
