"""Camera and webhook URLs cannot be aimed at internal addresses unless settings allow them."""

import ipaddress

import pytest
from django.test import override_settings

from inference.addresses import AddressNotAllowed, check_host, is_internal, parse_networks
from inference.base import SourceError
from inference.source_urls import validate_source_url
from inference.sources import OpenCVSource

pytestmark = pytest.mark.django_db

NONE_ALLOWED = parse_networks("")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.20", "169.254.169.254",
                                     "0.0.0.0", "100.64.0.1", "::1", "fe80::1", "fd00::5", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_internal_addresses_are_recognised(address):
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_not_internal(address):
    assert not is_internal(ipaddress.ip_address(address))


def test_parse_networks_accepts_cidrs_and_star_and_names_a_bad_entry():
    assert parse_networks("192.168.1.0/24, 10.0.0.5") == [ipaddress.ip_network("192.168.1.0/24"),
                                                         ipaddress.ip_network("10.0.0.5/32")]
    assert parse_networks("*") is None
    with pytest.raises(ValueError, match="'nope'"):
        parse_networks("10.0.0.0/8,nope")


def test_check_host_refuses_internal_literals_and_names_that_resolve_to_them():
    for host in ("127.0.0.1", "[::1]", "localhost", "169.254.169.254"):
        with pytest.raises(AddressNotAllowed, match="internal address"):
            check_host(host, NONE_ALLOWED)
    check_host("192.168.1.20", parse_networks("192.168.1.0/24"))  # allowed network
    check_host("localhost", None)  # "*": everything allowed
    with pytest.raises(AddressNotAllowed):
        check_host("192.168.2.20", parse_networks("192.168.1.0/24"))


def test_camera_source_urls_follow_the_policy():
    with pytest.raises(ValueError, match="camera host 127.0.0.1 is an internal address"):
        validate_source_url("rtsp://127.0.0.1:8554/cam", allowed_networks=NONE_ALLOWED)
    with pytest.raises(ValueError, match=r"localhost \(127.0.0.1\)"):
        validate_source_url("http://localhost/stream.mjpg", allowed_networks=NONE_ALLOWED)
    ok = validate_source_url("rtsp://192.168.1.20/cam", allowed_networks=parse_networks("192.168.1.0/24"))
    assert ok == "rtsp://192.168.1.20/cam"
    assert validate_source_url("demo://", allowed_networks=NONE_ALLOWED) == "demo://"


def test_file_sources_must_lie_in_the_allowed_folders(tmp_path):
    clip = tmp_path / "ok" / "clip.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x")
    assert validate_source_url(str(clip), file_roots=[str(tmp_path / "ok")]) == str(clip)
    with pytest.raises(ValueError, match="file sources must lie in"):
        validate_source_url(str(clip), file_roots=[str(tmp_path / "other")])
    with pytest.raises(ValueError, match="file sources must lie in"):  # no escaping with ..
        validate_source_url(str(tmp_path / "ok" / ".." / "ok" / ".." / "ok" / "clip.mp4"),
                            file_roots=[str(tmp_path / "o")])


def test_a_stream_whose_host_is_internal_does_not_open():
    source = OpenCVSource("rtsp://127.0.0.1:9/none", allowed_networks=NONE_ALLOWED, open_timeout=1.0)
    with pytest.raises(SourceError, match="internal address"):
        source.open()


@override_settings(CAMERA_ALLOWED_NETWORKS=NONE_ALLOWED)
def test_the_api_refuses_a_camera_on_an_internal_address_with_a_clear_400(api_as, staff):
    from cameras.models import Camera

    response = api_as(staff).post("/api/v1/cameras/", {"name": "lan", "source_url": "rtsp://10.0.0.7/live"},
                                  format="json")
    assert response.status_code == 400
    assert "internal address" in str(response.json()["source_url"]) and "10.0.0.7" in str(response.json())
    assert not Camera.objects.filter(name="lan").exists()


@override_settings(CAMERA_ALLOWED_NETWORKS=parse_networks("10.0.0.0/8"))
def test_an_administrator_can_allow_the_camera_network(api_as, staff):
    response = api_as(staff).post("/api/v1/cameras/", {"name": "lan", "source_url": "rtsp://10.0.0.7/live"},
                                  format="json")
    assert response.status_code == 201, response.json()


@override_settings(CAMERA_FILE_ROOTS=["/srv/videos"])
def test_the_api_refuses_a_file_outside_the_allowed_folders(api_as, staff):
    response = api_as(staff).post("/api/v1/cameras/", {"name": "f", "source_url": "/etc/hostname"}, format="json")
    assert response.status_code == 400 and "file sources must lie in /srv/videos" in str(response.json())


@override_settings(WEBHOOK_ALLOWED_NETWORKS=NONE_ALLOWED)
@pytest.mark.parametrize("kind,url", [("webhook", "http://127.0.0.1:8080/hook"),
                                      ("webhook", "http://169.254.169.254/latest/meta-data"),
                                      ("apprise", "json://192.168.1.5/notify")])
def test_alert_channels_cannot_point_at_internal_addresses(api_as, owner, kind, url):
    body = {"name": "x", "kind": kind, "url": url, "secret": "s" * 32}
    response = api_as(owner).post("/api/v1/notification-channels/", body, format="json")
    assert response.status_code == 400 and "internal address" in str(response.json()), response.json()


def test_a_webhook_re_pointed_at_an_internal_address_is_not_sent(settings):
    from alerts.transports import Message, SendError, send_webhook

    settings.WEBHOOK_ALLOWED_NETWORKS = NONE_ALLOWED
    with pytest.raises(SendError, match="internal address"):
        send_webhook(url="http://localhost:9/hook", secret="s" * 32, delivery_id=1, attempt=1,
                     message=Message(subject="s", text="t", payload={}))
