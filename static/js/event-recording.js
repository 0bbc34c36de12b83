// The event page's recording (templates/recordings/_event_playback.html): the event's moment played from the
// camera's recorded segments (recplayer.js), from CLIP_PRE_SECONDS before it started, going on across segments
// until a few seconds after it ended. The video is loaded at that moment; the player's controls start it. While
// the event is still open, newer segments are fetched when the last one ends.
(function () {
  "use strict";
  const root = document.getElementById("event-recording");
  if (!root || !window.SurveillanceRecPlayer) return;
  const video = root.querySelector("#event-rec-video");
  const clock = root.querySelector("#event-rec-time");
  const start = Number(root.dataset.start); // epoch ms
  const open = root.dataset.open === "1";

  function url(until) {
    const query = new URLSearchParams({ since: root.dataset.since, until: until || root.dataset.until });
    return `${root.dataset.url}?${query}`;
  }

  const player = window.SurveillanceRecPlayer(video, {
    onTime(at) {
      clock.textContent = new Date(at).toLocaleString();
    },
    async onEnd() {
      if (!open) return;
      // The event goes on: footage recorded since the page was loaded (the last segment ended at ``last``).
      const last = player.at();
      const data = await player.load(url(new Date(Date.now() + 5000).toISOString()));
      if (!data || last === null) return;
      const next = data.segments.findIndex((s) => s.t0 >= last - 500 && s.t1 > last + 500);
      if (next >= 0) player.playSegment(next, 0, true);
    },
  });

  async function init() {
    const data = await player.load(url());
    if (data && data.segments.length) player.play(start, { autoplay: false });
  }

  window.SurveillanceEventRecording = { player, start };
  init();
})();
