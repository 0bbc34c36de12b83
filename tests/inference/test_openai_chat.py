"""The OpenAI-compatible chat client against a real local HTTP server."""

import base64

import cv2
import numpy as np
import pytest

from inference.addresses import parse_networks
from inference.openai_chat import ChatClient, ChatError, check_base_url

LOOPBACK = parse_networks("127.0.0.0/8")


def client(server, **kwargs):
    return ChatClient(**{"base_url": server.base_url, "model": "qwen2.5vl:3b", "timeout": 5,
                         "allowed_networks": LOOPBACK, **kwargs})


def frame(h=480, w=640):
    image = np.zeros((h, w, 3), np.uint8)
    cv2.rectangle(image, (100, 100), (300, 400), (0, 0, 255), -1)
    return image


def test_an_answer_with_an_image_goes_over_the_real_protocol(server):
    reply = client(server, max_image_px=320).complete("Describe.", [frame()])
    assert "lying on the ground" in reply.text and reply.seconds > 0
    request = server.requests[-1]
    assert request["model"] == "qwen2.5vl:3b" and request["response_format"] == {"type": "json_object"}
    (url,) = server.images()
    assert url.startswith("data:image/jpeg;base64,")
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3)  # the longer side brought down to max_image_px


def test_the_api_key_goes_as_a_bearer_and_a_wrong_one_is_named(server):
    server.api_key = "sk-right"
    assert client(server, api_key="sk-right").complete("hi").text
    assert server.headers[-1]["Authorization"] == "Bearer sk-right"
    with pytest.raises(ChatError, match="refused the API key \\(HTTP 401\\)") as caught:
        client(server, api_key="sk-wrong").complete("hi")
    assert "sk-wrong" not in str(caught.value)


def test_a_server_without_json_mode_is_asked_again_without_it(server):
    server.json_mode_supported = False
    assert client(server).complete("hi").text
    assert "response_format" in server.requests[0] and "response_format" not in server.requests[1]


@pytest.mark.parametrize("status,raw,message", [
    (500, None, "answered HTTP 500: .*model crashed"),
    (200, b"<html>not json</html>", "did not answer in the chat-completions format: '<html>not json</html>'"),
    (200, b'{"choices": []}', "did not answer in the chat-completions format"),
    (200, b'{"choices": [{"message": {"content": null}}]}', "did not answer in the chat-completions format"),
    (503, b"", "answered HTTP 503: \\(empty body\\)"),
])
def test_bad_answers_are_named(server, status, raw, message):
    server.status, server.raw = status, raw
    with pytest.raises(ChatError, match=message):
        client(server).complete("hi")


def test_a_wrong_path_says_to_check_the_base_url(server):
    with pytest.raises(ChatError, match="answered 404: check base_url"):
        client(server, base_url=f"http://127.0.0.1:{server.port}/api").complete("hi")


def test_a_slow_server_times_out_with_a_clear_error(server):
    server.delay = 1.5
    with pytest.raises(ChatError, match="did not answer within 0.5 s"):
        client(server, timeout=0.5).complete("hi")


def test_nothing_listening_is_a_connection_error(server):
    port = server.port
    server.close()
    with pytest.raises(ChatError, match=f"cannot connect to model server http://127.0.0.1:{port}/v1"):
        client(server).complete("hi")


def test_a_server_outside_the_allowed_networks_is_refused_before_connecting(server):
    with pytest.raises(ChatError, match="127.0.0.1 is an internal address.*model server networks"):
        client(server, allowed_networks=[], networks_where="Site settings > model server networks").complete("hi")
    assert server.requests == []


def test_dns_rebinding_is_refused_where_the_connection_is_made(server, monkeypatch):
    import socket

    real = socket.getaddrinfo
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "models.example":
            calls.append(host)
            return real("93.184.216.34" if len(calls) == 1 else "127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    c = client(server, base_url=f"http://models.example:{server.port}/v1", allowed_networks=[])
    with pytest.raises(ChatError, match="127.0.0.1 is an internal address"):
        c.complete("hi")
    assert server.requests == [] and len(calls) >= 2


@pytest.mark.parametrize("url,message", [
    ("", "base_url is required"),
    ("ftp://host/v1", "must be an http\\(s\\) URL"),
    ("http://user:pw@host/v1", "must not carry credentials"),
    ("http://host/v1?x=1", "query string"),
])
def test_bad_base_urls_are_named(url, message):
    with pytest.raises(ValueError, match=message):
        check_base_url(url)


def test_bad_numbers_are_named():
    with pytest.raises(ValueError, match="timeout must be between"):
        ChatClient(base_url="http://127.0.0.1:1/v1", model="m", timeout=0)
    with pytest.raises(ValueError, match="model is required"):
        ChatClient(base_url="http://127.0.0.1:1/v1", model="")
