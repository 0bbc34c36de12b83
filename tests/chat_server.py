"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests.

It answers ``POST /v1/chat/completions`` like Ollama, llama.cpp server or vLLM would, and records
every request. What it answers is set per test: ``server.reply`` (text, or a callable of the
request body returning text), ``server.delay`` (seconds before answering), ``server.status`` and
``server.raw`` (a body sent as is), ``server.api_key`` (required Bearer key, 401 otherwise),
``server.json_mode_supported`` (False: 400 when ``response_format`` is sent, like old servers).
"""

from __future__ import annotations

import http.server
import json
import threading
import time


class ChatServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.reply = '{"summary": "A person is lying on the ground.", "threat_level": "high", "objects": ["person"]}'
        self.delay = 0.0
        self.status = 200
        self.raw: bytes | None = None
        self.api_key = ""
        self.json_mode_supported = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if server.delay:
                    time.sleep(server.delay)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "Incorrect API key provided"}})
                if "response_format" in body and not server.json_mode_supported:
                    return self._send(400, {"error": {"message": "unknown field response_format"}})
                if server.raw is not None:
                    return self._send(server.status, server.raw)
                if server.status != 200:
                    return self._send(server.status, {"error": {"message": "model crashed"}})
                text = server.reply(body) if callable(server.reply) else server.reply
                self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model", ""),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": text}}]})

            def _send(self, status, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def images(self, index: int = -1) -> list[str]:
        """The image data URLs of one recorded request."""
        content = self.requests[index]["messages"][-1]["content"]
        if isinstance(content, str):
            return []
        return [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
