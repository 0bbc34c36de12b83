// A player of recorded segments, shared by the camera page's recordings (recordings.js) and the event page's
// recording (event-recording.js): it lists a camera's segments (GET /api/v1/cameras/{id}/recordings/, session auth),
// plays from any moment (the segment that holds it, else the next one recorded after it) and goes on into the next
// segment when one ends, at the chosen speed.
//
//   const player = SurveillanceRecPlayer(video, { onTime(at) {}, onEnd() {} });
//   const data = await player.load(url);   // {since, until, segments, truncated} (epoch ms), or null when it failed
//   await player.load(url, { pages: 5 });   // while the answer is truncated, ask again from the last segment's end
//   player.play(at);                        // from ``at`` (epoch ms); { autoplay: false } only loads and seeks
//   player.stop();                          // nothing loaded in the video any more
//
// A load supersedes one still under way (that one answers null and changes nothing). The segment that plays stays
// the current one when a new list holds it too.
(function () {
  "use strict";

  window.SurveillanceRecPlayer = function (video, options) {
    const opts = options || {};
    let segments = [];
    let current = -1;
    let rate = 1;
    let loading = null; // the AbortController of the load under way
    let pending = false; // a segment is loading: not seeked to the moment asked for yet

    async function fetchPage(url, signal) {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal });
      return response.ok ? response.json() : null;
    }

    // ``how.pages``: at most this many answers (default 1). While an answer is truncated (more segments overlap the
    // range than one answer lists), the next asks for the rest: from the last segment's end to the first answer's
    // until. ``truncated`` in the result: the range holds more than the segments listed.
    async function load(url, how) {
      const pages = Math.max(1, (how && how.pages) || 1);
      if (loading) loading.abort();
      const controller = new AbortController();
      loading = controller;
      try {
        let data = await fetchPage(url, controller.signal);
        if (!data) return null;
        const first = data;
        const seen = new Set();
        const list = [];
        const next = new URL(url, window.location.href);
        for (let page = 1; ; page++) {
          for (const s of data.segments) {
            if (seen.has(s.id)) continue; // a segment that overlaps the next page's start comes twice
            seen.add(s.id);
            list.push(s);
          }
          const last = data.segments[data.segments.length - 1];
          if (!data.truncated || !last || page >= pages) break;
          if (next.searchParams.get("since") === last.end) break; // no progress: keep what came
          next.searchParams.set("since", last.end);
          next.searchParams.set("until", first.until);
          data = await fetchPage(next.toString(), controller.signal);
          if (!data) return null;
        }
        if (controller.signal.aborted) return null;
        const playing = segments[current];
        segments = list.map((s) => Object.assign({}, s, { t0: Date.parse(s.start), t1: Date.parse(s.end) }));
        segments.sort((a, b) => a.t0 - b.t0 || a.id - b.id);
        current = playing ? segments.findIndex((s) => s.id === playing.id) : -1;
        return { since: Date.parse(first.since), until: Date.parse(first.until), segments,
                 truncated: Boolean(data.truncated) };
      } catch (err) {
        return null; // offline for a moment, or superseded: the caller tries again later
      } finally {
        if (loading === controller) loading = null;
      }
    }

    // Play segment ``index`` from ``offset`` seconds. The segment already loaded is only seeked; another one loads,
    // and until it has been seeked its time 0 is not reported as the moment shown (``onTime``).
    function playSegment(index, offset, autoplay) {
      const segment = segments[index];
      if (!segment) return false;
      const loaded = current === index && video.readyState >= 1 &&
        video.currentSrc === new URL(segment.url, window.location.href).href;
      current = index;
      video.hidden = false;
      const start = () => {
        video.currentTime = Math.max(0, Math.min(offset, (video.duration || offset) - 0.05));
        video.playbackRate = rate;
        pending = false;
        if (autoplay !== false) video.play().catch(() => {});
      };
      if (loaded) {
        start();
        return true;
      }
      pending = true;
      video.defaultPlaybackRate = rate;
      video.src = segment.url;
      video.addEventListener("loadedmetadata", start, { once: true });
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

    // Unload the video: nothing plays, and nothing goes on when it would have ended.
    function stop() {
      current = -1;
      pending = false;
      video.pause();
      video.removeAttribute("src");
      video.load();
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
      if (current >= 0 && current + 1 < segments.length) playSegment(current + 1, 0, true);
      else if (opts.onEnd) opts.onEnd();
    });
    video.addEventListener("error", () => {
      pending = false; // a segment that cannot load: report the time again once something plays
    });
    video.addEventListener("timeupdate", () => {
      if (pending) return; // a segment still loading: its time 0 is not the moment asked for
      const moment = at();
      if (moment !== null && opts.onTime) opts.onTime(moment);
    });

    return { load, play, playSegment, stop, setRate, at, segments: () => segments, current: () => current };
  };
})();
