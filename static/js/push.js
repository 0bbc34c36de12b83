/* Web Push on every signed-in page (docs/alerts.md, "Web Push"): alerts reach this browser while no page of the
 * site is open, or on a phone whose browser is in the background.
 *
 * Once notifications are allowed (Preferences) and the site has VAPID keys (asked of
 * /api/v1/push/vapid-public-key/ then only; the URLs are in the page's "open-alerts" JSON,
 * surveillance/context_processors.py), the service worker (/sw.js, scope "/", static/js/sw.js) is registered and
 * the browser subscribed with the site's key; the subscription is posted to /api/v1/push-subscriptions/ once per
 * browser session (sessionStorage) and again after the site's keys changed. Preferences turn it off for this
 * browser (localStorage); signing out removes it from the server and the browser first.
 *
 * window.SurveillancePush: { supported, active, start(), stop(), setOff(off), off(), posted() } (notify.js leaves
 * the desktop notifications to the service worker once `active`). Loaded before notify.js. */
(function () {
  "use strict";
  const S = window.Surveillance;
  const state = (S && S.json("open-alerts")) || {};
  const config = state.push || {};
  const OFF = "surveillance.push.off";
  const POSTED = "surveillance.push.posted";
  const SIGN_OUT_WAIT_MS = 1500;  // signing out waits at most this for the server to forget the subscription

  const push = { active: false, error: "" };
  push.supported = Boolean(config.config && config.worker && config.subscriptions && "serviceWorker" in navigator &&
                           "PushManager" in window && "Notification" in window && window.isSecureContext !== false);

  /* The site's VAPID public key ("" while Web Push is not set up), asked once per page. */
  let asked = null;
  function siteKey() {
    if (!asked) {
      asked = fetch(config.config, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : {}))
        .then((answer) => (push.key = (answer && answer.public_key) || ""))
        .catch(() => (push.key = ""));
    }
    return asked;
  }

  function store(area, key, value) {
    try {
      if (value === undefined) return JSON.parse(area.getItem(key) || "null");
      if (value === null) area.removeItem(key); else area.setItem(key, JSON.stringify(value));
    } catch (e) { /* storage disabled */ }
    return null;
  }

  function csrf() {
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    return token ? token.value : "";
  }

  function keyBytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  function sameKey(subscription, key) {
    const have = subscription.options && subscription.options.applicationServerKey;
    if (!have) return true;  // the browser does not say: keep it
    const a = new Uint8Array(have);
    const b = keyBytes(key);
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  function mark(value) {
    if (value) document.documentElement.dataset.push = value;  // for tests and the preferences page
    else delete document.documentElement.dataset.push;
  }

  push.off = () => store(localStorage, OFF) === true;
  push.posted = () => store(sessionStorage, POSTED);

  /* Subscribe this browser (when allowed) and make sure the server has the subscription. */
  push.start = async () => {
    if (!push.supported || push.off() || Notification.permission !== "granted") return false;
    try {
      const key = await siteKey();
      if (!key) return false;  // the site has no VAPID keys
      const registration = await navigator.serviceWorker.register(config.worker, { scope: "/" });
      await navigator.serviceWorker.ready;
      let subscription = await registration.pushManager.getSubscription();
      if (subscription && !sameKey(subscription, key)) {  // made with the site's old keys
        await subscription.unsubscribe();
        subscription = null;
      }
      if (!subscription) {
        subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(key) });
      }
      const json = subscription.toJSON();
      const posted = push.posted();
      if (!posted || posted.endpoint !== json.endpoint || posted.user !== config.user || posted.key !== key) {
        const response = await fetch(config.subscriptions, {
          method: "POST", credentials: "same-origin", body: JSON.stringify(json),
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
        const saved = await response.json();
        store(sessionStorage, POSTED, { endpoint: json.endpoint, id: saved.id, user: config.user, key });
      }
      push.active = true;
      push.error = "";
      mark("subscribed");
      return true;
    } catch (e) {
      push.active = false;
      push.error = String((e && e.message) || e);
      mark("failed");
      return false;
    }
  };

  /* Forget this browser's subscription: on the server (by its id) and in the browser. */
  push.stop = async () => {
    push.active = false;
    const posted = push.posted();
    store(sessionStorage, POSTED, null);
    try {
      if (posted && posted.id) {
        await fetch(`${config.subscriptions}${encodeURIComponent(posted.id)}/`, {
          method: "DELETE", credentials: "same-origin", keepalive: true,
          headers: { Accept: "application/json", "X-CSRFToken": csrf() },
        });
      }
      const registration = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/") : null;
      const subscription = registration && registration.pushManager
        ? await registration.pushManager.getSubscription() : null;
      if (subscription) await subscription.unsubscribe();
    } catch (e) { /* offline: the server forgets it at its next push (404 or 410) */ }
    mark("");
  };

  push.setOff = async (off) => {
    store(localStorage, OFF, off ? true : null);
    if (off) await push.stop(); else await push.start();
  };

  window.SurveillancePush = push;

  // Signing out: this browser stops receiving the user's alerts, then the sign-out goes on.
  const signOut = document.querySelector('header form[action$="/logout/"]');
  if (signOut) {
    signOut.addEventListener("submit", (e) => {
      if (!push.posted()) return;
      e.preventDefault();
      const wait = new Promise((resolve) => setTimeout(resolve, SIGN_OUT_WAIT_MS));
      Promise.race([push.stop(), wait]).finally(() => signOut.submit());
    });
  }

  // Preferences: "Send alerts to this browser when it is closed" (Web Push on this browser).
  const box = document.getElementById("push-enabled");
  if (!box) {
    push.start();
    return;
  }
  const status = document.getElementById("push-status");
  function show() {
    let key = "on";
    if (push.key === "") key = "unavailable";
    else if (!push.supported) key = "unsupported";
    else if (push.off()) key = "off";
    else if (Notification.permission === "denied") key = "denied";
    else if (Notification.permission !== "granted") key = "off";
    else if (!push.active) key = push.error ? "failed" : "off";
    box.checked = key === "on";
    box.disabled = !push.supported || key === "denied" || key === "unavailable";
    status.textContent = (box.dataset[key] || "") + (key === "failed" && push.error ? ` (${push.error})` : "");
    status.dataset.state = key;
  }
  box.addEventListener("change", async () => {
    if (box.checked && Notification.permission === "default") {
      await new Promise((resolve) => {
        const asked = Notification.requestPermission(resolve);  // the callback: older Safari
        if (asked && asked.then) asked.then(resolve);
      });
    }
    await push.setOff(!box.checked);
    show();
  });
  show();
  siteKey().then(show).then(() => push.start()).then(show);
})();
