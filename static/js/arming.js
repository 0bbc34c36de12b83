/* Dashboard: each tile's arming mode (docs/alerts.md, "Arming"). The badge follows the `arming` messages of the
 * page's one live connection (a switch anywhere shows at once) and asks the API again every `data-refresh`
 * seconds (ARMING_REFRESH_SECONDS), so that a scheduled switch shows too. Operators switch it with the select:
 * POST /api/v1/cameras/{id}/arming/ {"mode": "disarmed"} ("auto": follow the area and the schedules). */
(function () {
  "use strict";
  const S = window.Surveillance;
  const boxes = new Map();
  document.querySelectorAll('[data-role="arming"]').forEach((box) => boxes.set(Number(box.dataset.armingCamera), box));
  if (!boxes.size || !S) return;
  const labels = S.json("arming-labels") || { modes: {}, sources: {} };
  const url = (camera) => `/api/v1/cameras/${encodeURIComponent(camera)}/arming/`;

  function sourceLabel(a) {
    let key = a.source;
    if ((key === "camera" || key === "area") && !a.set_by) key += "_nobody";
    const text = labels.sources[key];
    if (!text) return a.source_label || "";
    return text.replace("{user}", a.set_by || "").replace("{schedule}", (a.schedule || {}).name || "");
  }

  function show(camera, a) {
    const box = boxes.get(camera);
    if (!box || !a || !a.mode) return;
    box.dataset.mode = a.mode;
    box.dataset.source = a.source || "";
    const badge = box.querySelector('[data-role="arming-badge"]');
    badge.className = `badge arming-mode arming-${a.mode}`;
    badge.textContent = labels.modes[a.mode] || a.mode_label || a.mode;
    badge.title = sourceLabel(a);
    const select = box.querySelector('[data-role="arming-select"]');
    // The select shows the camera's own hand-set mode; "auto" when the area or a schedule decides.
    if (select && !box.dataset.busy) select.value = a.source === "camera" ? a.mode : "auto";
  }

  function problem(box, text) {
    let note = box.querySelector(".arming-error");
    if (!note) {
      note = document.createElement("span");
      note.className = "arming-error";
      note.setAttribute("role", "alert");
      box.append(note);
    }
    note.textContent = text;
  }

  async function refresh(camera) {
    try {
      const response = await fetch(url(camera), { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) show(camera, await response.json());
    } catch (_err) { /* offline: the next refresh or push updates it */ }
  }

  boxes.forEach((box, camera) => {
    const select = box.querySelector('[data-role="arming-select"]');
    if (!select) return;
    const form = select.form;
    form.addEventListener("submit", (e) => e.preventDefault());
    select.addEventListener("change", async () => {
      const token = form.querySelector("[name=csrfmiddlewaretoken]");
      box.dataset.busy = "1";
      const note = box.querySelector(".arming-error");
      if (note) note.remove();
      try {
        const response = await fetch(url(camera), {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json",
                     "X-CSRFToken": token ? token.value : "" },
          body: JSON.stringify({ mode: select.value }),
        });
        const body = await response.json().catch(() => ({}));
        delete box.dataset.busy;
        if (response.ok) {
          show(camera, body);
        } else {
          problem(box, (body.mode && body.mode[0]) || body.detail || response.statusText);
          refresh(camera);
        }
      } catch (_err) {
        delete box.dataset.busy;
        problem(box, labels.network || "");
        refresh(camera);
      }
    });
  });

  const live = new S.LiveStream();
  live.on("arming", (m) => show(m.camera, m));
  const every = Number(boxes.values().next().value.dataset.refresh) || 0;
  if (every > 0) setInterval(() => boxes.forEach((_box, camera) => refresh(camera)), every * 1000);
})();
