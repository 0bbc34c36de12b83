/* The pages' one connection to /ws/stream/ (docs/websocket.md): the session cookie authenticates it.
 * Reconnects with backoff and subscribes again; frames come as binary messages and are shown as blobs.
 * Keepalive (docs/websocket.md, "Keepalive"): the server pings the socket and the browser answers by
 * itself; the page also sends {"action": "ping"} when it has heard nothing for a while, and drops a
 * socket that stays silent after that (a dead network never closes it otherwise).
 * One connection per page: every `new LiveStream()` of a page (its own script, and notify.js for the
 * in-app alerts of every signed-in page) is the same object, so they share one socket. base.html loads
 * this file on every signed-in page, after a page's own copy: the second load changes nothing. */
(function () {
  "use strict";
  if (window.Surveillance && window.Surveillance.LiveStream) return;  // loaded already on this page

  const KEEPALIVE_MS = 30000;     // silent this long: send a ping
  const DEAD_MS = 75000;          // silent this long: the connection is dead, reconnect
  const STABLE_MS = 30000;        // open this long: the next drop reconnects quickly again
  const MAX_BACKOFF_MS = 30000;
  const CLOSE_UNAUTHENTICATED = 4401;  // signed out, password changed, account deactivated
  const CLOSE_RATE_LIMITED = 4429;

  class LiveStream {
    constructor() {
      if (LiveStream.shared) return LiveStream.shared;  // the page's one connection
      LiveStream.shared = this;
      this.subs = new Map();
      this.handlers = {};
      this.backoff = 1000;
      this.connect();
      window.addEventListener("online", () => this.reconnectNow());
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
      clearTimeout(this.retry);
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = (this.ws = new WebSocket(`${scheme}//${location.host}/ws/stream/`));
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.openedAt = this.heardAt = Date.now();
        this.keepalive = setInterval(() => this.checkAlive(ws), KEEPALIVE_MS / 3);
        this.emit("open", {});
        for (const [camera, options] of this.subs) this.send({ action: "subscribe", camera, ...options });
      };
      ws.onmessage = (m) => {
        this.heardAt = Date.now();
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
      ws.onclose = (event) => this.closed(ws, event.code);
    }

    /* Ping a quiet socket; give up on one that stays silent (its onclose may come minutes later). */
    checkAlive(ws) {
      if (ws !== this.ws) return;
      const quiet = Date.now() - this.heardAt;
      if (quiet >= DEAD_MS) {
        ws.onclose = null;
        ws.close();
        this.closed(ws, 0);
      } else if (quiet >= KEEPALIVE_MS) {
        this.send({ action: "ping" });
      }
    }

    closed(ws, code) {
      if (ws !== this.ws) return;
      clearInterval(this.keepalive);
      this.emit("close", { code });
      // Only a socket that stayed up a while resets the backoff: one closed right after opening
      // (a server error, a refused handshake) must not be retried every second.
      if (this.openedAt && Date.now() - this.openedAt >= STABLE_MS) this.backoff = 1000;
      this.openedAt = 0;
      if (code === CLOSE_UNAUTHENTICATED) {
        // The session is over: reload once, the server shows the sign-in page. Never in a loop.
        const last = Number(sessionStorage.getItem("live-reloaded-at") || 0);
        if (Date.now() - last > 60000) {
          sessionStorage.setItem("live-reloaded-at", String(Date.now()));
          location.reload();
          return;
        }
        this.backoff = MAX_BACKOFF_MS;
      } else if (code === CLOSE_RATE_LIMITED) {
        this.backoff = MAX_BACKOFF_MS;
      }
      const wait = this.backoff * (0.75 + Math.random() / 2);  // jitter: not every page at once
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      this.retry = setTimeout(() => this.connect(), wait);
    }

    /* The network is back: reconnect now instead of waiting out the backoff. */
    reconnectNow() {
      if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
      this.backoff = 1000;
      this.connect();
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

  LiveStream.shared = null;

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
