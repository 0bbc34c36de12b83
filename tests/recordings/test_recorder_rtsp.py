"""The worker's recorder on a real RTSP camera: an H.264 stream served on loopback by tests/system/rtsp.py (ffmpeg
encodes, RTP interleaved over the RTSP connection), copied into segments without re-encoding, with and without
Basic credentials."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from runtime.recording import CameraRecorder, RecordingOptions, copy_command, probe_codec
from tests.conftest import dataset
from tests.recordings.test_recorder import _options, _wait
from tests.system.rtsp import RTSPStream

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")

CLIP = "pets-walkway/vtest.avi"


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height:format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    stream = data["streams"][0]
    duration = data.get("format", {}).get("duration")
    return {"codec": stream["codec_name"], "width": stream["width"], "height": stream["height"],
            "duration": float(duration) if duration else None}


class RawClient:
    """A bare RTSP client on a socket: one request at a time, interleaved packets counted and skipped."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.cseq = 0
        self.packets = 0
        self.url = f"rtsp://127.0.0.1:{port}/live"

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _skip_packets(self) -> None:
        while self.buf.startswith(b"$"):
            while len(self.buf) < 4:
                self._fill()
            size = 4 + int.from_bytes(self.buf[2:4], "big")
            while len(self.buf) < size:
                self._fill()
            assert self.buf[1] in (0, 1)  # RTP, RTCP
            self.packets += self.buf[1] == 0
            self.buf = self.buf[size:]

    def request(self, method: str, url: str | None = None, **headers) -> tuple[int, dict, str]:
        self.cseq += 1
        lines = [f"{method} {url or self.url} RTSP/1.0", f"CSeq: {self.cseq}",
                 *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            self._skip_packets()
            if b"\r\n\r\n" in self.buf and not self.buf.startswith(b"$"):
                break
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *rest = head.decode().split("\r\n")
        answer = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in rest)}
        length = int(answer.get("content-length", 0))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length].decode(), self.buf[length:]
        assert answer["cseq"] == str(self.cseq)
        return int(status_line.split()[1]), answer, body

    def play(self) -> str:
        """SETUP over TCP and PLAY; the session id."""
        status, answer, _ = self.request("SETUP", f"{self.url}/trackID=0",
                                         Transport="RTP/AVP/TCP;unicast;interleaved=0-1")
        assert status == 200 and "interleaved=0-1" in answer["transport"]
        session = answer["session"].split(";")[0]
        assert self.request("PLAY", Session=session)[0] == 200
        return session

    def receive(self, seconds: float) -> int:
        """Read for ``seconds``; the RTP packets that came meanwhile."""
        before = self.packets
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill()
            self._skip_packets()
        return self.packets - before

    def close(self) -> None:
        self.sock.close()


def test_the_rtsp_server_describes_an_h264_stream_and_offers_only_interleaved_tcp():
    with RTSPStream(dataset(CLIP), user="cam", password="secret") as stream:
        client = RawClient(stream.port)
        try:
            status, answer, _ = client.request("OPTIONS")
            assert status == 200 and "DESCRIBE" in answer["public"] and "PLAY" in answer["public"]
            status, answer, _ = client.request("DESCRIBE", Accept="application/sdp")
            assert status == 401 and answer["www-authenticate"] == 'Basic realm="test"'
            auth = "Basic " + base64.b64encode(b"cam:secret").decode()
            status, answer, sdp = client.request("DESCRIBE", Accept="application/sdp", Authorization=auth)
            assert status == 200 and answer["content-type"] == "application/sdp"
            assert answer["content-base"] == f"rtsp://127.0.0.1:{stream.port}/live/"
            assert "m=video" in sdp and "H264/90000" in sdp and "a=control:trackID=0" in sdp
            assert "sprop-parameter-sets=" in sdp  # SPS/PPS in the SDP, as cameras send them
            status, _, _ = client.request("SETUP", f"{client.url}/trackID=0", Authorization=auth,
                                          Transport="RTP/AVP;unicast;client_port=5000-5001")
            assert status == 461  # UDP is refused
        finally:
            client.close()


def test_several_clients_play_at_once_and_one_leaving_does_not_stop_the_others():
    with RTSPStream(dataset(CLIP)) as stream:
        first, second = RawClient(stream.port), RawClient(stream.port)
        try:
            first.play()
            session = second.play()
            assert first.receive(1.0) > 5 and second.receive(1.0) > 5
            first.close()  # gone without TEARDOWN
            assert second.receive(1.5) > 5
            assert _wait(lambda: stream.playing == 1, 5)
            assert second.request("GET_PARAMETER", Session=session)[0] == 200  # a keep-alive
            assert second.request("TEARDOWN", Session=session)[0] == 200
            assert _wait(lambda: stream.playing == 0, 5)
        finally:
            first.close()
            second.close()


def test_the_codec_of_an_rtsp_stream_is_probed_over_tcp():
    with RTSPStream(dataset(CLIP)) as stream:
        assert probe_codec(stream.url, _options(Path("/nonexistent"))) == "h264"
    assert ("SETUP", 200) in stream.requests and ("SETUP", 461) not in stream.requests


def _ffmpeg_command_lines() -> list[str]:
    """The command lines of this process's ffmpeg and ffprobe children, as any user of the machine can read them."""
    lines = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if cmdline and Path(cmdline[0]).name in ("ffmpeg", "ffprobe"):
            lines.append(" ".join(cmdline))
    return lines


def _record(stream: RTSPStream, tmp_path, camera: int, segments: int,
            seen: list | None = None) -> tuple[CameraRecorder, list, RecordingOptions]:
    indexed: list = []
    options = _options(tmp_path)
    recorder = CameraRecorder(camera, stream.url, "continuous", fps=5, index=lambda **f: indexed.append(f) or f,
                              options=options).start()
    try:
        assert _wait(lambda: (seen.extend(_ffmpeg_command_lines()) if seen is not None else None) or
                     len(indexed) >= segments, 25), (recorder.stats(), indexed)
    finally:
        recorder.stop(timeout=20)
    assert not recorder.alive
    return recorder, indexed, options


@pytest.mark.slow
def test_an_h264_rtsp_stream_is_copied_into_segments_without_reencoding(tmp_path):
    clip = dataset(CLIP)
    width = ffprobe(clip)["width"]
    with RTSPStream(clip) as stream:
        recorder, indexed, options = _record(stream, tmp_path, 11, 2)
        assert stream.connections >= 2  # ffprobe's, then ffmpeg's own
    assert recorder.kind == "copy" and recorder.codec == "h264" and recorder.error == ""
    cmd = copy_command(stream.url, options, Path("/x"), "r")
    assert cmd[cmd.index("-rtsp_transport") + 1] == "tcp" and cmd[cmd.index("-c:v") + 1] == "copy"
    assert len(indexed) >= 2
    for item in indexed:
        file = options.root / item["path"]
        probe = ffprobe(file)
        assert probe["codec"] == "h264" and probe["width"] == width
        assert probe["duration"] > 0.5
        assert probe["duration"] == pytest.approx((item["end"] - item["start"]).total_seconds(), abs=0.3)
        assert not item["encoded"] and item["mode"] == "continuous"
        assert abs(item["start"].timestamp() - time.time()) < 120
    assert ("SETUP", 461) not in stream.requests


@pytest.mark.slow
def test_a_camera_with_basic_credentials_in_its_url_is_recorded_without_them_on_a_command_line(tmp_path):
    seen: list[str] = []
    with RTSPStream(dataset(CLIP), user="cam", password="s3cret") as stream:
        assert stream.url.startswith("rtsp://cam:s3cret@127.0.0.1:")
        recorder, indexed, options = _record(stream, tmp_path, 12, 1, seen)
    assert recorder.kind == "copy" and recorder.error == ""
    assert ffprobe(options.root / indexed[0]["path"])["codec"] == "h264"
    assert ("PLAY", 200) in stream.requests
    # ffprobe and ffmpeg ran (seen while recording) and their command lines never held the password: it went
    # through a list file only the worker's user may read, removed when the run ended.
    assert any(line.split()[0].endswith("ffmpeg") and " concat " in f" {line} " for line in seen), seen
    assert seen and not any("s3cret" in line for line in seen)
    incoming = options.root / "12" / "incoming"
    assert not list(incoming.glob("*.ffconcat"))
    cmd = copy_command(stream.url, options, incoming, "r")
    try:
        listed = incoming / "r.ffconcat"
        assert "s3cret" not in " ".join(cmd) and str(listed) in cmd
        assert listed.stat().st_mode & 0o777 == 0o600 and "cam:s3cret@" in listed.read_text()
        assert "option rtsp_transport tcp" in listed.read_text()
    finally:
        (incoming / "r.ffconcat").unlink(missing_ok=True)


def test_the_recorder_checks_the_camera_networks_before_it_connects(tmp_path):
    def refuse(url):
        raise ValueError("camera host 127.0.0.1 is an internal address (allowed in Site settings)")

    with RTSPStream(dataset(CLIP)) as stream:
        recorder = CameraRecorder(14, stream.url, "continuous", fps=5, index=lambda **f: f,
                                  options=_options(tmp_path), check_url=refuse).start()
        try:
            assert _wait(lambda: recorder.error, 10), recorder.stats()
        finally:
            recorder.stop(timeout=20)
        assert stream.connections == 0  # neither ffprobe nor ffmpeg was let near it
    assert "internal address" in recorder.error and recorder.kind == "probe" and recorder.segments == 0


def test_a_wrong_password_is_the_recorders_error_and_nothing_is_recorded(tmp_path):
    indexed: list = []
    with RTSPStream(dataset(CLIP), user="cam", password="s3cret") as stream:
        url = stream.url.replace(":s3cret@", ":Wr0ngPa55@")
        recorder = CameraRecorder(13, url, "continuous", fps=5, index=lambda **f: indexed.append(f) or f,
                                  options=_options(tmp_path)).start()
        try:
            assert _wait(lambda: recorder.error, 15), recorder.stats()
        finally:
            recorder.stop(timeout=20)
        assert not recorder.alive
    assert "401 Unauthorized" in recorder.error, recorder.error
    assert "Wr0ngPa55" not in recorder.error and "cam:***@" in recorder.error  # ffprobe's message, its password masked
    assert recorder.kind == "probe" and recorder.segments == 0 and indexed == []
    assert ("DESCRIBE", 401) in stream.requests and ("PLAY", 200) not in stream.requests
