"""The arming admin: modes edited (never added), hand-set modes through the audited service, schedules."""

import pytest

from arming.models import ArmingMode, ArmingSchedule, ArmingState
from audit.models import AuditEntry
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db


def test_the_admin_pages_render(admin_client):
    for url in ("/admin/arming/armingmode/", "/admin/arming/armingstate/", "/admin/arming/armingstate/add/",
                "/admin/arming/armingschedule/", "/admin/arming/armingschedule/add/", "/admin/arming/heldalert/"):
        assert admin_client.get(url).status_code == 200, url
    home = ArmingMode.objects.get(key="home")
    assert admin_client.get(f"/admin/arming/armingmode/{home.pk}/change/").status_code == 200
    assert admin_client.get("/admin/arming/armingmode/add/").status_code == 403


def test_editing_a_mode_and_setting_a_camera_mode_are_audited(admin_client):
    home = ArmingMode.objects.get(key="home")
    answer = admin_client.post(f"/admin/arming/armingmode/{home.pk}/change/",
                               {"kinds": ["camera_offline"], "min_severity": "critical", "description": "quiet"})
    assert answer.status_code == 302
    home.refresh_from_db()
    assert (home.kinds, home.min_severity) == (["camera_offline"], "critical")
    assert AuditEntry.objects.get(action="arming.mode_update").changes == ["description", "kinds", "min_severity"]

    camera = CameraFactory()
    answer = admin_client.post("/admin/arming/armingstate/add/", {"camera": camera.pk, "area": "", "mode": "away"})
    assert answer.status_code == 302
    assert ArmingState.objects.get().mode == "away"
    assert AuditEntry.objects.get(action="arming.set").details == {"scope": "camera", "old": "auto", "new": "away"}


def test_a_schedule_with_a_period_over_midnight_is_saved(admin_client):
    answer = admin_client.post("/admin/arming/armingschedule/add/", {
        "name": "Nights", "enabled": "on", "camera": "", "area": "", "time_zone": "Asia/Seoul",
        "periods-TOTAL_FORMS": "1", "periods-INITIAL_FORMS": "0", "periods-MIN_NUM_FORMS": "0",
        "periods-MAX_NUM_FORMS": "1000",
        "periods-0-days": ["0", "4"], "periods-0-start": "22:00", "periods-0-end": "07:00",
        "periods-0-mode": "disarmed"})
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    schedule = ArmingSchedule.objects.get()
    assert [(p.days, p.mode) for p in schedule.periods.all()] == [([0, 4], "disarmed")]
    assert AuditEntry.objects.filter(action__startswith="arming.schedule").exists()


def test_an_unknown_time_zone_is_refused(admin_client):
    answer = admin_client.post("/admin/arming/armingschedule/add/", {
        "name": "Bad", "time_zone": "Mars/Olympus", "periods-TOTAL_FORMS": "0", "periods-INITIAL_FORMS": "0",
        "periods-MIN_NUM_FORMS": "0", "periods-MAX_NUM_FORMS": "1000"})
    assert answer.status_code == 200 and "Unknown time zone" in answer.content.decode()
    assert not ArmingSchedule.objects.exists()
