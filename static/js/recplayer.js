// A player of recorded segments, shared by the camera page's recordings (recordings.js) and the event page's
// recording (event-recording.js): it lists a camera's segments (GET /api/v1/cameras/{id}/recordings/, session auth),
// plays from any moment (the segment that holds it, else the next one recorded after it) and goes on into the next
// segment when one ends, at the chosen speed.
//
//   const player = SurveillanceRecPlayer(video, { onTime(at) {}, onEnd() {} });
//   const data = await player.load(url);   // {since, until, segments} (epoch ms), or null when it failed
//   player.play(at);                        // from ``at`` (epoch ms); { autoplay: false } only loads and seeks
(function () {
  "use strict";

  window.SurveillanceRecPlayer = function (video, options) {
    const opts = options || {};
    let segments = [];
    let current = -1;
    let rate = 1;

    async function load(url) {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return null;
        const data = await response.json();
        segments = data.segments.map((s) => Object.assign({}, s, { t0: Date.parse(s.start), t1: Date.parse(s.end) }));
        return { since: Date.parse(data.since), until: Date.parse(data.until), segments, truncated: data.truncated };
      } catch (err) {
        return null; // offline for a moment: the caller tries again later
      }
    }

    function playSegment(index, offset, autoplay) {
      const segment = segments[index];
      if (!segment) return false;
      current = index;
      video.hidden = false;
      video.defaultPlaybackRate = rate;
      video.src = segment.url;
      video.addEventListener("loadedmetadata", function seek() {
        video.currentTime = Math.max(0, Math.min(offset, (video.duration || offset) - 0.05));
        video.playbackRate = rate;
        if (autoplay !== false) video.play().catch(() => {});
      }, { once: true });
      return true;
    }

    // Play from ``at`` (epoch ms): the segment that holds it, else the next one recorded after it, else the last
    // one (a moment just past the end of a short range).
    function play(at, how) {
      if (!segments.length) return false;
      let index = segments.findIndex((s) => s.t1 > at);
      if (index < 0) index = segments.length - 1;
      const s = segments[index];
      const offset = Math.max(0, Math.min((at - s.t0) / 1000, (s.t1 - s.t0) / 1000 - 0.5));
      return playSegment(index, offset, !how || how.autoplay !== false);
    }

    function setRate(value) {
      rate = Number(value) || 1;
      video.defaultPlaybackRate = video.playbackRate = rate;
    }

    // The moment shown (epoch ms), or null before anything plays.
    function at() {
      const segment = segments[current];
      return segment ? segment.t0 + video.currentTime * 1000 : null;
    }

    video.addEventListener("ended", () => {
      if (current + 1 < segments.length) playSegment(current + 1, 0, true);
      else if (opts.onEnd) opts.onEnd();
    });
    video.addEventListener("timeupdate", () => {
      const moment = at();
      if (moment !== null && opts.onTime) opts.onTime(moment);
    });

    return { load, play, playSegment, setRate, at, segments: () => segments, current: () => current };
  };
})();
