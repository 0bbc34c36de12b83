/* Dashboard: every tile's live picture at a low frame rate, its state, and new events as they happen. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const grid = document.getElementById("cameras");
  const table = document.getElementById("events");
  const labels = S.json("state-labels") || {};
  const conditionLabels = S.json("condition-labels") || {};
  const eventPage = (id) => `/events/${encodeURIComponent(id)}/`;
  const timeZone = document.body.dataset.timeZone;
  const tiles = new Map();
  document.querySelectorAll("[data-camera]").forEach((tile) => tiles.set(Number(tile.dataset.camera), tile));
  if (!tiles.size) return;
  const fps = Number(grid.dataset.liveFps) || 1;
  const live = new S.LiveStream();
  const part = (tile, role) => tile.querySelector(`[data-role="${role}"]`);

  tiles.forEach((_tile, camera) => live.subscribe(camera, { fps, frames: true }));
  live.on("subscribed", (m) => {
    const tile = tiles.get(m.camera);
    if (tile && m.state) S.setState(part(tile, "state"), m.state, labels);
  });
  live.on("frame", (m) => {
    const tile = tiles.get(m.camera);
    if (!tile) return;
    S.showFrame(part(tile, "frame"), m.blob);
    part(tile, "stamp").textContent = S.clock(m.ts, timeZone);
  });
  live.on("camera.status", (m) => {
    const tile = tiles.get(m.camera);
    if (!tile) return;
    const badge = part(tile, "state");
    S.setState(badge, m.state, labels);
    badge.title = m.error || "";
  });
  // What is wrong with the camera itself (covered, moved, dark...): a badge per open camera-health event.
  function showCondition(tile, event) {
    const details = event.details || {};
    const box = part(tile, "conditions");
    const current = box.querySelector(`[data-event="${CSS.escape(event.id)}"]`);
    if (event.ended_at) {
      if (current) current.remove();
      return;
    }
    const badge = current || document.createElement("a");
    badge.className = "badge condition";
    badge.dataset.event = event.id;
    badge.href = eventPage(event.id);
    badge.textContent = conditionLabels[details.condition] || details.condition || "";
    if (!current) box.append(badge);
  }

  live.on("event", async (m) => {
    const event = m.event;
    const tile = tiles.get(event.camera);
    if (tile && (event.details || {}).kind === "camera_health") showCondition(tile, event);
    if (tile) {
      const latest = part(tile, "latest");
      const current = latest.querySelector("[data-event]");
      // the tile shows the camera's newest event: replace it by a newer one, or refresh the same one
      if (!current || current.dataset.event === event.id ||
          new Date(event.started_at) >= new Date(current.querySelector("time").getAttribute("datetime"))) {
        const element = await S.fragment(table.dataset.tileUrl, event.id);
        if (element) latest.replaceChildren(element);
      }
    }
    await S.upsertRow(table.tBodies[0], table.dataset.rowUrl, event.id, 20);
  });
})();
