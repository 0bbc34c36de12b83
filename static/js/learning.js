/* Camera page, operators: "learn what is normal now". The latest learning job's progress, live from the
 * WebSocket's "learning" messages (docs/websocket.md), and the learned versions with "Restore". */
(function () {
  "use strict";
  const S = window.Surveillance;
  const panel = document.getElementById("learning");
  if (!panel) return;
  const camera = Number(panel.dataset.camera);
  const timeZone = document.body.dataset.timeZone;
  const language = document.body.dataset.language || undefined;
  const $ = (role) => panel.querySelector(`[data-role="${role}"]`);
  const box = $("job"), bar = $("job-progress"), statusText = $("job-status"), messageText = $("job-message");
  const tbody = $("versions"), rowTemplate = $("version-row");
  const buttons = panel.querySelectorAll('form[data-role^="learn"] button');
  const label = (kind, key) => {
    const el = panel.querySelector(`[data-label-${kind}="${key}"]`);
    return el ? el.textContent : key;
  };

  function showJob(job) {
    box.hidden = false;
    bar.value = job.status === "done" ? 1 : job.progress;
    statusText.textContent = label("status", job.status) +
      (job.status === "running" ? ` ${Math.round(job.progress * 100)}%` : "");
    statusText.dataset.status = job.status;
    messageText.textContent = job.message || "";
    const busy = (job.status === "queued" || job.status === "running") && job.kind !== "feedback";
    buttons.forEach((b) => { b.disabled = busy; });
  }

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.ok ? response.json() : null;
  }

  function versionRow(v) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    const field = (name) => row.querySelector(`[data-field="${name}"]`);
    field("number").textContent = `v${v.number}` + (v.based_on ? ` ← v${v.based_on}` : "");
    field("source").textContent = label("source", v.source);
    field("source").title = v.note || "";
    field("frames").textContent = String(v.frames);
    field("created").textContent = new Date(v.created_at).toLocaleString(language, { timeZone, hour12: false }) +
      (v.created_by ? ` · ${v.created_by}` : "");
    if (v.active) field("restore").remove();
    else {
      field("active").remove();
      field("restore").action = panel.dataset.restoreUrl.replace("/0/restore/", `/${v.number}/restore/`);
    }
    row.dataset.version = v.number;
    return row;
  }

  async function loadVersions() {
    const data = await get(panel.dataset.versionsUrl);
    if (!data || !data.results.length) return;
    tbody.replaceChildren(...data.results.slice(0, 20).map(versionRow));
  }

  async function loadJob() {
    const data = await get(panel.dataset.jobsUrl);
    if (data && data.results.length) showJob(data.results[0]);
  }

  if (S.cameraLive) {
    S.cameraLive.on("learning", (m) => {
      if (m.camera !== camera) return;
      showJob(m);
      if (m.status === "done" && m.version) loadVersions();
    });
  }
  loadJob();
  loadVersions();
})();
