"""The audit log: each audited action records exactly one entry with the right actor, action, target
and changed field names, and never a secret (webhook secrets, camera URL passwords)."""

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry
from audit.selectors import audit_entries
from audit.services import audit_record
from cameras.models import DetectorVersion
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

SECRET_URL = "rtsp://admin:hunter2-camera@192.0.2.10/stream"
WEBHOOK_SECRET = "whsec-0123456789abcdef-topsecret"


def only_entry(**filters) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(**filters))
    assert len(entries) == 1, entries
    return entries[0]


def no_secrets():
    dump = json.dumps(list(AuditEntry.objects.values()), default=str)
    for secret in ("hunter2", "topsecret", WEBHOOK_SECRET):
        assert secret not in dump


@pytest.fixture
def operator(camera):
    from tests.factories import UserFactory

    user = UserFactory(username="operator")
    for perm in ("view_camera", "operate_camera"):
        assign_perm(perm, user, camera)
    return user


def test_camera_create_update_start_stop_delete(api_as, staff, site):
    site(camera_networks="*")  # 192.0.2.0/24, a documentation network
    client = api_as(staff)
    response = client.post("/api/v1/cameras/", {"name": "Gate", "source_url": SECRET_URL}, format="json")
    assert response.status_code == 201, response.json()
    cid = response.json()["id"]
    entry = only_entry(action="camera.create")
    assert (entry.actor, entry.actor_name, entry.target_type, entry.target_id, entry.camera_id) == \
        (staff, "staff", "camera", str(cid), cid)
    assert "source_url" in entry.changes and entry.target_repr == "Gate"

    assert client.patch(f"/api/v1/cameras/{cid}/", {"threshold": 0.7, "name": "Gate"}, format="json") \
        .status_code == 200
    assert only_entry(action="camera.update").changes == ["threshold"]  # the unchanged name is not listed
    client.patch(f"/api/v1/cameras/{cid}/", {"source_url": SECRET_URL.replace("hunter2", "hunter3")}, format="json")
    assert AuditEntry.objects.filter(action="camera.update", changes=["source_url"]).count() == 1

    assert client.post(f"/api/v1/cameras/{cid}/start/").status_code == 202
    assert client.post(f"/api/v1/cameras/{cid}/stop/").status_code == 202
    assert only_entry(action="camera.start").target_id == str(cid)
    assert only_entry(action="camera.stop").actor == staff

    assert client.delete(f"/api/v1/cameras/{cid}/").status_code == 204
    entry = only_entry(action="camera.delete")
    assert (entry.target_id, entry.camera_id, entry.target_repr) == (str(cid), cid, "Gate")
    assert audit_entries(camera_id=cid).count() == 6  # kept after the camera is gone
    no_secrets()


def test_event_acknowledge_resolve_and_false_alarm(api_as, camera, operator, client):
    first, second, third = (EventFactory(camera=camera) for _ in range(3))
    api = api_as(operator)
    assert api.post(f"/api/v1/events/{first.id}/acknowledge/").status_code == 200
    assert api.post(f"/api/v1/events/{first.id}/acknowledge/").status_code == 200  # twice: nothing changes
    entry = only_entry(action="event.acknowledge")
    assert (entry.actor, entry.target_type, entry.target_id, entry.camera_id, entry.changes) == \
        (operator, "anomalyevent", str(first.id), camera.id, ["status"])

    assert api.post(f"/api/v1/events/{first.id}/resolve/", {"false_alarm": False}, format="json").status_code == 200
    assert only_entry(action="event.resolve").target_id == str(first.id)
    assert api.post(f"/api/v1/events/{second.id}/resolve/", {"false_alarm": True}, format="json").status_code == 200
    assert only_entry(action="event.false_alarm").target_id == str(second.id)

    # Bulk acknowledge on the events page: one entry per event, marked bulk.
    client.force_login(operator)
    client.post("/events/acknowledge/", {"event": [str(third.id), str(first.id)]})
    bulk = only_entry(action="event.acknowledge", details__bulk=True)
    assert bulk.target_id == str(third.id) and bulk.actor == operator
    assert AuditEntry.objects.filter(action="event.acknowledge").count() == 2


def test_detector_learn_and_restore(api_as, camera, operator):
    api = api_as(operator)
    response = api.post(f"/api/v1/cameras/{camera.id}/learn/", {"minutes": 2}, format="json")
    assert response.status_code == 202, response.json()
    entry = only_entry(action="detector.learn")
    assert entry.actor == operator and entry.camera_id == camera.id
    assert entry.details["job"] == response.json()["id"] and entry.details["minutes"] == 2

    state = Path(django_settings.DATA_DIR) / "detectors" / str(camera.id) / "v1.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{}")
    DetectorVersion.objects.create(camera=camera, number=1, detector=camera.detector,
                                   state_path=f"detectors/{camera.id}/v1.json",
                                   source=DetectorVersion.Source.LEARN_LIVE)
    assert api.post(f"/api/v1/cameras/{camera.id}/detector-versions/1/restore/").status_code == 200
    entry = only_entry(action="detector.restore")
    assert entry.details == {"restored_version": 1, "new_version": 2}
    assert entry.changes == ["active_detector_version"]


def test_alert_channels_and_rules_never_record_the_secret(api_as, camera, viewer):
    api = api_as(viewer)
    response = api.post("/api/v1/notification-channels/", {
        "name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET},
        format="json")
    assert response.status_code == 201, response.json()
    channel_id = response.json()["id"]
    entry = only_entry(action="channel.create")
    assert entry.actor == viewer and entry.target_id == str(channel_id) and "secret" in entry.changes

    new_secret = WEBHOOK_SECRET.replace("0123", "9999")
    assert api.patch(f"/api/v1/notification-channels/{channel_id}/", {"secret": new_secret, "name": "hook"},
                     format="json").status_code == 200
    assert only_entry(action="channel.update").changes == ["secret"]

    response = api.post("/api/v1/alert-rules/", {"name": "all", "cameras": [camera.id], "channels": [channel_id]},
                        format="json")
    assert response.status_code == 201, response.json()
    rule_id = response.json()["id"]
    assert only_entry(action="rule.create").target_id == str(rule_id)
    assert api.patch(f"/api/v1/alert-rules/{rule_id}/", {"min_severity": "high", "channels": []},
                     format="json").status_code == 200
    assert only_entry(action="rule.update").changes == ["channels", "min_severity"]
    assert api.delete(f"/api/v1/alert-rules/{rule_id}/").status_code == 204
    assert api.delete(f"/api/v1/notification-channels/{channel_id}/").status_code == 204
    assert only_entry(action="rule.delete").actor == viewer
    assert only_entry(action="channel.delete").target_repr == "hook (webhook)"
    no_secrets()
    assert new_secret not in json.dumps(list(AuditEntry.objects.values()), default=str)


def test_refused_actions_record_nothing(api_as, camera, viewer):
    event = EventFactory(camera=camera)
    api = api_as(viewer)
    assert api.post(f"/api/v1/cameras/{camera.id}/start/").status_code == 403
    assert api.post(f"/api/v1/events/{event.id}/acknowledge/").status_code == 403
    assert api.patch(f"/api/v1/cameras/{camera.id}/", {"name": "x"}, format="json").status_code == 403
    assert not AuditEntry.objects.exists()


def test_secret_details_are_refused(camera, staff):
    with pytest.raises(ValueError):
        audit_record(actor=staff, action="camera.update", target=camera, details={"source_url": SECRET_URL})


def test_admin_lists_entries_for_staff_read_only(client, camera, staff, viewer, api_as):
    api_as(staff).post(f"/api/v1/cameras/{camera.id}/start/")
    entry = only_entry(action="camera.start")
    client.force_login(staff)
    page = client.get("/admin/audit/auditentry/?action=camera.start")
    assert page.status_code == 200 and b"camera.start" in page.content and camera.name.encode() in page.content
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200  # a read-only view
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1
    client.force_login(viewer)  # not staff: no admin at all
    assert client.get("/admin/audit/auditentry/").status_code == 302


def test_admin_camera_actions_go_through_the_audited_services(client, camera, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.post("/admin/cameras/camera/", {"action": "start_cameras", "_selected_action": [camera.pk]})
    assert response.status_code == 302
    assert only_entry(action="camera.start").actor == staff
    response = client.post(f"/admin/cameras/camera/{camera.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entry = only_entry(action="camera.delete")
    assert (entry.actor, entry.target_id) == (staff, str(camera.pk))


def test_alert_channels_and_rules_edited_in_the_admin_go_through_the_services(client, staff, camera):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.post("/admin/alerts/notificationchannel/add/", {
        "name": "Ops hook", "kind": "webhook", "url": "https://hooks.example.com/ops", "secret": "s3cret-" * 4,
        "owner": staff.pk, "enabled": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="channel.create")
    assert entry.actor == staff and "s3cret" not in json.dumps([entry.changes, entry.details, entry.target_repr])
    from alerts.models import NotificationChannel

    channel = NotificationChannel.objects.get(name="Ops hook")
    response = client.post("/admin/alerts/alertrule/add/", {
        "name": "All high", "owner": staff.pk, "enabled": "on", "all_cameras": "on", "min_severity": "high",
        "time_zone": "", "channels": [channel.pk], "notify_in_app": "on",
        "escalation_steps-TOTAL_FORMS": "0", "escalation_steps-INITIAL_FORMS": "0"})  # the steps' inline
    assert response.status_code == 302, response.content.decode()[:3000]
    assert AuditEntry.objects.filter(action="rule.create", actor=staff).count() == 1
    from alerts.models import AlertRule

    assert list(AlertRule.objects.get(name="All high").channels.all()) == [channel]
