/* Score charts (uPlot, served from static/vendor): times in the user's time zone. */
(function () {
  "use strict";
  const timeZone = document.body.dataset.timeZone || "UTC";
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), timeZone);
  const el = document.getElementById("chart-labels");
  const labels = el ? JSON.parse(el.textContent) : {};
  const axis = { stroke: "#8b949e", grid: { stroke: "#2b333d", width: 1 }, ticks: { stroke: "#2b333d" } };

  const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const two = (n) => String(n).padStart(2, "0");
  /* 24-hour tick labels: seconds on short ranges, the date on long ones. */
  function timeValues(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map((ts) => {
      const d = tzDate(ts);
      const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
      if (span <= 1200) return `${hm}:${two(d.getSeconds())}`;
      if (span <= 86400 * 1.5 && !(d.getHours() === 0 && d.getMinutes() === 0)) return hm;
      return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
    });
  }

  function size(el) {
    const width = Math.max(220, el.clientWidth);
    return { width, height: Math.round(Math.max(170, Math.min(300, width * 0.32))) };
  }

  /* A time chart of `series` over `data` ([xs, ...ys]) in `el`, resized with it; `hooks` are uPlot hooks. */
  function timeChart(el, series, data, { threshold = 0, xRange = null, onClickIndex = null, zoom = true, hooks = {} } = {}) {
    const opts = {
      ...size(el),
      tzDate,
      hooks,
      cursor: { drag: { x: zoom, y: false } },
      scales: {
        x: { time: true, ...(xRange ? { range: () => xRange() } : {}) },
        y: { range: (u, min, max) => [0, Math.max(max || 0, threshold * 1.4, 0.1)] },
      },
      axes: [{ ...axis, values: timeValues, space: 70, incrs: TIME_INCRS }, { ...axis, size: 48 }],
      series: [{ label: labels.time || "Time", value: (u, ts) => (ts == null ? "--" : timeValues({ scales: { x: { min: 0, max: 600 } } }, [ts])[0]) },
               ...series],
    };
    const chart = new uPlot(opts, data, el);
    new ResizeObserver(() => chart.setSize(size(el))).observe(el);
    if (onClickIndex) {
      chart.over.style.cursor = "pointer";
      let downX = null;
      chart.over.addEventListener("mousedown", (e) => { downX = e.clientX; });
      chart.over.addEventListener("click", (e) => {  // a click, not the end of a drag-to-zoom
        if (downX !== null && Math.abs(e.clientX - downX) < 4 && chart.cursor.idx != null) onClickIndex(chart.cursor.idx);
      });
    }
    return chart;
  }

  const scoreSeries = (label) => ({ label, stroke: "#79b8ff", width: 1.5, fill: "rgba(121,184,255,0.12)",
                                    spanGaps: false, points: { show: false } });
  const thresholdSeries = (label) => ({ label, stroke: "#f85149", width: 1, dash: [6, 4], points: { show: false } });
  const markSeries = (label) => ({ label, stroke: "#e3b341", width: 0, paths: () => null,
                                   points: { show: true, size: 9, fill: "#e3b341", stroke: "#e3b341" } });

  window.SurveillanceCharts = { timeChart, scoreSeries, thresholdSeries, markSeries, labels };
})();
