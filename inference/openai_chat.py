"""A client for model servers that speak the OpenAI chat-completions protocol.

Ollama (``http://host:11434/v1``), llama.cpp's server (``http://host:8080/v1``), vLLM
(``http://host:8000/v1``), LM Studio and hosted services all answer
``POST {base_url}/chat/completions`` with ``{"choices": [{"message": {"content": ...}}]}``.
Images go as base64 ``data:image/jpeg`` URLs in the user message, downscaled to at most
``max_image_px`` on the longer side. The answer is asked for as a JSON object
(``response_format``); a server that does not know that option is asked again without it.

Every failure is a ``ChatError`` whose message names the problem (timeout, refused address,
wrong key, HTTP status with the start of the body, an answer that is not chat-completions JSON);
the API key never appears in it. Connections are checked, when they are made, against
``allowed_networks`` (``inference.addresses.connections_checked``: a callable is asked each time).

No Django here.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from .addresses import AddressNotAllowed, ConnectionNotAllowed, check_host, connections_checked

__all__ = ["CLIENT_PARAMS", "SECRET_MASK", "ChatClient", "ChatError", "ChatReply", "check_base_url", "check_params",
           "client_from", "keep_secrets", "mask_secrets"]

#: The parameters of a model-server backend (a camera's ``vlm_params`` / ``agent_params``, the site default).
CLIENT_PARAMS = ("base_url", "model", "api_key", "timeout", "max_image_px", "max_tokens", "temperature", "json_mode")
#: What an API key reads as when shown back; sending it back unchanged keeps the stored key.
SECRET_MASK = "***"
SECRET_PARAMS = ("api_key",)


class ChatError(RuntimeError):
    """A model server call that gave no usable answer; the message says why."""


@dataclass
class ChatReply:
    text: str
    seconds: float
    model: str


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash; ValueError naming the problem."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("base_url is required (for example http://127.0.0.1:11434/v1 for Ollama)")
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"base_url {url[:200]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url {url[:200]!r} must be an http(s) URL with a host, such as http://127.0.0.1:11434/v1")
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials; put the key in api_key")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query string or fragment")
    return url


def client_from(config: dict, *, what: str) -> "ChatClient":
    """A ``ChatClient`` from a backend config; ValueError naming a missing or bad parameter.
    The worker adds ``allowed_networks`` (a callable) and ``networks_where`` to the config."""
    kwargs = {k: config[k] for k in CLIENT_PARAMS if k in config and config[k] not in (None, "")}
    if "base_url" not in kwargs:
        raise ValueError(f"{what}: base_url is required (for example http://127.0.0.1:11434/v1 for Ollama)")
    if "model" not in kwargs:
        raise ValueError(f"{what}: model is required (the name the server knows it by)")
    return ChatClient(**kwargs, allowed_networks=config.get("allowed_networks"),
                      networks_where=config.get("networks_where", ""), what=f"{what} model server")


def check_params(params, *, what: str, extra: tuple[str, ...] = (), complete: bool = True) -> None:
    """ValueError naming the problem when ``params`` are not a model-server backend's parameters
    (unknown names, bad values; with ``complete``, a missing base_url or model). Contacts nothing."""
    if not isinstance(params, dict):
        raise ValueError(f"{what}: the parameters must be a JSON object")
    unknown = sorted(set(params) - set(CLIENT_PARAMS) - set(extra))
    if unknown:
        raise ValueError(f"{what}: unknown parameter(s) {', '.join(unknown)}; known: "
                         f"{', '.join(CLIENT_PARAMS + tuple(extra))}")
    for name in SECRET_PARAMS:
        if name in params and not isinstance(params[name], str):
            raise ValueError(f"{what}: {name} must be text")
    if complete or ("base_url" in params and "model" in params):
        client_from(params, what=what)
    else:
        filled = {"base_url": "http://model-server.invalid/v1", "model": "m", **params}
        client_from(filled, what=what)


def mask_secrets(params):
    """``params`` as shown back: an API key reads ``***`` (absent or empty stays so)."""
    if not isinstance(params, dict):
        return params
    return {k: (SECRET_MASK if k in SECRET_PARAMS and v else v) for k, v in params.items()}


def keep_secrets(new, old):
    """``new`` parameters with a secret sent back as ``***`` replaced by the stored one (``old``)."""
    if not isinstance(new, dict):
        return new
    old = old if isinstance(old, dict) else {}
    kept = dict(new)
    for name in SECRET_PARAMS:
        if kept.get(name) == SECRET_MASK:
            if old.get(name):
                kept[name] = old[name]
            else:
                kept.pop(name)
    return kept


def encode_image(image, max_px: int, quality: int = 85) -> str:
    """A BGR uint8 image as a ``data:image/jpeg;base64,...`` URL, its longer side at most ``max_px``;
    a JPEG already encoded (bytes) goes as it is."""
    if isinstance(image, (bytes, bytearray)):
        if not image.startswith(b"\xff\xd8"):
            raise ChatError("the picture to describe is not a JPEG")
        return "data:image/jpeg;base64," + base64.b64encode(bytes(image)).decode("ascii")
    import cv2

    if image is None or not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ChatError("the image to describe is empty or not a picture")
    h, w = image.shape[:2]
    scale = min(1.0, float(max_px) / max(h, w)) if max_px > 0 else 1.0
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ChatError("the image could not be encoded as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class ChatClient:
    """One model on one server. Thread-safe (a ``requests.Session`` per call)."""

    def __init__(self, *, base_url: str, model: str, api_key: str = "", timeout: float = 20.0,
                 max_image_px: int = 1024, max_tokens: int = 300, temperature: float = 0.0,
                 json_mode: bool = True, allowed_networks: Callable | Sequence | None = None,
                 networks_where: str = "", what: str = "model server"):
        self.base_url = check_base_url(base_url)
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model is required (the name the server knows it by, e.g. qwen2.5vl:7b)")
        self.model = model.strip()
        self.api_key = api_key or ""
        try:
            self.timeout = float(timeout)
            self.max_image_px = int(max_image_px)
            self.max_tokens = int(max_tokens)
            self.temperature = float(temperature)
        except (TypeError, ValueError):
            raise ValueError("timeout, max_image_px, max_tokens and temperature must be numbers") from None
        if not 0 < self.timeout <= 600:
            raise ValueError("timeout must be between 0 and 600 seconds")
        if not 64 <= self.max_image_px <= 4096:
            raise ValueError("max_image_px must be between 64 and 4096")
        if not 1 <= self.max_tokens <= 8192:
            raise ValueError("max_tokens must be between 1 and 8192")
        self.json_mode = bool(json_mode)
        self.allowed_networks = allowed_networks
        self.networks_where = networks_where
        self.what = what
        self.host = urlsplit(self.base_url).hostname or ""

    def __repr__(self) -> str:
        return f"ChatClient({self.base_url!r}, model={self.model!r})"

    def _allowed(self):
        return self.allowed_networks() if callable(self.allowed_networks) else self.allowed_networks

    def check_address(self) -> None:
        """AddressNotAllowed now when the server's name resolves to a refused address."""
        check_host(self.host, self._allowed(), what=self.what, where=self.networks_where)

    def complete(self, text: str, images: Sequence[np.ndarray] = ()) -> ChatReply:
        """The model's answer to ``text`` about ``images`` (BGR uint8); ChatError on any failure."""
        content: list[dict] | str
        if images:
            content = [{"type": "text", "text": text}]
            content += [{"type": "image_url", "image_url": {"url": encode_image(image, self.max_image_px)}}
                        for image in images]
        else:
            content = text
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": False,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        started = time.monotonic()
        response = self._post(body)
        if response.status_code == 400 and self.json_mode and "response_format" in response.text:
            body.pop("response_format")  # an older server: ask again without the JSON mode
            response = self._post(body)
        self._raise_for_status(response)
        try:
            data = response.json()
            message = data["choices"][0]["message"]
            answer = message.get("content")
            if isinstance(answer, list):  # content parts
                answer = "".join(part.get("text", "") for part in answer if isinstance(part, dict))
            if not isinstance(answer, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ChatError(f"{self.what} {self.base_url} did not answer in the chat-completions format: "
                            f"{_snippet(response.text)}") from None
        return ChatReply(text=answer, seconds=time.monotonic() - started, model=str(data.get("model") or self.model))

    def _post(self, body: dict):
        import requests

        try:
            self.check_address()
        except AddressNotAllowed as exc:
            raise ChatError(str(exc)) from None
        headers = {"Content-Type": "application/json", "User-Agent": "surveillance-vlm/1"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/chat/completions"
        try:
            with connections_checked(self._allowed(), what=self.what, where=self.networks_where) as refused:
                try:
                    return requests.post(url, data=json.dumps(body), headers=headers, timeout=self.timeout,
                                         allow_redirects=False)
                except requests.RequestException:
                    if refused:
                        raise ConnectionNotAllowed(refused[0]) from None
                    raise
        except ConnectionNotAllowed as exc:
            raise ChatError(str(exc)) from None
        except requests.Timeout:
            raise ChatError(f"{self.what} {self.base_url} did not answer within {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise ChatError(f"cannot connect to {self.what} {self.base_url}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise ChatError(f"{self.what} {self.base_url}: {type(exc).__name__}") from None

    def _raise_for_status(self, response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise ChatError(f"{self.what} {self.base_url} refused the API key (HTTP {status}): check api_key")
        if status == 404:
            raise ChatError(f"{self.what} {self.base_url} answered 404: check base_url (it usually ends in /v1) "
                            f"and that model {self.model!r} exists there: {_snippet(response.text)}")
        if 300 <= status < 400:
            raise ChatError(f"{self.what} {self.base_url} redirected (HTTP {status}); give the final base_url")
        raise ChatError(f"{self.what} {self.base_url} answered HTTP {status}: {_snippet(response.text)}")


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return repr(text[:limit]) if text else "(empty body)"


def _reason(exc) -> str:
    """The innermost reason of a requests connection error, without its object reprs."""
    inner = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(inner) or type(inner).__name__
    return text.split(": ", 1)[-1][:200]
