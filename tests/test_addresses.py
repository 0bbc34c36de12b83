"""Camera and webhook URLs cannot be aimed at internal addresses unless settings allow them."""

import ipaddress

import pytest

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
    for host in ("127.0.0.1", "[::1]", "localhost", "169.254.1.1"):
        with pytest.raises(AddressNotAllowed, match="internal address"):
            check_host(host, NONE_ALLOWED)
    check_host("192.168.1.20", parse_networks("192.168.1.0/24"))  # allowed network
    check_host("localhost", None)  # "*": everything allowed
    with pytest.raises(AddressNotAllowed, match="metadata"):  # but the metadata service
        check_host("169.254.169.254", None)
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


def test_the_api_refuses_a_camera_outside_the_site_networks_naming_the_setting(api_as, staff, site):
    from cameras.models import Camera

    site(camera_networks="192.168.0.0/16")
    response = api_as(staff).post("/api/v1/cameras/", {"name": "lan", "source_url": "rtsp://10.0.0.7/live"},
                                  format="json")
    assert response.status_code == 400
    message = str(response.json()["source_url"])
    assert "10.0.0.7" in message and "internal address" in message
    assert "Site settings > camera networks" in message and "/admin/siteconfig/sitesettings/" in message
    assert not Camera.objects.filter(name="lan").exists()


def test_a_lan_camera_is_accepted_by_default_in_the_api_and_the_admin(api_as, staff, client):
    """The issue's camera: a private address with credentials, on a fresh site."""
    from cameras.models import Camera

    response = api_as(staff).post("/api/v1/cameras/", {"name": "lan", "source_url":
                                  "rtsp://admin:pw@192.168.1.64:554/stream1"}, format="json")
    assert response.status_code == 201, response.json()
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    page = client.post("/admin/cameras/camera/add/", {
        "name": "lan2", "source_url": "rtsp://10.1.2.3/live", "enabled": "on",
        **{k: v for k, v in _camera_admin_defaults().items()}})
    assert Camera.objects.filter(name="lan2").exists(), page.content.decode()[:3000]


def _camera_admin_defaults() -> dict:
    from django.forms.models import model_to_dict

    from cameras.models import Camera

    values = model_to_dict(Camera(name="x", source_url="demo://"))
    form = {}
    for key, value in values.items():
        if key in ("id", "name", "source_url", "enabled") or value is None:
            continue
        if isinstance(value, bool):
            if value:
                form[key] = "on"
        elif isinstance(value, (dict, list)):
            import json

            form[key] = json.dumps(value)
        else:
            form[key] = value
    return form


@pytest.mark.parametrize("url", ["rtsp://169.254.1.5/live", "http://[fe80::1]/cam.mjpg"])
def test_link_local_cameras_stay_refused_by_default(api_as, staff, url):
    response = api_as(staff).post("/api/v1/cameras/", {"name": "ll", "source_url": url}, format="json")
    assert response.status_code == 400 and "internal address" in str(response.json()), response.json()


def test_cloud_metadata_addresses_are_refused_even_when_every_network_is_allowed(api_as, staff, owner, site):
    site(camera_networks="*", webhook_networks="*")
    response = api_as(staff).post("/api/v1/cameras/", {"name": "md", "source_url": "http://169.254.169.254/x"},
                                  format="json")
    assert response.status_code == 400 and "metadata" in str(response.json())
    body = {"name": "x", "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data", "secret": "s" * 32}
    response = api_as(owner).post("/api/v1/notification-channels/", body, format="json")
    assert response.status_code == 400 and "metadata" in str(response.json())


def test_an_administrator_allows_the_camera_network_without_a_restart(api_as, staff, site):
    site(camera_networks="")
    client = api_as(staff)
    body = {"name": "lan", "source_url": "rtsp://10.0.0.7/live"}
    assert client.post("/api/v1/cameras/", body, format="json").status_code == 400
    response = client.patch("/api/v1/site/settings/", {"camera_networks": "10.0.0.0/8"}, format="json")
    assert response.status_code == 200 and response.json()["camera_networks"] == "10.0.0.0/8"
    assert client.post("/api/v1/cameras/", body, format="json").status_code == 201


def test_the_site_settings_api_is_for_staff_only_and_names_a_bad_network(api_as, staff, owner, viewer, outsider):
    for user in (owner, viewer, outsider):
        assert api_as(user).get("/api/v1/site/settings/").status_code == 403
        assert api_as(user).patch("/api/v1/site/settings/", {"registration_open": True},
                                  format="json").status_code == 403
    response = api_as(staff).patch("/api/v1/site/settings/", {"webhook_networks": "192.168.1.0/24, lan"},
                                   format="json")
    assert response.status_code == 400 and "'lan'" in str(response.json()["webhook_networks"])
    data = api_as(staff).get("/api/v1/site/settings/").json()
    assert data["registration_open"] is False and "192.168.0.0/16" in data["camera_networks"]
    assert "192.168.0.0/16" in data["model_server_networks"]


def test_environment_variables_only_seed_the_row(settings):
    from siteconfig.models import SiteSettings
    from siteconfig.selectors import site_settings, site_settings_clear_cache

    SiteSettings.objects.all().delete()
    site_settings_clear_cache()
    settings.SEED_CAMERA_NETWORKS = "10.9.0.0/16"
    assert site_settings().camera_networks == "10.9.0.0/16"
    settings.SEED_CAMERA_NETWORKS = "10.8.0.0/16"
    site_settings_clear_cache()
    assert site_settings().camera_networks == "10.9.0.0/16"  # the stored row wins


def test_a_stream_re_pointed_after_saving_is_refused_at_its_next_connection(site):
    """The source asks the site's policy again each time it connects."""
    from siteconfig.selectors import camera_networks

    source = OpenCVSource("rtsp://127.0.0.1:9/none", allowed_networks=camera_networks, open_timeout=1.0,
                          networks_where="Site settings > camera networks")
    site(camera_networks="10.0.0.0/8")
    with pytest.raises(SourceError, match="internal address.*Site settings > camera networks"):
        source.open()


@pytest.mark.parametrize("kind,url", [("webhook", "http://127.0.0.1:8080/hook"),
                                      ("webhook", "http://192.168.1.5:8123/api/webhook/x"),
                                      ("apprise", "json://192.168.1.5/notify")])
def test_alert_channels_on_the_lan_need_the_sites_webhook_networks(api_as, owner, site, kind, url):
    site(webhook_networks="")
    body = {"name": "x", "kind": kind, "url": url, "secret": "s" * 32}
    response = api_as(owner).post("/api/v1/notification-channels/", body, format="json")
    assert response.status_code == 400, response.json()
    assert "internal address" in str(response.json()) and "webhook and Apprise networks" in str(response.json())
    site(webhook_networks="127.0.0.0/8, 192.168.1.0/24")
    response = api_as(owner).post("/api/v1/notification-channels/", body, format="json")
    assert response.status_code == 201, response.json()


def test_a_webhook_re_pointed_at_an_internal_address_is_not_sent(site):
    from alerts.transports import Message, SendError, send_webhook

    site(webhook_networks="")
    with pytest.raises(SendError, match="internal address"):
        send_webhook(url="http://localhost:9/hook", secret="s" * 32, delivery_id=1, attempt=1,
                     message=Message(subject="s", text="t", payload={}))


class _Receiver:
    """A real HTTP server on loopback that records what reaches it."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rebinding(monkeypatch):
    """``rebind.example`` resolves to a public address for the first lookup (the check) and to
    loopback for every later one (the connection): DNS rebinding."""
    import socket

    real = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_dns_rebinding_is_refused_where_the_connection_is_made(site, rebinding, kind):
    from alerts.transports import Message, SendError, send_apprise, send_webhook

    site(webhook_networks="")
    receiver = _Receiver()
    try:
        message = Message(subject="s", text="t", payload={"a": 1})
        with pytest.raises(SendError, match="127.0.0.1 is an internal address"):
            if kind == "webhook":
                send_webhook(url=f"http://rebind.example:{receiver.port}/hook", secret="s" * 32, delivery_id=1,
                             attempt=1, message=message)
            else:
                send_apprise(url=f"json://rebind.example:{receiver.port}/hook", message=message)
        assert len(rebinding) >= 2  # checked once, resolved again to connect
        assert receiver.received == []  # nothing reached the internal address
        site(webhook_networks="127.0.0.0/8")  # the site allows its loopback: the same send arrives
        if kind == "webhook":
            send_webhook(url=f"http://127.0.0.1:{receiver.port}/hook", secret="s" * 32, delivery_id=1, attempt=1,
                         message=message)
        else:
            send_apprise(url=f"json://127.0.0.1:{receiver.port}/hook", message=message)
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_the_connection_guard_checks_the_connected_address_in_its_block_only():
    import socket

    from inference.addresses import ConnectionNotAllowed, connections_checked

    receiver = _Receiver()
    try:
        with connections_checked([], what="model server", where="Site settings > model server networks"):
            with pytest.raises(ConnectionNotAllowed, match="model server: 127.0.0.1 .*model server networks"):
                socket.create_connection(("127.0.0.1", receiver.port), timeout=2)
        with connections_checked(parse_networks("127.0.0.0/8"), what="model server"):
            socket.create_connection(("127.0.0.1", receiver.port), timeout=2).close()
        socket.create_connection(("127.0.0.1", receiver.port), timeout=2).close()  # outside: unchecked
    finally:
        receiver.close()
