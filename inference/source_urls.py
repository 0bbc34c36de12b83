"""Camera source URLs: what an operator may type, checked before anything connects (SSRF-critical).

``validate_source_url`` accepts ``rtsp(s)://`` and ``http(s)://`` streams with a host (checked
against the internal networks the site allows, ``inference.addresses``), files (``file:///abs`` or
a plain path, under the allowed folders), ``device://N`` and ``demo://`` with its parameters, and
returns the URL normalised; a ValueError names the problem. ``mask_credentials`` hides a
password for messages and logs. No OpenCV here: the web process validates without loading it.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .addresses import check_host

MAX_URL_LENGTH = 1024
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
SUPPORTED_SCHEMES = STREAM_SCHEMES + ("file", "device", "demo")

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-._~%]*[A-Za-z0-9])?$")

# --------------------------------------------------------------------------------------------
# URL validation
# --------------------------------------------------------------------------------------------

#: demo:// query parameters: name -> (type, minimum, maximum, default)
DEMO_PARAMS: dict[str, tuple[type, float, float, Any]] = {
    "seed": (int, 0, 2**31 - 1, 0),
    "anomaly_every": (float, 0.0, 86400.0, 30.0),  # seconds of media time; 0 = never
    "width": (int, 64, 3840, 640),
    "height": (int, 48, 2160, 360),
    "fps": (float, 0.5, 120.0, 10.0),
    "people": (float, 0.0, 30.0, 4.0),  # mean number of people in view
    "noise": (float, 0.0, 30.0, 3.0),  # sensor noise, grey levels (std dev)
}
DEMO_KINDS = ("running", "fall", "forbidden_area")


#: A query (or path) parameter whose name holds one of these (lower case, letters and digits only) carries
#: a secret: ``password``, ``passwd``, ``pwd``, ``token``, ``access_token``, ``key``, ``apikey``, ``auth``,
#: ``authorization``, ``secret``, ``signature``, ``X-Amz-Credential``, ``session``... Masking one too many
#: costs a viewer nothing: whoever may change the camera sees the URL as stored.
_SECRET_NAME_PARTS = ("pass", "pwd", "token", "auth", "secret", "credential", "signature", "session", "cookie",
                      "jwt", "bearer")
_SECRET_NAMES = frozenset({"pw", "sig", "sid", "psk", "code"})
_PARAM_RE = re.compile(r"([A-Za-z0-9_.~%+\-]*)=")
_URL_IN_TEXT_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]*")


def _secret_param(name: str) -> bool:
    key = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return (key in _SECRET_NAMES or key.endswith(("key", "keys"))  # key, apikey, api_key, streamkey
            or any(part in key for part in _SECRET_NAME_PARTS))


def _mask_params(text: str) -> str:
    """``a=1&pwd=x;token=y`` -> ``a=1&pwd=***;token=***``: each ``name=value`` whose name looks secret,
    wherever it stands (query, fragment, or a path such as ``/user=admin_password=x_channel=1``)."""
    out, done = [], 0
    for match in _PARAM_RE.finditer(text):
        if match.start() < done or not _secret_param(match.group(1)):
            continue
        end = match.end()
        while end < len(text) and text[end] not in "&;/?#":
            end += 1
        if end > match.end():
            out += [text[done:match.end()], "***"]
            done = end
    return "".join(out) + text[done:]


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:  # a file path: no credentials, shown as it is
        return url
    # The user information ends at the last "@" before the path: a password may hold "@", "?" or "#".
    head = rest.split("/", 1)[0]
    userinfo, at, _ = head.rpartition("@")
    if at:
        rest = rest[len(userinfo) + 1:]
        userinfo = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else userinfo
    cut = min((rest.find(c) for c in "/?#" if c in rest), default=len(rest))
    hostport, tail = rest[:cut], rest[cut:]
    if scheme.lower() != "file":
        tail = _mask_params(tail)
    return f"{scheme}://{userinfo}{at}{hostport}{tail}"


def mask_credentials(url: str) -> str:
    """The URL as shown to whoever may not change the camera, in messages and in logs: its password
    (``rtsp://user:secret@host`` -> ``rtsp://user:***@host``) and every credential-like parameter
    (``?user=admin&pwd=secret`` -> ``?user=admin&pwd=***``: ``password``, ``passwd``, ``token``,
    ``key``, ``apikey``, ``auth``, ``secret``, ``signature``...) masked.

    A text with URLs in it (an error message) has each of them masked; a file path is unchanged.
    """
    if not isinstance(url, str) or "://" not in url:
        return url
    if _URL_IN_TEXT_RE.fullmatch(url):
        return _mask_url(url)
    return _URL_IN_TEXT_RE.sub(lambda match: _mask_url(match.group(0)), url)


def parse_demo_params(url: str) -> dict[str, Any]:
    """The demo parameters of a ``demo://`` URL, with defaults; ValueError when invalid."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "demo":
        raise ValueError(f"not a demo URL: {url!r}")
    if parts.netloc or parts.path not in ("", "/"):
        raise ValueError("demo URL takes no host or path, only query parameters: demo://?seed=3&fps=10")
    if parts.fragment:
        raise ValueError("demo URL must not contain a '#fragment'")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ValueError(f"malformed demo query string {parts.query!r}") from exc
    params = {name: spec[3] for name, spec in DEMO_PARAMS.items()}
    seen = set()
    for key, raw in pairs:
        if key not in DEMO_PARAMS:
            raise ValueError(f"unknown demo parameter {key!r} (allowed: {', '.join(DEMO_PARAMS)})")
        if key in seen:
            raise ValueError(f"demo parameter {key!r} given twice")
        seen.add(key)
        kind, lo, hi, _ = DEMO_PARAMS[key]
        try:
            value = kind(raw)
            if kind is float and not math.isfinite(value):
                raise ValueError
        except ValueError:
            raise ValueError(f"demo parameter {key}={raw!r} is not a valid {kind.__name__}") from None
        if not lo <= value <= hi:
            raise ValueError(f"demo parameter {key}={raw} is out of range [{lo:g}, {hi:g}]")
        params[key] = value
    return params


def _format_demo_url(params: dict[str, Any], given: list[str]) -> str:
    if not given:
        return "demo://"
    items = []
    for key in DEMO_PARAMS:
        if key in given:
            value = params[key]
            items.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return "demo://?" + "&".join(items)


def validate_source_url(url: str, *, allowed_networks=None, file_roots=None, networks_where: str = "") -> str:
    """Check a camera source URL and return it normalised; ValueError naming the problem.

    Accepted: ``rtsp://``, ``rtsps://``, ``http://``, ``https://`` with a host;
    ``file:///abs/path`` or a plain path to an existing regular file; ``device://N``;
    ``demo://`` with optional query parameters (see :data:`DEMO_PARAMS`).

    Policy (the Django side passes its settings; None allows everything): ``allowed_networks``,
    the internal networks a stream host may be in (``inference.addresses``; a callable is asked
    for them now), ``networks_where`` names the setting that allows more; ``file_roots``, the
    folders file sources must lie in (``check_file_root``: checked before anything is looked up on
    disk, so a path outside them gets the same answer whether or not it exists; with roots, a
    relative path is refused).
    """
    normalised = _validate_source_url(url, file_roots)
    if normalised.startswith(("rtsp", "http")):
        if callable(allowed_networks):
            allowed_networks = allowed_networks()
        check_host(urlsplit(normalised).hostname or "", allowed_networks, what="camera host",
                   where=networks_where)
    return normalised


def _validate_source_url(url: str, file_roots=None) -> str:
    if not isinstance(url, str):
        raise ValueError("source URL must be a string")
    url = url.strip()
    if not url:
        raise ValueError("source URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"source URL is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_RE.search(url):
        raise ValueError("source URL contains control characters")

    match = _SCHEME_RE.match(url)
    if not match or len(match.group(1)) == 1:  # no scheme (or a "C:" drive letter): a file path
        return _validate_file_path(url, file_roots)
    scheme = match.group(1).lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"unsupported scheme {scheme!r} (supported: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)})"
        )
    rest = url[match.end():]
    if not rest.startswith("//"):
        raise ValueError(f"{scheme} URL must start with '{scheme}://'")

    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must name a local file (file:///path), not host {parts.netloc!r}")
        if parts.query or parts.fragment:
            raise ValueError("file URL must not contain '?' or '#'")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError("file URL must contain an absolute path: file:///absolute/path")
        return "file://" + quote(_validate_file_path(path, file_roots), safe="/")

    if " " in url:
        raise ValueError("source URL contains spaces (percent-encode them as %20)")
    if "\\" in url:
        raise ValueError("source URL contains a backslash")

    if scheme == "device":
        index = rest[2:]
        if not index.isdigit():
            raise ValueError(f"device URL must be device://N with N a non-negative integer, got {url!r}")
        number = int(index)
        if number > 1023:
            raise ValueError(f"device number {number} is out of range (0-1023)")
        return f"device://{number}"

    if scheme == "demo":
        params = parse_demo_params(url)
        given = [key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
        return _format_demo_url(params, given)

    # rtsp / rtsps / http / https
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number or out of range
    except ValueError as exc:
        raise ValueError(f"{scheme} URL has an invalid port ({exc})") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{scheme} URL has no host: expected {scheme}://host[:port]/path")
    if not (host.startswith("[") or ":" in host) and not _HOST_RE.match(host):
        raise ValueError(f"{scheme} URL has an invalid host {host!r}")
    if port == 0:
        raise ValueError(f"{scheme} URL has an invalid port 0")
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    hostport = hostport.lower()
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    normalised = f"{scheme}://{netloc}{parts.path}"
    if parts.query:
        normalised += "?" + parts.query
    if parts.fragment:
        normalised += "#" + parts.fragment
    return normalised


def check_file_root(path: str, file_roots) -> str:
    """The real path of file source ``path`` (symlinks and ``..`` resolved) when it lies in ``file_roots``.

    ValueError otherwise. Only the path is looked at, never what is there: a path outside the
    folders gets the same message whether or not it exists (it repeats the path as given, never
    the resolved one). A relative path is refused: the web process and each worker would read it
    from another folder. The worker checks again when it opens the file (``OpenCVSource.open``),
    so a symlink changed after the camera was saved cannot lead outside.
    """
    given = str(path)
    if not os.path.isabs(given):
        raise ValueError(f"file sources must be absolute paths (/videos/clip.mp4 or file:///videos/clip.mp4); "
                         f"{given[:300]!r} is relative")
    real = os.path.realpath(given)
    roots = [os.path.realpath(str(r)) for r in file_roots]
    if not any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots):
        raise ValueError(f"file sources must lie in {', '.join(roots) or '(no folder allowed)'}; "
                         f"{given[:300]!r} does not (settings: CAMERA_FILE_ROOTS)")
    return real


def _validate_file_path(path: str, file_roots=None) -> str:
    if file_roots is not None:
        check_file_root(path, file_roots)  # before anything on disk is looked at
    expanded = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(expanded):
        raise ValueError(f"file not found: {expanded}")
    if not os.path.isfile(expanded):
        raise ValueError(f"not a regular file: {expanded}")
    return expanded
