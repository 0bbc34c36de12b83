/* The site's service worker (docs/alerts.md, "Web Push"), served at /sw.js so that its scope is the whole site.
 *
 * `push`: an alert pushed by the server (alerts/push.py: {"type": "alert", "title", "body", "url", "event",
 * "severity", "delivery", "tag", "update", "lang"}) shows as a notification of the system, one per alert (its
 * `tag`): an update (the description, the final severity) replaces it without a second sound. While a page of
 * the site is in view, that page shows the alert itself (a toast, through its WebSocket): no notification then.
 * `notificationclick`: focuses a window of the site already showing the event, else opens it.
 * Nothing here is cached: the worker only carries notifications. A subscription the browser replaced is posted
 * again by the next page of the site (static/js/notify.js); the server forgets the old one at its next push. */
"use strict";

const LOUD = new Set(["high", "critical"]);

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

/* The event's address on this site only (a pushed URL of another origin is not opened). */
function sameOrigin(url, event) {
  try {
    const target = new URL(url, self.location.origin);
    if (target.origin === self.location.origin) return target.href;
  } catch (e) { /* fall through */ }
  return event ? new URL(`/events/${encodeURIComponent(event)}/`, self.location.origin).href : self.location.origin + "/";
}

function parse(data) {
  if (!data) return null;
  try {
    const m = data.json();
    return m && typeof m === "object" ? m : null;
  } catch (e) {
    return null;
  }
}

async function show(m) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  if (windows.some((w) => w.visibilityState === "visible")) return;  // the open page shows its toast
  const options = {
    body: m.body || "",
    tag: m.tag || (m.delivery ? `alert-${m.delivery}` : ""),
    lang: m.lang || "",
    data: { url: sameOrigin(m.url, m.event), event: m.event || null },
    renotify: !m.update,  // a new alert sounds; its update replaces it silently
    requireInteraction: LOUD.has(m.severity) && !m.update,  // high and critical stay until dismissed
    icon: "/static/favicon.svg",
    timestamp: Date.now(),
  };
  if (!options.tag) { delete options.tag; options.renotify = false; }
  await self.registration.showNotification(m.title || "Alert", options);
}

self.addEventListener("push", (event) => {
  const m = parse(event.data);
  if (!m || m.type !== "alert") return;
  event.waitUntil(show(m));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || self.location.origin + "/";
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const showing = windows.find((w) => w.url === url);
    if (showing) return showing.focus();
    const any = windows.find((w) => "navigate" in w);
    if (any) {
      await any.focus();
      return any.navigate(url);
    }
    return self.clients.openWindow(url);
  })());
});
