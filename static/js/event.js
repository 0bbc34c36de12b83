/* Event page: the score curve, and the handling and analysis kept current when another operator acts. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const C = window.SurveillanceCharts;
  const root = document.getElementById("event");
  const eventId = root.dataset.event;
  const camera = Number(root.dataset.camera);
  const curve = S.json("curve");

  const xs = curve.points.map(([dt]) => curve.start + dt);
  C.timeChart(document.getElementById("chart-event"),
    [C.scoreSeries(C.labels.score), C.thresholdSeries(C.labels.threshold)],
    [xs, curve.points.map(([, score]) => score), xs.map(() => curve.threshold)], { threshold: curve.threshold });

  async function refresh(id, url) {
    const element = await S.fragment(url, eventId);
    const current = document.getElementById(id);
    if (element && current) current.replaceWith(element);
  }

  const live = new S.LiveStream();
  live.subscribe(camera, { frames: false });
  live.on("subscribed", (m) => { if (m.camera === camera) root.dataset.live = "1"; });
  live.on("close", () => { delete root.dataset.live; });
  live.on("event", async (m) => {
    if (m.event.id !== eventId) return;
    await refresh("event-actions", root.dataset.actionsUrl);
    await refresh("event-analysis", root.dataset.analysisUrl);
    if (m.event.clip && root.dataset.hasClip !== "1") location.reload();  // the event ended: show its clip
  });
})();
