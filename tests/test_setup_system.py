"""setup_system prints the administrator's password only when it makes one: the first run, or --reset-password."""

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = pytest.mark.django_db

LOGIN = re.compile(r"Login: username '(\S+)', password '(\S+)'")


@pytest.fixture
def data_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    settings.DATA_DIR = tmp_path
    return tmp_path


def setup(*args) -> str:
    out = StringIO()
    call_command("setup_system", "--no-demo", *args, stdout=out)
    return out.getvalue()


def test_the_first_run_prints_the_login_and_later_runs_do_not(data_dir):
    first = setup()
    login = LOGIN.search(first)
    assert "Created the administrator 'admin'." in first and login
    username, password = login.groups()
    assert username == "admin" and authenticate(username="admin", password=password) is not None
    password_file = data_dir / "admin-password.txt"
    assert password_file.read_text().strip() == password
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    second = setup()
    assert password not in second and not LOGIN.search(second)
    assert "The administrator 'admin' exists" in second and "setup_system --reset-password" in second
    assert authenticate(username="admin", password=password) is not None  # nothing changed


def test_reset_password_sets_and_prints_a_new_one(data_dir):
    old = LOGIN.search(setup()).group(2)
    out = setup("--reset-password")
    login = LOGIN.search(out)
    assert "Set a new password for the administrator 'admin'." in out and login
    new = login.group(2)
    assert new != old
    assert authenticate(username="admin", password=new) is not None
    assert authenticate(username="admin", password=old) is None
    assert (data_dir / "admin-password.txt").read_text().strip() == new
    assert new not in setup()  # and it is not printed again


def test_admin_password_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "chosen-by-the-operator-1")
    assert "password 'chosen-by-the-operator-1'" in setup()
    assert "chosen-by-the-operator-1" not in setup()
    assert "password 'chosen-by-the-operator-1'" in setup("--reset-password")


def test_the_administrator_gets_an_in_app_rule_for_high_and_critical_once(data_dir):
    from alerts.models import AlertRule

    first = setup()
    rule = AlertRule.objects.get(owner__username="admin")
    assert (rule.all_cameras, rule.min_severity, rule.notify_in_app, rule.enabled) == (True, "high", True, True)
    assert f"Alert rule '{rule.name}' created" in first
    rule.delete()  # the administrator did not want it: a later run does not bring it back
    assert "Alert rule" not in setup()
    assert not AlertRule.objects.exists()


def test_the_demo_cameras_record_around_their_events(data_dir, settings):
    from cameras.models import Camera

    settings.CAMERA_FILE_ROOTS = [str(data_dir / "footage")]
    out = StringIO()
    call_command("setup_system", stdout=out)
    cameras = list(Camera.objects.order_by("pk"))
    assert cameras and cameras[0].source_url == "demo://"
    # a new user sees recordings on the camera page and the event pages of `make run`, with a bounded disk
    assert {c.record_mode for c in cameras} == {"events"}
    assert "recording around its events" in out.getvalue()
