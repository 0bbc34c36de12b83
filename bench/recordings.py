"""Recording cost per camera: the CPU of the recorder's ffmpeg (copy and encode paths) and the bytes per hour of
footage, at the default settings, on real footage (../shared/datasets/pets-walkway/vtest.avi, 480x360 at 10 fps).

- **copy**: an H.264 network camera. The footage, encoded once beforehand (libx264, a key frame a second, CRF 23:
  about what a camera sends), is served over HTTP on loopback by a second ffmpeg that only copies it (its CPU is not
  counted); the recorder's own command (``runtime.recording.copy_command``) copies the stream into segments.
- **encode**: a camera that is not an H.264 stream (a file, ``demo://``, MJPEG). The frames the camera's loop
  decodes (here read with OpenCV beforehand, so decoding is not counted: the loop decodes them anyway) go to the
  recorder's command (``runtime.recording.encode_command``, libx264 at RECORDING_ENCODE_PRESET and
  RECORDING_ENCODE_CRF) at the default analysis rate, 5 fps, in real time.

CPU is the ffmpeg process's user + system time (psutil) over the wall time, in % of one core. Bytes per hour are the
finished segments' bytes scaled to an hour. The defaults are ``RecordingOptions()``'s, the same as the settings'.

- **16 cameras recording and analysing**: the `cameras` benchmark's setting (one real Celery inference worker, 16
  cameras looping real footage at 5 analysis fps with the default detector, one daphne with a WebSocket subscriber per
  camera at 5 fps), every camera with ``record_mode`` continuous: each camera's fps over any 20 s window (target:
  every camera >= 4.8), the worker's CPU and its recorders' (its ffmpeg children), the segments indexed; and the
  same run with ``record_mode`` off just before it, on the same machine, to show what recording changes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

FOOTAGE = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "pets-walkway" / "vtest.avi"
ENCODE_FPS = 5.0  # CAMERA_ANALYSIS_FPS's default: the encode path's rate when RECORDING_ENCODE_FPS is 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
        return times.user + times.system + getattr(times, "children_user", 0) + getattr(times, "children_system", 0)
    except psutil.Error:
        return 0.0


def _segments_bytes(folder: Path) -> tuple[int, int]:
    files = sorted(folder.glob("*.mp4"))
    return len(files), sum(f.stat().st_size for f in files)


def _stop(proc: subprocess.Popen, *, stdin_q: bool = True) -> None:
    try:
        if stdin_q and proc.stdin:
            proc.stdin.write(b"q")
            proc.stdin.close()
        proc.wait(timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def copy_path(seconds: float, work: Path, options) -> dict:
    from runtime.recording import copy_command

    source = work / "camera.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(FOOTAGE), "-an", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "23", "-g", "10", "-pix_fmt", "yuv420p", str(source)], check=True)
    url = f"http://127.0.0.1:{_free_port()}/live.ts"
    server = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(source), "-c", "copy",
                               "-f", "mpegts", "-listen", "1", url], stdin=subprocess.DEVNULL)
    incoming = work / "copy"
    incoming.mkdir()
    time.sleep(1.0)
    recorder = subprocess.Popen(copy_command(url, options, incoming, "bench"), stdin=subprocess.PIPE)
    try:
        proc = psutil.Process(recorder.pid)
        time.sleep(2.0)  # connected, probing done: measure the steady state
        cpu0, t0 = _cpu(proc), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = _cpu(proc), time.monotonic()
    finally:
        _stop(recorder)
        server.kill()
        server.wait()
    count, nbytes = _segments_bytes(incoming)
    return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "segments": count, "bytes": nbytes,
            "seconds": t1 - t0 + 2.0}


def encode_path(seconds: float, work: Path, options) -> dict:
    import cv2

    from runtime.recording import encode_command

    capture = cv2.VideoCapture(str(FOOTAGE))
    frames = []
    while len(frames) < 200:  # vtest.avi plays at 10 fps: every other frame is the 5-fps loop's
        ok, image = capture.read()
        if not ok:
            break
        if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) % 2 == 0:
            frames.append(image)
    capture.release()
    h, w = frames[0].shape[:2]
    incoming = work / "encode"
    incoming.mkdir()
    recorder = subprocess.Popen(encode_command(w, h, False, ENCODE_FPS, options, incoming, "bench"),
                                stdin=subprocess.PIPE)
    proc = psutil.Process(recorder.pid)
    began = time.monotonic()
    cpu0 = _cpu(proc)
    n = 0
    try:
        while time.monotonic() - began < seconds:
            recorder.stdin.write(frames[n % len(frames)].tobytes())
            n += 1
            time.sleep(max(0.0, began + n / ENCODE_FPS - time.monotonic()))
        cpu1, wall = _cpu(proc), time.monotonic() - began
    finally:
        try:
            recorder.stdin.close()
        except OSError:
            pass
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
    count, nbytes = _segments_bytes(incoming)
    return {"cpu_pct": 100 * (cpu1 - cpu0) / wall, "segments": count, "bytes": nbytes, "seconds": n / ENCODE_FPS,
            "size": f"{w}x{h}"}


class _Children:
    """CPU seconds of a process's children (the worker's ffmpeg recorders), those that ran between two readings."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)

    def read(self) -> dict[int, float]:
        out = {}
        for child in self.proc.children(recursive=True):
            try:
                times = child.cpu_times()
                out[child.pid] = times.user + times.system
            except psutil.Error:
                pass
        return out

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def cameras_recording(seconds: float, tmp: Path, record_mode: str = "continuous") -> dict:
    """16 cameras analysing (and recording, unless ``record_mode`` is off) on one real worker, with a live subscriber
    each (see the module)."""
    from bench.cameras import (FPS, STAGGER_S, WINDOW, Sampler, Subscribers, _mean, bench_user, camera_rates,
                               footage, start_cameras, start_daphne, start_worker, wait_running, worker_doc)
    from cameras.models import Camera
    from recordings.models import Segment

    clips = footage()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench").delete()
    _user, token = bench_user()
    Camera.objects.update(enabled=False)
    ids = [Camera.objects.create(name=f"{record_mode} {i}", source_url=clips[i % len(clips)], enabled=False,
                                 analysis_fps=FPS, stream_fps=5, record_mode=record_mode).pk for i in range(16)]
    daphne, port = start_daphne(tmp)
    worker = subs = None
    try:
        name = f"bench-rec-{record_mode}"
        worker = start_worker(tmp, name)
        subs = Subscribers(port, token)
        sampler = Sampler(worker, daphne, f"{name}@")
        start_cameras(ids, subs, stagger=STAGGER_S)
        if not wait_running(ids, f"{name}@", 90):
            print("  not all 16 cameras running after 90 s", file=sys.stderr)
        sampler.run_for(10, 5, f"16 {record_mode}, warming:")
        children = _Children(worker.pid)
        before, t0 = children.read(), time.monotonic()
        samples = sampler.run_for(seconds, 5, f"16 {record_mode}:")
        after, t1 = children.read(), time.monotonic()
        doc = worker_doc(f"{name}@") or {}
    finally:
        if subs is not None:
            subs.close()
        if worker is not None:
            worker.stop()
        daphne.stop()
    rates = camera_rates(samples, ids, window=min(WINDOW, seconds / 2))
    recorders = (doc.get("recordings") or {}).values()
    segments = Segment.objects.filter(camera_id__in=ids)
    return {"worst": min(r["min_window"] for r in rates.values()), "mean": _mean(r["mean"] for r in rates.values()),
            "worker_cpu": _mean(s["cpu"]["worker"] for s in samples[1:]),
            "ffmpeg_cpu": 100 * _Children.spent(before, after) / max(t1 - t0, 1e-9), "ffmpegs": len(after),
            "daphne_cpu": _mean(s["cpu"]["daphne"] for s in samples[1:]),
            "system_cpu": _mean(s["system_cpu"] for s in samples[1:]), "seconds": seconds,
            "segments": segments.count(), "bytes": sum(segments.values_list("size", flat=True)),
            "dropped": sum(int(r.get("dropped") or 0) for r in recorders),
            "kinds": sorted({str(r.get("kind")) for r in recorders}),
            "recording_cameras": len(set(segments.values_list("camera_id", flat=True))),
            "window": min(WINDOW, seconds / 2)}


def run(quick: bool = False) -> str:
    if shutil.which("ffmpeg") is None or not FOOTAGE.exists():
        line = "skipped: ffmpeg or the footage (../shared/datasets/pets-walkway/vtest.avi) is missing"
        print(f"recordings: {line}", file=sys.stderr)
        return line
    from bench.cameras import TARGET_FPS, setup_django

    tmp_data = setup_django("bench-recordings-")
    from runtime.recording import RecordingOptions

    seconds = 15.0 if quick else 60.0
    options = RecordingOptions(root=Path("."))
    with tempfile.TemporaryDirectory(prefix="bench-recordings-") as tmp:
        copy = copy_path(seconds, Path(tmp), options)
        encode = encode_path(seconds, Path(tmp), options)
    # The same run without recording first, back to back on the same machine: what recording changes.
    control = cameras_recording(60.0 if quick else 300.0, tmp_data, "off")
    many = cameras_recording(60.0 if quick else 300.0, tmp_data)
    rows = []
    for label, r, what in (("copy (H.264 stream)", copy, f"{encode['size']} H.264 from the camera (CRF 23, 10 fps)"),
                           ("encode (decoded frames)", encode,
                            f"{encode['size']} frames at {ENCODE_FPS:g} fps, libx264 {options.preset} CRF {options.crf}")):
        per_hour = r["bytes"] / max(r["seconds"], 1e-9) * 3600
        rows.append((label, r, what, per_hour))
    table = ("| path | what is recorded | CPU per camera (% of one core) | bytes per hour | segments |\n"
             "|---|---|---|---|---|\n" + "".join(
                 f"| {label} | {what} | {r['cpu_pct']:.1f} % | {per_hour / 1e6:,.0f} MB | {r['segments']} in "
                 f"{r['seconds']:.0f} s |\n" for label, r, what, per_hour in rows))
    cores = psutil.cpu_count() or 1
    body = (f"The recorder's ffmpeg per camera, measured for {seconds:.0f} s each at the default settings "
            f"(segments of {options.segment_seconds:g} s, `{options.container}`). On these {cores} cores, copying "
            f"costs **{rows[0][1]['cpu_pct']:.1f} %** of one core per camera and encoding "
            f"**{rows[1][1]['cpu_pct']:.1f} %**; footage takes **{rows[0][3] / 1e9:.2f} GB** (copy: whatever the "
            f"camera sends) and **{rows[1][3] / 1e9:.2f} GB** (encode) per camera and hour.\n\n{table}\n"
            "Bytes per hour: every segment written (ffmpeg finishes the last one when it stops) over the time recorded, "
            "scaled to an hour. "
            "A copied camera's bytes are its own bit rate; the figure here is for the footage re-encoded at CRF 23 "
            "with a key frame a second. The camera's loop (decoding, analysis) is not counted: see `cameras`.\n")
    met = many["worst"] >= TARGET_FPS and many["recording_cameras"] == 16
    body += (f"\n**16 cameras recording and analysing for {many['seconds'] / 60:.0f} min: the slowest camera kept "
             f"{many['worst']:.2f} analysis fps over any {many['window']:g} s window (target {TARGET_FPS}: "
             f"{'met' if met else 'NOT met'}); mean {many['mean']:.2f} fps.** All {many['recording_cameras']} cameras "
             f"recorded ({', '.join(many['kinds'])} path: file sources), {many['segments']} segments, "
             f"{many['bytes'] / 1e6:.0f} MB, {many['dropped']} frames dropped by the recorders' queues. CPU, 100% = "
             f"one core: the worker {many['worker_cpu']:.0f}%, its {many['ffmpegs']} ffmpeg recorders "
             f"{many['ffmpeg_cpu']:.0f}% together ({many['ffmpeg_cpu'] / 16:.1f}% per camera), daphne "
             f"{many['daphne_cpu']:.0f}%, the whole machine {many['system_cpu']:.0f}% of {cores * 100}%. The "
             "`cameras` benchmark's setting (one real inference worker, the default detector, 5 analysis fps, looped "
             "real footage, one WebSocket subscriber per camera at 5 fps), with every camera's `record_mode` "
             f"continuous. The same run without recording, just before: the slowest camera {control['worst']:.2f} fps, "
             f"mean {control['mean']:.2f}, the worker {control['worker_cpu']:.0f}%, the whole machine "
             f"{control['system_cpu']:.0f}%.\n")
    from bench.report import write_section

    write_section("recordings", "Recording: CPU per camera and bytes per hour", body,
                  "python -m bench recordings" + (" --quick" if quick else ""))
    return (f"copy {rows[0][1]['cpu_pct']:.1f} % of a core, {rows[0][3] / 1e9:.2f} GB/h; "
            f"encode {rows[1][1]['cpu_pct']:.1f} %, {rows[1][3] / 1e9:.2f} GB/h per camera; 16 cameras recording: "
            f"slowest {many['worst']:.2f} fps (without recording {control['worst']:.2f})")


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
