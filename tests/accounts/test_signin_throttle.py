"""Failed sign-ins are throttled per (user name, client address) pair, with the site settings' limits, so
that nobody can pause someone else's correct password; the client address believes X-Forwarded-For
only from the site's trusted proxies."""

import pytest
from django.test import RequestFactory
from rest_framework.throttling import ScopedRateThrottle

from accounts import services, signals
from accounts.selectors import client_address
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"
ATTACKER, HOME, OFFICE = "203.0.113.9", "198.51.100.7", "192.0.2.44"
PROXY = "10.0.0.2"


def token(client, username, password, remote=ATTACKER, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post("/api/v1/auth/token/", {"username": username, "password": password},
                       content_type="application/json", **extra)


def fail(client, username, times, **where):
    for _ in range(times):
        assert token(client, username, "wrong", **where).status_code == 401


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand (``clock.now += 100``)."""
    class Clock:
        now = 1_900_000_000.0

    monkeypatch.setattr(services, "_now", lambda: Clock.now)
    return Clock


# -- nobody pauses someone else's correct password ----------------------------------------------------
def test_failures_for_admin_from_another_address_do_not_stop_admin(client, site):
    site(login_max_failures=3)
    UserFactory(username="admin", is_staff=True)
    fail(client, "admin", 3, remote=ATTACKER)
    # The attacker's own pair is paused, even with the right password ...
    assert token(client, "admin", PASSWORD, remote=ATTACKER).status_code == 429
    # ... but the administrator signs in from anywhere else.
    assert token(client, "admin", PASSWORD, remote=HOME).status_code == 200


def test_many_users_failing_from_one_shared_address_do_not_stop_another_user(client, site):
    site(login_max_failures=3)
    UserFactory(username="zoe")
    for n in range(8):  # behind one reverse proxy (not configured as trusted), every client shares PROXY
        fail(client, f"user{n}", 3, remote=PROXY)
    assert token(client, "zoe", PASSWORD, remote=PROXY).status_code == 200


def test_a_successful_sign_in_clears_the_pairs_failures(client, site):
    site(login_max_failures=3)
    UserFactory(username="amy")
    for _ in range(3):
        fail(client, "amy", 2, remote=HOME)
        assert token(client, "amy", PASSWORD, remote=HOME).status_code == 200


def test_the_limit_is_the_site_setting_and_case_does_not_multiply_it(client, site):
    site(login_max_failures=2)
    UserFactory(username="bea")
    assert token(client, "bea", "wrong").status_code == 401
    assert token(client, "BEA", "wrong").status_code == 401
    assert token(client, "bea", PASSWORD).status_code == 429


# -- the refusal names the real time left -------------------------------------------------------------
def test_429_gives_the_time_actually_left_with_retry_after(client, site, clock):
    site(login_max_failures=2, login_lockout_seconds=300)
    UserFactory(username="cy")
    fail(client, "cy", 2)
    clock.now += 100
    response = token(client, "cy", PASSWORD)
    assert response.status_code == 429
    assert response.json()["detail"] == "Too many failed sign-ins. Try again in 200 seconds."
    assert response["Retry-After"] == "200"
    clock.now += 199.5
    assert token(client, "cy", PASSWORD)["Retry-After"] == "1"
    clock.now += 1
    assert token(client, "cy", PASSWORD).status_code == 200


def test_the_sign_in_page_shows_the_same_message(client, site, clock):
    site(login_max_failures=2, login_lockout_seconds=300)
    UserFactory(username="dee")
    for _ in range(2):
        assert client.post("/accounts/login/", {"username": "dee", "password": "bad"},
                           REMOTE_ADDR=ATTACKER).status_code == 200
    clock.now += 250
    page = client.post("/accounts/login/", {"username": "dee", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert page.status_code == 429 and page["Retry-After"] == "50"
    assert "Too many failed sign-ins. Try again in 50 seconds." in page.content.decode()
    # The page and the API share the pair's count.
    assert token(client, "dee", PASSWORD, remote=ATTACKER).json()["detail"] == page.context["throttled_message"]
    # Another address signs in on the page at once.
    assert client.post("/accounts/login/", {"username": "dee", "password": PASSWORD},
                       REMOTE_ADDR=HOME).status_code == 302


# -- the client address ---------------------------------------------------------------------------------
@pytest.mark.parametrize("proxies,remote,forwarded,client", [
    ("", ATTACKER, HOME, ATTACKER),                                   # no proxy trusted: the header is ignored
    ("10.0.0.0/24", ATTACKER, HOME, ATTACKER),                        # not from a trusted proxy: ignored
    ("10.0.0.0/24", PROXY, HOME, HOME),
    ("10.0.0.0/24", PROXY, f"{OFFICE}, {HOME}", HOME),                # the left part is the client's own claim
    ("10.0.0.0/24", PROXY, f"{OFFICE}, {HOME}, 10.0.0.3", HOME),      # two proxies: the nearest non-proxy
    ("10.0.0.0/24", PROXY, "10.0.0.3", "10.0.0.3"),                   # only proxies: the furthest of them
    ("10.0.0.0/24", PROXY, None, PROXY),
    ("10.0.0.0/24", PROXY, f"{HOME}, unknown", PROXY),                # a hop that is no address stops the walk
    ("10.0.0.0/24", PROXY, f"{HOME}:5555", HOME),
    ("10.0.0.0/24", PROXY, "[2001:db8::1]:443", "2001:db8::1"),
    ("10.0.0.0/24", f"::ffff:{PROXY}", HOME, HOME),                   # a dual-stack listener's mapped address
    ("127.0.0.1, ::1", "::1", HOME, HOME),
    ("", "", HOME, "unknown"),
])
def test_client_address(site, proxies, remote, forwarded, client):
    site(trusted_proxies=proxies)
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(RequestFactory().get("/", **meta)) == client


def test_behind_a_trusted_proxy_each_client_has_its_own_count(client, site):
    site(login_max_failures=2, trusted_proxies="10.0.0.0/24")
    UserFactory(username="alice")
    fail(client, "alice", 2, remote=PROXY, forwarded=ATTACKER)
    assert token(client, "alice", PASSWORD, remote=PROXY, forwarded=ATTACKER).status_code == 429
    assert token(client, "alice", PASSWORD, remote=PROXY, forwarded=HOME).status_code == 200


def test_a_forged_forwarded_header_does_not_escape_the_pause(client, site):
    site(login_max_failures=2, trusted_proxies="10.0.0.0/24")
    UserFactory(username="ben")
    fail(client, "ben", 2, remote=ATTACKER, forwarded=HOME)
    for forged in (OFFICE, "10.0.0.9", f"{OFFICE}, 10.0.0.9"):
        assert token(client, "ben", PASSWORD, remote=ATTACKER, forwarded=forged).status_code == 429


def test_the_registration_throttle_uses_the_same_client_address(client, site, monkeypatch):
    site(registration_open=True, trusted_proxies="10.0.0.0/24")
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"register": "2/hour"})

    def register(n, remote, forwarded):
        return client.post("/api/v1/auth/register/", {"username": f"new{n}", "password": "a-long-pass-word-987"},
                           content_type="application/json", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    # A client forging X-Forwarded-For is still one client.
    assert [register(n, ATTACKER, f"192.0.2.{n}").status_code for n in range(3)] == [201, 201, 429]
    # Clients behind the trusted proxy are told apart.
    assert register(10, PROXY, HOME).status_code == 201
    assert register(11, PROXY, OFFICE).status_code == 201


# -- an administrator clears pauses ---------------------------------------------------------------------
@pytest.fixture
def announced():
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    signals.signin_lockouts_cleared.connect(receiver)
    yield seen
    signals.signin_lockouts_cleared.disconnect(receiver)


def test_the_admin_clears_a_users_lockouts_from_the_user_list(client, site, announced):
    site(login_max_failures=2)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    eve = UserFactory(username="eve")
    fail(client, "eve", 2, remote=ATTACKER)
    fail(client, "eve", 2, remote=HOME)
    assert token(client, "eve", PASSWORD, remote=HOME).status_code == 429
    client.force_login(root)
    page = client.get(f"/admin/accounts/user/{eve.pk}/change/").content.decode()
    assert ATTACKER in page and HOME in page  # the change page lists the pauses
    response = client.post("/admin/accounts/user/", {"action": "clear_signin_lockouts",
                                                      "_selected_action": [eve.pk]}, follow=True)
    assert "Sign-in lockouts cleared for 1 user(s); paused until now: eve." in response.content.decode()
    assert announced == [{"signal": signals.signin_lockouts_cleared, "user": eve, "by": root, "address": "",
                          "cleared": 2}]
    client.logout()
    assert token(client, "eve", PASSWORD, remote=HOME).status_code == 200
    assert token(client, "eve", PASSWORD, remote=ATTACKER).status_code == 200
    assert services.signin_lockouts("eve") == {}


def test_the_service_clears_one_address_or_all(client, site, announced):
    site(login_max_failures=1)
    fay = UserFactory(username="fay")
    fail(client, "fay", 1, remote=ATTACKER)
    fail(client, "fay", 1, remote=HOME)
    assert set(services.signin_lockouts("fay")) == {ATTACKER, HOME}
    assert services.signin_lockouts_clear(user=fay, address=HOME) == 1
    assert token(client, "fay", PASSWORD, remote=HOME).status_code == 200
    assert token(client, "fay", PASSWORD, remote=ATTACKER).status_code == 429
    assert set(services.signin_lockouts("fay")) == {ATTACKER}
    assert services.signin_lockouts_clear(user=fay) == 1
    assert services.signin_lockouts_clear(user=fay) == 0
    assert token(client, "fay", PASSWORD, remote=ATTACKER).status_code == 200
    assert [(a["address"], a["cleared"], a["by"]) for a in announced] == [(HOME, 1, None), ("", 1, None), ("", 0, None)]


def test_the_admin_signs_in_through_the_throttled_page(client, site):
    """Django's own admin login is not throttled: /admin/login/ leads to the product's sign-in page."""
    UserFactory(username="root", is_staff=True, is_superuser=True)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/admin/"
    site(login_max_failures=2)
    for _ in range(2):
        client.post("/accounts/login/", {"username": "root", "password": "wrong"})
    assert client.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code == 302
    assert client.post("/accounts/login/", {"username": "root", "password": "wrong"}).status_code == 429
