/* The camera page's "Live figures" panel: GET /api/v1/cameras/{id}/figures/ every 5 s while visible. */
(function () {
  "use strict";
  const panel = document.getElementById("figures");
  if (!panel) return;
  const set = (name, text) => {
    const el = panel.querySelector(`[data-figure="${name}"]`);
    if (el) el.textContent = text;
  };
  const num = (v, digits, unit) => (v === null || v === undefined || Number.isNaN(v) ? "—" : `${Number(v).toFixed(digits)}${unit}`);

  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch(panel.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const f = await response.json();
      set("worker", f.worker || "—");
      set("fps", num(f.fps, 2, ""));
      set("lag", f.lag_s === undefined ? "—" : num(f.lag_s * 1000, 0, " ms"));
      set("detector", f.detector_ms_p50 === undefined ? "—" : `${num(f.detector_ms_p50, 1, "")} / ${num(f.detector_ms_p95, 1, " ms")}`);
      set("events", f.events === undefined ? "—" : String(f.events));
      set("alerts", `${f.alerts_sent ?? 0} / ${f.alerts_failed ?? 0}`);
      set("subscribers", String(f.subscribers ?? 0));
    } catch (e) {
      console.warn("Live figures unavailable", e);
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
