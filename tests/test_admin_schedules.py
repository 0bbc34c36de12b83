"""The admin lists the product's maintenance schedules (surveillance/schedules.py) and not Celery's machinery."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from surveillance.schedules import ensure_beat_schedules

pytestmark = pytest.mark.django_db

URL = "/admin/django_celery_beat/periodictask/"


def test_only_the_products_jobs_are_listed_and_their_interval_is_a_number_of_seconds(admin_client):
    ensure_beat_schedules()
    every = IntervalSchedule.objects.create(every=4, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="celery.backend_cleanup", task="celery.backend_cleanup", interval=every)
    listing = admin_client.get(URL).content.decode()
    assert "alerts-digest" in listing and "events-close-stale" in listing
    assert "celery.backend_cleanup" not in listing
    index = admin_client.get("/admin/").content.decode()
    for internal in ("crontabschedule", "intervalschedule", "solarschedule", "clockedschedule"):
        assert f"/admin/django_celery_beat/{internal}/" not in index
        assert admin_client.get(f"/admin/django_celery_beat/{internal}/").status_code == 404
    assert "/admin/django_celery_beat/periodictask/add/" not in listing  # the product defines its jobs

    digest = PeriodicTask.objects.get(name="alerts-digest")
    page = admin_client.get(f"{URL}{digest.pk}/change/").content.decode()
    assert 'name="every_seconds"' in page
    response = admin_client.post(f"{URL}{digest.pk}/change/", {"every_seconds": 120, "enabled": "on"})
    assert response.status_code == 302
    digest.refresh_from_db()
    assert (digest.interval.every, digest.interval.period, digest.enabled) == (120, "seconds", True)
    response = admin_client.post(f"{URL}{digest.pk}/change/", {"every_seconds": 0})
    assert response.status_code == 200 and "every_seconds" in response.content.decode()
    assert admin_client.post(f"{URL}{digest.pk}/delete/", {"post": "yes"}).status_code == 403
    other = PeriodicTask.objects.get(name="celery.backend_cleanup")
    assert admin_client.get(f"{URL}{other.pk}/change/").status_code == 302  # not found: back to the list
