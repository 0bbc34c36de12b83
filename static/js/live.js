/* The pages' one connection to /ws/stream/ (docs/websocket.md): the session cookie authenticates it.
 * Reconnects with backoff and subscribes again; frames come as binary messages and are shown as blobs. */
(function () {
  "use strict";

  class LiveStream {
    constructor() {
      this.subs = new Map();
      this.handlers = {};
      this.backoff = 1000;
      this.connect();
    }

    on(type, fn) {
      (this.handlers[type] = this.handlers[type] || []).push(fn);
      return this;
    }

    emit(type, message) {
      (this.handlers[type] || []).forEach((fn) => {
        try { fn(message); } catch (e) { console.error(e); }
      });
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = (this.ws = new WebSocket(`${scheme}//${location.host}/ws/stream/`));
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.backoff = 1000;
        this.emit("open", {});
        for (const [camera, options] of this.subs) this.send({ action: "subscribe", camera, ...options });
      };
      ws.onmessage = (m) => {
        if (typeof m.data === "string") {
          const message = JSON.parse(m.data);
          this.emit(message.type, message);
          return;
        }
        const view = new DataView(m.data);
        const n = view.getUint32(0);
        const header = JSON.parse(new TextDecoder().decode(new Uint8Array(m.data, 4, n)));
        header.blob = new Blob([new Uint8Array(m.data, 4 + n)], { type: "image/jpeg" });
        this.emit("frame", header);
      };
      ws.onclose = () => {
        this.emit("close", {});
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      };
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    }

    subscribe(camera, options) {
      const opts = { binary: true, ...options };
      this.subs.set(camera, opts);
      this.send({ action: "subscribe", camera, ...opts });
    }
  }

  /* Show a frame blob in an <img>, releasing the previous one. */
  function showFrame(img, blob) {
    const url = URL.createObjectURL(blob);
    const old = img.dataset.blob;
    img.onload = () => { if (old) URL.revokeObjectURL(old); };
    img.dataset.blob = url;
    img.src = url;
  }

  /* A server-rendered fragment (templates/events/_event_*.html) as an element. */
  async function fragment(pattern, eventId) {
    const response = await fetch(pattern.replace("00000000-0000-0000-0000-000000000000", eventId),
                                 { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) return null;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    return template.content.firstElementChild;
  }

  /* Insert or replace the row of an event at the top of a table body; keep at most `limit` rows. */
  async function upsertRow(tbody, pattern, eventId, limit) {
    const row = await fragment(pattern, eventId);
    if (!row) return;
    row.classList.add("flash");
    const existing = tbody.querySelector(`[data-event="${eventId}"]`);
    if (existing) existing.replaceWith(row);
    else tbody.prepend(row);
    const empty = tbody.querySelector("[data-empty]");
    if (empty) empty.remove();
    while (limit && tbody.children.length > limit) tbody.lastElementChild.remove();
  }

  function setState(badge, state, labels) {
    badge.className = `badge state-${state}`;
    badge.textContent = labels[state] || state;
    badge.dataset.state = state;
  }

  function clock(ts, timeZone) {
    return new Date(ts * 1000).toLocaleTimeString(document.body.dataset.language || undefined,
                                                  { timeZone, hour12: false });
  }

  function json(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  window.Surveillance = { LiveStream, showFrame, fragment, upsertRow, setState, clock, json };
})();
