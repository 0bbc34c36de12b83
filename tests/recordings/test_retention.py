"""Retention of recorded footage: by age per mode, the size cap and the free-space floor of a folder (oldest
first), and the footage of open or unresolved events kept through every cleanup."""

from __future__ import annotations

from collections import namedtuple
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import AnomalyEvent
from recordings.models import DeletionCount, Segment
from recordings.services import recordings_retention, segment_index
from surveillance.schedules import beat_schedules
from tests.factories import CameraFactory, EventFactory, UserFactory

MB = 1024 * 1024
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def folder(settings, tmp_path, site):
    settings.RECORDING_DIR = tmp_path / "fast"
    settings.RECORDING_ARCHIVE_DIR = ""
    site(recording_min_free_gb=0, recording_max_gb=0)  # the retention rules are site settings (Recordings)
    return settings.RECORDING_DIR


def _segment(camera, start, *, folder, size=MB, mode="continuous", seconds=10, **kw) -> Segment:
    path = f"{camera.id}/{start:%Y-%m-%d}/{start:%H%M%S}.mp4"
    file = folder / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(b"\0" * size)
    segment = segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=seconds), path=path,
                            size=size, mode=mode, **kw)
    assert segment is not None
    return segment


@pytest.mark.django_db
def test_indexing_a_segment_twice_stores_it_once_and_a_deleted_camera_is_refused(folder):
    camera = CameraFactory()
    start = timezone.now() - timedelta(minutes=1)
    first = _segment(camera, start, folder=folder)
    again = segment_index(camera_id=camera.id, start=start, end=start + timedelta(seconds=10), path=first.path,
                          size=first.size)
    assert again.pk == first.pk and Segment.objects.count() == 1
    assert segment_index(camera_id=999999, start=start, end=start, path="x.mp4", size=1) is None


@pytest.mark.django_db
def test_the_size_cap_deletes_the_oldest_first_and_keeps_an_unresolved_events_footage(folder, settings, site):
    camera = CameraFactory()
    now = timezone.now()
    t0 = now - timedelta(hours=2)
    segments = [_segment(camera, t0 + timedelta(seconds=10 * i), folder=folder) for i in range(10)]  # 10 MB
    # An unresolved event over the two oldest segments, a resolved one over the third.
    EventFactory(camera=camera, started_at=t0 + timedelta(seconds=2), ended_at=t0 + timedelta(seconds=15),
                 status=AnomalyEvent.Status.NEW)
    EventFactory(camera=camera, started_at=t0 + timedelta(seconds=22), ended_at=t0 + timedelta(seconds=25),
                 status=AnomalyEvent.Status.RESOLVED)
    settings.RECORDING_EVENT_PADDING_SECONDS = 0
    site(recording_max_gb=6.5 * MB / 1024 ** 3)  # 6.5 MB: 4 segments must go

    assert recordings_retention(now=now) == {"size": 4}
    left = set(Segment.objects.values_list("pk", flat=True))
    assert left == {s.pk for s in segments[:2] + segments[6:]}  # the protected two, then the newest
    for s in segments:
        assert (folder / s.path).exists() == (s.pk in left)
    assert DeletionCount.objects.get(reason="size").segments == 4
    assert DeletionCount.objects.get(reason="size").bytes == 4 * MB
    # Safe to run twice: nothing more to do.
    assert recordings_retention(now=now) == {}
    assert Segment.objects.count() == 6

    # Over the cap with only protected footage left to delete: it stays (logged).
    site(recording_max_gb=1 * MB / 1024 ** 3)
    recordings_retention(now=now)
    assert set(Segment.objects.values_list("pk", flat=True)) == {segments[0].pk, segments[1].pk}


@pytest.mark.django_db
def test_an_event_kept_as_evidence_keeps_its_footage_and_clip_until_it_is_let_go(folder, settings, tmp_path, site):
    """A resolved event an operator keeps: the size cap and the clip retention spare its footage and clip; once
    it is no longer kept, the next cleanup may take them."""
    from events.services import event_clips_enforce_retention, event_keep

    camera, operator = CameraFactory(), UserFactory()
    now = timezone.now()
    t0 = now - timedelta(days=40)
    segments = [_segment(camera, t0 + timedelta(seconds=10 * i), folder=folder) for i in range(4)]
    settings.MEDIA_ROOT = tmp_path / "media"
    clip = "events/clips/2026/01/01/kept.mp4"
    (settings.MEDIA_ROOT / clip).parent.mkdir(parents=True)
    (settings.MEDIA_ROOT / clip).write_bytes(b"\0" * 100)
    event = EventFactory(camera=camera, started_at=t0 + timedelta(seconds=2), ended_at=t0 + timedelta(seconds=8),
                         status=AnomalyEvent.Status.RESOLVED, clip=clip)
    event_keep(event=event, by=operator, keep=True)
    settings.RECORDING_EVENT_PADDING_SECONDS = 0
    site(recording_retention_days_continuous=0)  # no age limit: the size cap decides
    site(recording_max_gb=0.5 * MB / 1024 ** 3)  # everything over the cap
    settings.CLIP_RETENTION_DAYS = 30

    assert recordings_retention(now=now) == {"size": 3}
    assert list(Segment.objects.values_list("pk", flat=True)) == [segments[0].pk]
    event_clips_enforce_retention(now=now)
    event.refresh_from_db()
    assert event.clip == clip and (settings.MEDIA_ROOT / clip).exists()

    event_keep(event=event, by=operator, keep=False)
    assert recordings_retention(now=now) == {"size": 1} and not Segment.objects.exists()
    event_clips_enforce_retention(now=now)
    event.refresh_from_db()
    assert event.clip == "" and not (settings.MEDIA_ROOT / clip).exists()


@pytest.mark.django_db
def test_the_free_space_floor_deletes_the_oldest_until_enough_is_free(folder, settings, site):
    camera = CameraFactory()
    now = timezone.now()
    segments = [_segment(camera, now - timedelta(minutes=30 - i), folder=folder) for i in range(5)]
    site(recording_min_free_gb=10 / 1024)  # 10 MB
    usage = Usage(100 * MB, 93 * MB, 7.5 * MB)  # 2.5 MB short: three 1 MB segments
    assert recordings_retention(now=now, disk_usage=lambda root: usage) == {"free_space": 3}
    assert list(Segment.objects.order_by("start").values_list("pk", flat=True)) == [s.pk for s in segments[3:]]


@pytest.mark.django_db
def test_age_per_mode_and_footage_without_motion_or_event(folder, settings, site):
    site(recording_retention_days_continuous=7, recording_retention_days_motion=14,
         recording_retention_days_events=30)
    settings.RECORDING_UNMARKED_KEEP_MINUTES = 60
    settings.RECORDING_EVENT_PADDING_SECONDS = 10
    camera = CameraFactory()
    now = timezone.now()
    old_cont = _segment(camera, now - timedelta(days=8), folder=folder)
    new_cont = _segment(camera, now - timedelta(days=6), folder=folder)
    old_motion = _segment(camera, now - timedelta(days=15), folder=folder, mode="motion", has_motion=True)
    motion = _segment(camera, now - timedelta(days=8, seconds=30), folder=folder, mode="motion", has_motion=True)
    still = _segment(camera, now - timedelta(hours=2), folder=folder, mode="motion")
    # The object detector saw something the motion detector did not: the motion mode keeps it too.
    objects = _segment(camera, now - timedelta(hours=2, minutes=1), folder=folder, mode="motion", has_objects=True)
    still_recent = _segment(camera, now - timedelta(minutes=5), folder=folder, mode="motion")
    quiet = _segment(camera, now - timedelta(hours=3), folder=folder, mode="events")
    eventful = _segment(camera, now - timedelta(days=20), folder=folder, mode="events")
    # A resolved event 5 s after the eventful segment ended: within the padding, so it is kept.
    EventFactory(camera=camera, started_at=eventful.end + timedelta(seconds=5),
                 ended_at=eventful.end + timedelta(seconds=8), status=AnomalyEvent.Status.RESOLVED)
    # An open event (not ended: it lasts until now) protects footage older than every retention.
    other = CameraFactory()
    ancient = _segment(other, now - timedelta(days=60), folder=folder)
    EventFactory(camera=other, started_at=ancient.start, ended_at=None, status=AnomalyEvent.Status.RESOLVED)

    result = recordings_retention(now=now)
    assert result == {"age": 2, "no_motion": 1, "no_event": 1}
    left = set(Segment.objects.values_list("pk", flat=True))
    assert left == {new_cont.pk, motion.pk, objects.pk, still_recent.pk, eventful.pk, ancient.pk}
    assert (objects.has_motion, objects.has_objects) == (False, True)
    assert not {old_cont.pk, old_motion.pk, still.pk, quiet.pk} & left


def test_retention_is_a_beat_task_defined_in_the_one_place():
    assert beat_schedules()["recordings-retention"]["task"] == "recordings.tasks.recordings_retention"


@pytest.mark.django_db
def test_old_footage_moves_to_the_archive_folder_and_stays_playable(folder, settings, tmp_path, site):
    from rest_framework.test import APIClient

    settings.RECORDING_ARCHIVE_DIR = str(tmp_path / "nas")
    settings.RECORDING_ARCHIVE_AFTER_HOURS = 24
    camera = CameraFactory()
    now = timezone.now()
    old = _segment(camera, now - timedelta(hours=30), folder=folder, size=1000)
    new = _segment(camera, now - timedelta(hours=2), folder=folder, size=1000)
    assert recordings_retention(now=now) == {"archived": 1}
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.tier, new.tier) == ("archive", "fast")
    assert not (folder / old.path).exists() and (tmp_path / "nas" / old.path).stat().st_size == 1000
    assert recordings_retention(now=now) == {}  # safe to run twice
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    response = staff.get(f"/api/v1/recordings/{old.id}/video/", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206 and response["Content-Range"] == "bytes 0-9/1000"
    # Each folder has the cap: over it, the fast folder's and the archive's oldest footage go.
    site(recording_max_gb=500 / 1024 ** 3)
    assert recordings_retention(now=now) == {"size": 2}


# -- the retention rules are site settings (admin "Recordings", PATCH /api/v1/site/settings/) -------------------
@pytest.mark.django_db
def test_an_administrator_changes_the_size_cap_and_the_next_run_follows_it_without_a_restart(folder, api_as, staff):
    camera = CameraFactory()
    now = timezone.now()
    segments = [_segment(camera, now - timedelta(minutes=30 - i), folder=folder) for i in range(6)]  # 6 MB
    assert recordings_retention(now=now) == {}  # no cap yet
    client = api_as(staff)
    response = client.patch("/api/v1/site/settings/", {"recording_max_gb": 4 * MB / 1024 ** 3}, format="json")
    assert response.status_code == 200 and response.json()["recording_max_gb"] == 4 * MB / 1024 ** 3

    assert recordings_retention(now=now) == {"size": 2}  # the same process, no restart: the oldest two go
    assert list(Segment.objects.order_by("start").values_list("pk", flat=True)) == [s.pk for s in segments[2:]]
    # Age per mode too: five days of continuous footage is kept at 7 days, not at 4.
    old = _segment(camera, now - timedelta(days=5), folder=folder, size=10)
    client.patch("/api/v1/site/settings/", {"recording_max_gb": 0}, format="json")
    assert recordings_retention(now=now) == {}
    assert client.patch("/api/v1/site/settings/", {"recording_retention_days_continuous": 4},
                        format="json").status_code == 200
    assert recordings_retention(now=now) == {"age": 1} and not Segment.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [
    ("recording_max_gb", -1), ("recording_max_gb", 2_000_000), ("recording_max_gb", "lots"),
    ("recording_min_free_gb", -0.5), ("recording_min_free_gb", "NaN"), ("recording_min_free_gb", None),
    ("recording_retention_days_continuous", -1), ("recording_retention_days_motion", 4000),
    ("recording_retention_days_events", "Infinity"), ("recording_retention_days_events", [1]),
])
def test_a_bad_retention_value_is_a_400_naming_the_field(api_as, staff, field, value):
    from siteconfig.selectors import site_settings

    before = getattr(site_settings(), field)
    response = api_as(staff).patch("/api/v1/site/settings/", {field: value}, format="json")
    assert response.status_code == 400 and list(response.json()) == [field], response.json()
    assert getattr(site_settings(), field) == before


@pytest.mark.django_db
def test_the_service_refuses_what_the_api_would_and_the_rules_are_staff_only(site, api_as, owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        site(recording_max_gb=float("nan"), recording_retention_days_motion=-2)
    assert set(refused.value.message_dict) == {"recording_max_gb", "recording_retention_days_motion"}
    assert api_as(owner).patch("/api/v1/site/settings/", {"recording_max_gb": 1}, format="json").status_code == 403


@pytest.mark.django_db
def test_the_environment_settings_seed_the_retention_rules(settings, site):
    from siteconfig.models import SiteSettings
    from siteconfig.selectors import recording_retention, site_settings_clear_cache

    SiteSettings.objects.all().delete()
    site_settings_clear_cache()
    settings.RECORDING_MAX_GB, settings.RECORDING_MIN_FREE_GB = 250, 5
    settings.RECORDING_RETENTION_DAYS_CONTINUOUS, settings.RECORDING_RETENTION_DAYS_MOTION = 3, 9
    settings.RECORDING_RETENTION_DAYS_EVENTS = 60
    rules = recording_retention()
    assert (rules.max_gb, rules.min_free_gb, rules.days_continuous, rules.days_motion, rules.days_events) == (
        250, 5, 3, 9, 60)
    settings.RECORDING_MAX_GB = 1
    site_settings_clear_cache()
    assert recording_retention().max_gb == 250  # the stored row wins
    site(recording_max_gb=100)
    assert recording_retention().max_gb == 100


@pytest.mark.django_db
def test_the_admin_has_a_recordings_section_that_refuses_a_negative_cap(admin_client, site):
    from siteconfig.selectors import site_settings

    site(recording_max_gb=0)
    url = "/admin/siteconfig/sitesettings/1/change/"
    response = admin_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and ">Recordings</h2>" in html
    for name in ("recording_max_gb", "recording_min_free_gb", "recording_retention_days_continuous",
                 "recording_retention_days_motion", "recording_retention_days_events"):
        assert f'name="{name}"' in html
    form = response.context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items()
            if name not in ("vlm_server", "agent_server")}
    data.update(vlm_server="{}", agent_server="{}", smtp_password="", vapid_private_key="")
    data = {k: v for k, v in data.items() if v is not False}
    refused = admin_client.post(url, {**data, "recording_max_gb": "-1"})
    assert refused.status_code == 200 and "recording_max_gb" in refused.context["adminform"].form.errors
    response = admin_client.post(url, {**data, "recording_max_gb": "250"})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert site_settings().recording_max_gb == 250
