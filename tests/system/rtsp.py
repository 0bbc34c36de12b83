"""A loopback RTSP camera for tests: a looped real clip encoded to H.264 by Debian's ffmpeg, served over RTSP.

ffmpeg cannot serve RTSP to clients (its RTSP listen mode only takes pushed streams), so ffmpeg sends RTP over
UDP to a loopback port of this process and a small RTSP/1.0 server in a thread hands the SDP it wrote to each
client (DESCRIBE) and forwards every RTP packet to each playing client over its own TCP connection, interleaved
(``$``, channel, 2-byte length, packet): RTP on channel 0, ffmpeg's RTCP sender reports on channel 1. Only
``RTP/AVP/TCP;interleaved=0-1`` is offered (461 Unsupported Transport otherwise), as cameras behind NAT are
recorded. With ``user``/``password`` DESCRIBE, SETUP and PLAY need HTTP Basic credentials (401 otherwise).
"""

from __future__ import annotations

import base64
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.system.processes import free_port

PATH = "/live"
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, SET_PARAMETER, TEARDOWN"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 454: "Session Not Found",
           455: "Method Not Valid in This State", 461: "Unsupported Transport", 501: "Not Implemented"}
MAX_HEADER = 64 * 1024


class _Client:
    """One RTSP connection: its socket (written under a lock: responses and forwarded packets) and state."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.session = uuid.uuid4().hex[:16]
        self.setup = False
        self.playing = False
        self.closed = False

    def send(self, data: bytes) -> bool:
        if self.closed:
            return False
        try:
            with self.lock:
                self.sock.sendall(data)
            return True
        except OSError:  # the client went away, or took nothing for the socket's timeout
            self.close()
            return False

    def close(self) -> None:
        self.closed = True
        self.playing = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the handler's recv
        except OSError:
            pass
        self.sock.close()


class RTSPStream:
    """A looped clip served as a live H.264 RTSP stream on ``rtsp://127.0.0.1:<port>/live``.

    ``start()`` returns once ffmpeg's first RTP packet has arrived; ``kill()`` takes the camera off the network
    (ffmpeg killed, every connection and socket closed) until ``start()`` again, on the same port.
    """

    def __init__(self, clip, port: int | None = None, *, user: str | None = None, password: str | None = None,
                 gop: int = 10):
        if shutil.which("ffmpeg") is None:
            import pytest

            pytest.skip("ffmpeg is not installed (make test installs Debian's ffmpeg)")
        self.clip = str(clip)
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.gop = gop
        auth = f"{user}:{password}@" if user is not None else ""
        self.url = f"rtsp://{auth}127.0.0.1:{self.port}{PATH}"
        self.base = f"rtsp://127.0.0.1:{self.port}{PATH}/"
        self.sdp = ""
        self.packets = 0  # RTP packets received from ffmpeg
        self.connections = 0  # RTSP connections accepted
        self.requests: list[tuple[str, int]] = []  # (method, status) of every answered request
        self.proc: subprocess.Popen | None = None
        self.up = False
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._dir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def _args(self, rtp: int, rtcp: int, sdp: Path) -> list[str]:
        return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", self.clip,
                "-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(self.gop), "-pix_fmt", "yuv420p",
                "-flags", "+global_header", "-bsf:v", "dump_extra",
                "-f", "rtp", "-sdp_file", str(sdp), f"rtp://127.0.0.1:{rtp}?pkt_size=1200&rtcpport={rtcp}"]

    def start(self, timeout: float = 15) -> "RTSPStream":
        self.up = True
        self._dir = Path(tempfile.mkdtemp(prefix="rtsp-"))
        udp = []
        for _ in range(2):  # RTP, RTCP: bound here first, so no other process can take the ports meanwhile
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sockets.append(sock)  # closed by kill(), whatever happens next
            sock.bind(("127.0.0.1", 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            udp.append(sock)
        listener = socket.socket()
        self._sockets.append(listener)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.5)
        sdp = self._dir / "stream.sdp"
        log = open(self._dir / "ffmpeg.log", "wb")
        try:
            self.proc = subprocess.Popen(self._args(udp[0].getsockname()[1], udp[1].getsockname()[1], sdp),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        self._threads = [threading.Thread(target=self._forward, args=(udp,), name="rtsp-forward", daemon=True),
                         threading.Thread(target=self._accept, args=(listener,), name="rtsp-accept", daemon=True)]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while not (self.packets and sdp.exists() and "m=video" in sdp.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self._dir / "ffmpeg.log").read_text(errors="replace")[-500:]
                self.kill()
                raise TimeoutError(f"ffmpeg sends no RTP stream: {tail}")
            time.sleep(0.05)
        self.sdp = self._describe(sdp.read_text())
        return self

    def kill(self) -> None:
        self.up = False
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        with self._lock:
            clients, self._clients = list(self._clients), set()
        for client in clients:
            client.close()
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        for thread in self._threads:
            thread.join(5)
        self._threads = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    stop = kill

    def __enter__(self) -> "RTSPStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    @property
    def playing(self) -> int:
        """How many clients are being sent the stream now."""
        with self._lock:
            return sum(1 for c in self._clients if c.playing)

    # -- the stream --------------------------------------------------------------------------------------------
    @staticmethod
    def _describe(sdp: str) -> str:
        """ffmpeg's SDP made a server's: any address, no port, the track's control URL."""
        out = []
        for line in sdp.splitlines():
            line = line.strip()
            if not line or line.startswith("a=rtcp:"):
                continue
            if line.startswith("c="):
                line = "c=IN IP4 0.0.0.0"
            elif line.startswith("m=video"):
                line = re.sub(r"^m=video \d+", "m=video 0", line)
            out.append(line)
            if line.startswith("m=video"):
                out.append("a=control:trackID=0")
        return "\r\n".join(out) + "\r\n"

    def _forward(self, udp: list[socket.socket]) -> None:
        """Every packet ffmpeg sends, to every playing client: RTP on channel 0, RTCP on channel 1."""
        while self.up:
            try:
                ready, _, _ = select.select(udp, [], [], 0.5)
            except (OSError, ValueError):  # closed by kill()
                return
            for sock in ready:
                try:
                    packet = sock.recv(65536)
                except OSError:
                    return
                channel = 0 if sock is udp[0] else 1
                self.packets += channel == 0
                frame = b"$" + bytes([channel]) + len(packet).to_bytes(2, "big") + packet
                with self._lock:
                    playing = [c for c in self._clients if c.playing]
                for client in playing:
                    if not client.send(frame):
                        self._drop(client)

    def _drop(self, client: _Client) -> None:
        client.close()
        with self._lock:
            self._clients.discard(client)

    # -- RTSP ----------------------------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while self.up:
            try:
                sock, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed by kill()
                return
            sock.settimeout(5)  # a client that takes nothing for 5 s is dropped (see _Client.send)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock)
            with self._lock:
                self._clients.add(client)
            self.connections += 1
            threading.Thread(target=self._handle, args=(client,), name="rtsp-client", daemon=True).start()

    def _handle(self, client: _Client) -> None:
        buf = b""
        try:
            while self.up and not client.closed:
                request, buf = self._next_request(client, buf)
                if request is None:
                    break
                if not self._answer(client, *request):
                    break
        except OSError:
            pass
        finally:
            self._drop(client)

    def _next_request(self, client: _Client, buf: bytes):
        """The next (method, url, headers) on the connection, skipping interleaved frames (the client's RTCP
        receiver reports); None when the client has gone or sends something that is not RTSP."""
        while True:
            if buf.startswith(b"$"):
                if len(buf) >= 4:
                    size = 4 + int.from_bytes(buf[2:4], "big")
                    if len(buf) >= size:
                        buf = buf[size:]
                        continue
            elif b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if len(rest) >= length:
                    parts = lines[0].split()
                    if len(parts) != 3 or not parts[2].startswith("RTSP/"):
                        return None, b""
                    return (parts[0].upper(), parts[1], headers), rest[length:]
            elif len(buf) > MAX_HEADER:
                return None, b""
            try:
                data = client.sock.recv(65536)
            except socket.timeout:
                if not self.up:
                    return None, b""
                continue
            if not data:
                return None, b""
            buf += data

    def _authorized(self, headers: dict) -> bool:
        if self.user is None:
            return True
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return given == f"{self.user}:{self.password}"

    def _answer(self, client: _Client, method: str, url: str, headers: dict) -> bool:
        """Answer one request; False when the connection ends (TEARDOWN)."""
        extra: dict[str, str] = {}
        body = ""
        status = 200
        keep = True
        play = False
        if method in ("DESCRIBE", "SETUP", "PLAY") and not self._authorized(headers):
            status = 401
            extra["WWW-Authenticate"] = 'Basic realm="test"'
        elif method == "OPTIONS":
            extra["Public"] = PUBLIC
        elif method == "DESCRIBE":
            if urlsplit(url).path.rstrip("/") != PATH:
                status = 404
            else:
                body = self.sdp
                extra.update({"Content-Base": self.base, "Content-Type": "application/sdp"})
        elif method == "SETUP":
            transport = headers.get("transport", "")
            channels = re.search(r"interleaved=(\d+)-(\d+)", transport)
            if "RTP/AVP/TCP" not in transport.upper() or (channels and channels.groups() != ("0", "1")):
                status = 461
            else:
                client.setup = True
                extra["Transport"] = "RTP/AVP/TCP;unicast;interleaved=0-1"
        elif method in ("GET_PARAMETER", "SET_PARAMETER"):
            pass  # keep-alives
        elif method in ("PLAY", "TEARDOWN"):
            if not client.setup:
                status = 455
            elif headers.get("session", "").split(";")[0].strip() != client.session:
                status = 454
            elif method == "PLAY":
                extra["Range"] = "npt=0.000-"
                play = True
            else:
                client.playing = False
                keep = False
        else:
            status = 501
        if client.setup and status == 200:
            extra["Session"] = f"{client.session};timeout=60"
        self.requests.append((method, status))
        lines = [f"RTSP/1.0 {status} {REASONS[status]}", f"CSeq: {headers.get('cseq', '0')}",
                 "Server: tests.system.rtsp", *(f"{k}: {v}" for k, v in extra.items())]
        data = body.encode()
        if data:
            lines.append(f"Content-Length: {len(data)}")
        ok = client.send(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        if play and ok:
            client.playing = True  # packets follow the answer to PLAY, never precede it
        return ok and keep
