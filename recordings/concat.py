"""ffmpeg for exports: segments joined with the concat demuxer, copied (or encoded), trimmed to a range.

No Django here: ``services.export_run`` hands in the files and the settings. The web process never runs this
(the export task runs in the default worker); it starts ffmpeg and ffprobe as subprocesses only.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Callable


def concat_list(files: list[Path]) -> str:
    """The concat demuxer's list: ``file '<path>'`` per line (a quote in a path escaped as ffmpeg wants)."""
    return "".join("file '{}'\n".format(str(f).replace("'", "'\\''")) for f in files)


def export_commands(*, ffmpeg: str, listing: Path, output: Path, offset: float, duration: float, copy: bool,
                    preset: str = "veryfast", crf: int = 28) -> list[list[str]]:
    """The ffmpeg runs that join the listed segments into one MP4 (faststart) holding ``duration`` seconds from
    ``offset`` seconds into the first one.

    Copied, two runs: the concat demuxer joins the whole segments without re-encoding (its own seek is unreliable:
    it loses the frames between a key frame and the point asked for), then the joined file is cut with an input
    seek, which starts at the key frame before ``offset`` and writes an MP4 edit list that hides the frames before
    it, so players and ffprobe start at ``offset``; the end is cut at a frame. The first run reports progress.
    Encoded (H.264), one run: the frames before ``offset`` are decoded and dropped (exact)."""
    tail = ["-movflags", "+faststart", "-progress", "pipe:1", "-nostats", "-f", "mp4"]
    head = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    if not copy:
        return [[*head, "-f", "concat", "-safe", "0", "-i", str(listing), "-ss", f"{offset:.3f}", "-t", f"{duration:.3f}",
                 "-map", "0:v:0", "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                 *tail, str(output)]]
    joined = output.with_name(output.name + ".joined.mp4")
    return [[*head, "-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0", "-an", "-c:v", "copy", *tail,
             str(joined)],
            [*head, "-ss", f"{offset:.3f}", "-i", str(joined), "-t", f"{duration:.3f}", "-map", "0:v:0", "-c:v", "copy",
             *tail, str(output)]]


def run_with_progress(cmd: list[str], *, duration: float, on_progress: Callable[[float], None],
                      timeout: float) -> tuple[bool, str]:
    """Run ffmpeg, calling ``on_progress(0..1)`` from its ``-progress`` lines; (succeeded, the end of stderr)."""
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        return False, str(exc)
    try:
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit() and duration > 0:
                on_progress(min(1.0, max(0.0, int(value) / 1e6 / duration)))
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return False, f"ffmpeg took longer than {timeout:g} s"
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False, f"ffmpeg took longer than {timeout:g} s"
    finally:
        stderr = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    return proc.returncode == 0, (stderr or "").strip()[-500:]


def join(*, ffmpeg: str, listing: Path, output: Path, offset: float, duration: float, copy: bool, whole: float,
         preset: str, crf: int, timeout: float, on_progress: Callable[[float], None] = lambda f: None,
         on_failure: Callable[[bool, str], None] = lambda copied, error: None) -> tuple[bool, bool, str]:
    """Join the listed segments into ``output`` (``export_commands``): copied first when ``copy``, encoded when that
    fails or when not ``copy``. ``on_progress`` follows the first run of each attempt (the copy's join goes through
    ``whole`` seconds); ``on_failure(copied, error)`` hears each failed attempt. Returns (succeeded, copied, the
    last error); the copy's intermediate file is removed either way, a failed ``output`` is not."""
    error = ""
    for attempt in ([True, False] if copy else [False]):
        ok = False
        for i, cmd in enumerate(export_commands(ffmpeg=ffmpeg, listing=listing, output=output, offset=offset,
                                                duration=duration, copy=attempt, preset=preset, crf=crf)):
            ok, error = run_with_progress(cmd, duration=whole if attempt else duration,
                                          on_progress=on_progress if i == 0 else (lambda f: None), timeout=timeout)
            if not ok:
                break
        output.with_name(output.name + ".joined.mp4").unlink(missing_ok=True)
        if ok and output.is_file() and output.stat().st_size > 0:
            return True, attempt, error
        on_failure(attempt, error)
    return False, False, error


def probe(file: Path, *, ffprobe: str = "ffprobe") -> dict:
    """{"codec", "width", "height", "duration"} of a file's first video stream ({} when ffprobe cannot tell)."""
    try:
        out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=codec_name,width,height:format=duration", "-of", "json", str(file)],
                             capture_output=True, text=True, timeout=30)
        data = json.loads(out.stdout or "{}")
        stream = (data.get("streams") or [{}])[0]
        return {"codec": stream.get("codec_name", ""), "width": stream.get("width"), "height": stream.get("height"),
                "duration": float((data.get("format") or {}).get("duration") or 0.0)}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
