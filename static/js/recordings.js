// The camera page's recordings (templates/recordings/_playback.html): a timeline of the footage recorded in the
// last 24 hours (GET /api/v1/cameras/{id}/recordings/, session auth), click to play from that moment; playback
// goes on across segment boundaries (the next segment starts when one ends) at the chosen speed (recplayer.js).
(function () {
  "use strict";
  const root = document.getElementById("recordings");
  if (!root) return;
  const bar = root.querySelector("#rec-timeline");
  const cursor = root.querySelector("#rec-cursor");
  const video = root.querySelector("#rec-video");
  const speed = root.querySelector("#rec-speed");
  const clock = root.querySelector("#rec-time");
  const empty = root.querySelector("#rec-empty");
  const GAP_MS = 2000; // segments closer than this draw as one range
  let segments = [];
  let since = 0;
  let until = 0;

  function pct(t) {
    return Math.max(0, Math.min(100, ((t - since) / (until - since)) * 100));
  }

  function draw() {
    bar.querySelectorAll(".rec-range").forEach((el) => el.remove());
    let range = null;
    const ranges = [];
    for (const s of segments) {
      if (range && s.t0 - range.t1 <= GAP_MS) {
        range.t1 = Math.max(range.t1, s.t1);
        range.motion = range.motion || s.has_motion;
        range.event = range.event || s.has_event;
      } else {
        range = { t0: s.t0, t1: s.t1, motion: s.has_motion, event: s.has_event };
        ranges.push(range);
      }
    }
    for (const r of ranges) {
      const el = document.createElement("span");
      el.className = "rec-range" + (r.event ? " event" : r.motion ? " motion" : "");
      el.style.left = pct(r.t0) + "%";
      el.style.width = Math.max(0.2, pct(r.t1) - pct(r.t0)) + "%";
      const marks = [r.motion && root.dataset.motionLabel, r.event && root.dataset.eventLabel].filter(Boolean);
      el.title = new Date(r.t0).toLocaleTimeString() + " – " + new Date(r.t1).toLocaleTimeString() +
        (marks.length ? " (" + marks.join(", ") + ")" : "");
      bar.appendChild(el);
    }
    empty.hidden = segments.length > 0;
  }

  const player = window.SurveillanceRecPlayer(video, {
    onTime(at) {
      clock.textContent = new Date(at).toLocaleString();
      cursor.hidden = false;
      cursor.style.left = pct(at) + "%";
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
  // one (a click just past the end of a short range).
  function play(at) {
    if (!player.play(at)) return false;
    root.querySelector("#rec-controls").hidden = false;
    return true;
  }

  player.setRate(speed.value); // a speed the browser kept from before
  speed.addEventListener("change", () => player.setRate(speed.value));
  bar.addEventListener("click", (e) => {
    const box = bar.getBoundingClientRect();
    if (!box.width || !until) return;
    play(since + ((e.clientX - box.left) / box.width) * (until - since));
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

  window.SurveillanceRecordings = { load, play, segments: () => segments, current: player.current };
  load();
  setInterval(load, 60000);
})();
