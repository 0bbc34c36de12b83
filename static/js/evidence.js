/* Event page: the notes and the reopen / reclassify buttons kept current (templates/events/_event_notes.html).
   event.js re-renders the handling panel (#event-actions) whenever the event is pushed again (another
   operator acted, or added a note: events.services pushes the event after each); then the notes list and the
   follow-up buttons are fetched again (fragment "notes"). The note being typed is left alone. */
(function () {
  "use strict";
  const panel = document.getElementById("event-notes");
  const actions = document.getElementById("event-actions");
  if (!panel || !actions || !actions.parentNode) return;
  const url = panel.dataset.notesUrl;
  let pending = null, again = false;

  async function refresh() {
    const response = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const fresh = template.content.firstElementChild;
    if (!fresh) return;
    for (const part of Array.from(fresh.children)) {
      const current = part.id && document.getElementById(part.id);
      if (current) current.replaceWith(part);
    }
  }

  new MutationObserver((records) => {
    const replaced = records.some((r) => Array.from(r.addedNodes).some((n) => n.id === "event-actions"));
    if (!replaced) return;
    if (pending) { again = true; return; }
    const run = () => {
      pending = refresh().catch(() => {}).finally(() => {
        pending = null;
        if (again) { again = false; run(); }
      });
    };
    run();
  }).observe(actions.parentNode, { childList: true });
})();
