/* In-app alerts on every signed-in page (docs/alerts.md, "On open pages"): the `notification` messages of
 * /ws/stream/ (docs/websocket.md) become toasts, top right; a follow-up (the same `delivery`, "update": true)
 * changes its toast instead of adding one. High and critical alerts stay until dismissed, play the alert
 * sound (unless the user turned it off in their preferences) and, while the page is hidden, show a desktop
 * notification when the user allowed them. The badge in the top navigation and the count in the title are
 * the user's open alerts: unacknowledged high and critical events they were alerted to, as the server
 * counted them for the page (surveillance/context_processors.py), plus those that arrive, minus those
 * acknowledged or resolved meanwhile (`event` messages).
 *
 * The page's one connection is live.js's: `new LiveStream()` is the socket the page's own script opened, or
 * opens it where the page has none; it reconnects with backoff and reloads once on 4401. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const box = document.getElementById("toasts");
  if (!S || !box) return;

  const state = S.json("open-alerts") || {};
  const LOUD = new Set(state.severities || ["high", "critical"]);
  const MAX = state.max || 99;
  const FADE_MS = (state.toast_seconds || 10) * 1000;
  const MAX_TOASTS = 5;
  const MAX_WATCHED = 20;  // cameras subscribed (no frames) only to hear that a counted event was acknowledged
  const text = box.dataset;  // the page's translated words (templates/base.html)
  const SEVERITY = { low: text.sevLow, medium: text.sevMedium, high: text.sevHigh, critical: text.sevCritical };
  const badge = document.getElementById("alert-badge");
  const audio = document.getElementById("alert-sound");
  const sound = document.body.dataset.alertSound === "1" && audio !== null;
  const baseTitle = document.title.replace(/^\(\d+\+?\)\s*/, "");

  const counted = new Map((state.events || []).map(([event, camera]) => [event, camera]));  // event id -> camera
  const more = Boolean(state.more);  // more open alerts than the page was told of: the count ends with "+"
  const toasts = new Map();  // delivery id -> toast element
  const desktopShown = new Set();  // delivery ids with a desktop notification
  const watched = new Set();
  const live = new S.LiveStream();

  // -- the badge and the title ------------------------------------------------------------------------
  function countLabel(n) {
    if (more) return n > MAX ? `${MAX}+` : `${n}+`;
    return n ? String(n) : "";
  }

  function render() {
    const label = countLabel(counted.size);
    document.title = label ? `(${label}) ${baseTitle}` : baseTitle;
    if (!badge) return;
    badge.hidden = !label;
    badge.dataset.count = String(counted.size);
    badge.querySelector("[data-role=count]").textContent = label;
    badge.setAttribute("aria-label", text.badge.replace("%(count)s", label || "0"));
  }

  /* Hear of the camera's events (acknowledged, resolved) without its pictures, unless the page already does. */
  function watch(camera) {
    if (!Number.isInteger(camera) || live.subs.has(camera) || watched.size >= MAX_WATCHED) return;
    watched.add(camera);
    live.subscribe(camera, { frames: false });
  }

  function count(m) {
    if (typeof m.event !== "string") return;
    if (LOUD.has(m.severity)) {
      counted.set(m.event, m.camera);
      watch(m.camera);
    } else {
      counted.delete(m.event);  // a follow-up lowered it: no longer counted (as a reload would not)
    }
    render();
  }

  // -- toasts ----------------------------------------------------------------------------------------------
  function href(m) {
    try {
      const url = new URL(m.url, location.href);
      if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    } catch (e) { /* fall through */ }
    return `/events/${encodeURIComponent(m.event)}/`;
  }

  function element(tag, className, role) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (role) el.dataset.role = role;
    return el;
  }

  function build(delivery) {
    const el = element("div", "toast");
    el.dataset.delivery = String(delivery);
    const head = element("div", "toast-head");
    head.append(element("span", "badge", "severity"), element("strong", "toast-camera", "camera"),
                element("span", "toast-updated muted small", "updated"));
    const close = element("button", "quiet toast-close", "close");
    close.type = "button";
    close.setAttribute("aria-label", text.dismiss);
    close.title = text.dismiss;
    close.textContent = "×";
    close.addEventListener("click", () => remove(el));
    head.append(close);
    const link = element("a", "toast-link small", "link");
    link.textContent = text.open;
    el.append(head, element("p", "toast-title", "title"), element("p", "toast-similar muted small", "similar"), link);
    // a toast that fades waits while the pointer or the keyboard is on it
    el.addEventListener("mouseenter", () => clearTimeout(el.fade));
    el.addEventListener("focusin", () => clearTimeout(el.fade));
    el.addEventListener("mouseleave", () => schedule(el));
    return el;
  }

  function fill(el, m, update) {
    const part = (role) => el.querySelector(`[data-role="${role}"]`);
    el.dataset.event = m.event;
    el.dataset.severity = m.severity;
    el.className = `toast toast-${m.severity}`;
    const severity = part("severity");
    severity.className = `badge sev-${m.severity}`;
    severity.textContent = SEVERITY[m.severity] || m.severity;
    part("camera").textContent = m.camera_name || "";
    part("title").textContent = m.title || "";
    part("updated").textContent = update ? text.updated : "";
    const similar = Number(m.similar_suppressed) || 0;
    part("similar").textContent = similar > 0 ? text.similar.replace("%(count)s", String(similar)) : "";
    part("link").href = href(m);
    if (update) el.dataset.updated = "1";
  }

  function schedule(el) {
    clearTimeout(el.fade);
    if (LOUD.has(el.dataset.severity) || !el.isConnected) return;  // high and critical stay until dismissed
    el.fade = setTimeout(() => {
      el.classList.add("toast-fading");
      setTimeout(() => remove(el), 400);
    }, FADE_MS);
  }

  function remove(el) {
    clearTimeout(el.fade);
    toasts.delete(Number(el.dataset.delivery));
    el.remove();
  }

  function show(m) {
    const delivery = Number(m.delivery);
    if (!Number.isFinite(delivery)) return;
    let el = toasts.get(delivery);
    const fresh = !el;
    const wasLoud = !fresh && LOUD.has(el.dataset.severity);
    if (fresh) {
      el = build(delivery);
      toasts.set(delivery, el);
      box.prepend(el);  // the newest on top
      while (box.children.length > MAX_TOASTS) remove(box.lastElementChild);  // the oldest goes
    }
    fill(el, m, m.update === true || !fresh);
    schedule(el);
    const loud = LOUD.has(m.severity) && !wasLoud;  // new to the user as high or critical
    if (loud) beep();
    desktop(m, loud);
  }

  // -- the sound ----------------------------------------------------------------------------------------------
  function beep() {
    if (!sound) return;
    try {
      audio.currentTime = 0;
      const playing = audio.play();
      const played = () => { audio.dataset.played = String(Number(audio.dataset.played || 0) + 1); };
      // A browser refuses to play before the user has interacted with the page once: the toast still shows.
      if (playing && playing.then) playing.then(played, () => { audio.dataset.blocked = "1"; });
      else played();
    } catch (e) { /* no audio output */ }
  }

  if (sound) {
    // Safari lets an element play later only after it played once in a user gesture: do that, silently.
    const unlock = () => {
      document.removeEventListener("pointerdown", unlock, true);
      document.removeEventListener("keydown", unlock, true);
      if (!audio.paused || audio.dataset.played) return;
      audio.muted = true;
      const p = audio.play();
      const done = () => { audio.pause(); audio.currentTime = 0; audio.muted = false; };
      if (p && p.then) p.then(done, done); else done();
    };
    document.addEventListener("pointerdown", unlock, true);
    document.addEventListener("keydown", unlock, true);
  }

  // Web Push (static/js/push.js): once this browser is subscribed, its service worker shows the notifications.
  const push = window.SurveillancePush || { active: false, start() {} };

  // -- desktop notifications (the Notification API; allowed in the preferences page) ------------------------
  function desktop(m, loud) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
    if (push.active) return;  // this browser is subscribed: the service worker shows it (static/js/sw.js)
    const delivery = Number(m.delivery);
    // a new high or critical alert; an update replaces the one shown (the same tag), silently
    if (!loud && !(desktopShown.has(delivery) && LOUD.has(m.severity))) return;
    try {
      const n = new Notification(`${SEVERITY[m.severity] || m.severity} · ${m.camera_name || ""}`, {
        body: m.title || "", tag: `alert-${delivery}`, lang: m.language || "",
      });
      const url = href(m);
      n.onclick = () => { window.focus(); n.close(); location.href = url; };
      desktopShown.add(delivery);
    } catch (e) { /* e.g. a phone's browser, which shows them only through a service worker */ }
  }

  const allow = document.getElementById("desktop-notifications");
  if (allow) {
    const status = document.getElementById("desktop-notifications-status");
    const showPermission = () => {
      const permission = "Notification" in window && window.isSecureContext !== false
        ? Notification.permission : "unsupported";  // HTTPS (or this machine) only
      status.textContent = allow.dataset[permission] || "";
      status.dataset.permission = permission;
      allow.hidden = permission !== "default";
    };
    const shown = () => { showPermission(); push.start(); };
    allow.addEventListener("click", () => {
      const asked = Notification.requestPermission(shown);  // the callback: older Safari
      if (asked && asked.then) asked.then(shown);
    });
    showPermission();
  }

  // -- the connection -----------------------------------------------------------------------------------------
  live.on("notification", (m) => {
    show(m);
    count(m);
  });
  live.on("event", (m) => {
    const event = m.event || {};
    if (!counted.has(event.id)) return;
    if (event.status !== "new" || !LOUD.has(event.severity)) {
      counted.delete(event.id);
      render();
    }
  });
  // a camera watched here that the user may no longer view: stop asking for it at each reconnection
  const forget = (m) => {
    if (watched.has(m.camera) && (m.type === "unsubscribed" || m.code === "not_found" || m.code === "forbidden")) {
      live.subs.delete(m.camera);
      watched.delete(m.camera);
    }
  };
  live.on("unsubscribed", forget);
  live.on("error", forget);

  // whether the page hears alerts now (tests wait for it)
  live.on("open", () => { box.dataset.connected = "1"; });
  live.on("close", () => { delete box.dataset.connected; });
  if (live.ws && live.ws.readyState === WebSocket.OPEN) box.dataset.connected = "1";

  new Set(counted.values()).forEach(watch);
  render();
  window.SurveillanceNotify = { counted, toasts, push };  // for tests and the console
})();
