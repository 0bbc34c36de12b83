"""A tiny real SMTP server on 127.0.0.1 for tests: plain SMTP with AUTH PLAIN, each message kept.

Enough of RFC 5321 for smtplib (and so Django's SMTP backend): EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA,
RSET, NOOP, QUIT. No TLS: the site settings' "none" encryption talks to it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
import time


class SmtpServer:
    def __init__(self, *, username: str = "", password: str = ""):
        self.messages: list[dict] = []
        self.logins: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.username, self.password = username, password
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self):  # noqa: C901 (one small state machine)
                self.reply("220 test-smtp ready")
                sender, recipients, authed = "", [], False
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-test-smtp")
                        self.reply("250-AUTH PLAIN")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 test-smtp")
                    elif verb == "AUTH":
                        parts = line.split()
                        if len(parts) < 3 or parts[1].upper() != "PLAIN":
                            self.reply("504 only AUTH PLAIN with an initial response")
                            continue
                        _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                        with server.lock:
                            server.logins.append((user, password))
                        if (user, password) == (server.username, server.password):
                            authed = True
                            self.reply("235 authenticated")
                        else:
                            self.reply("535 authentication failed")
                    elif verb == "MAIL":
                        if server.username and not authed:
                            self.reply("530 authentication required")
                            continue
                        sender, recipients = line[10:].strip().strip("<>").split(">")[0], []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        recipients.append(line[8:].strip().strip("<>").split(">")[0])
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = []
                        while True:
                            chunk = self.rfile.readline()
                            if not chunk or chunk in (b".\r\n", b".\n"):
                                break
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        message = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                        with server.lock:
                            server.messages.append({"from": sender, "to": recipients, "message": message,
                                                    "at": time.time()})
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.tcp = Server(("127.0.0.1", 0), Handler)
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()
