"""An edit of a camera's settings writes only the fields it changed, on the row as it is now.

The worker's claim and live state, ``enabled`` and the active learned detector version are written
by their own services meanwhile; an edit made from an earlier read must never undo them.
"""

import pytest

from cameras import apis
from cameras.live_state import camera_claim
from cameras.models import Camera, DetectorVersion
from cameras.services import camera_update

pytestmark = pytest.mark.django_db


def _behind_the_back(camera_id: int) -> DetectorVersion:
    """Another process: a worker claims the camera and learning makes a new detector version active."""
    Camera.objects.filter(pk=camera_id).update(enabled=True)
    assert camera_claim(camera_id=camera_id, worker="worker-b@host")
    version = DetectorVersion.objects.create(camera_id=camera_id, number=1, detector="motion",
                                             state_path=f"detectors/{camera_id}/v1.json",
                                             source=DetectorVersion.Source.LEARN_LIVE)
    Camera.objects.filter(pk=camera_id).update(active_detector_version=version)
    return version


def test_update_from_a_stale_read_keeps_the_claim_and_the_learned_version(camera):
    stale = Camera.objects.get(pk=camera.pk)
    version = _behind_the_back(camera.pk)

    returned = camera_update(camera=stale, by=None, threshold=0.9, name="Gate")

    stored = Camera.objects.get(pk=camera.pk)
    assert (stored.threshold, stored.name) == (0.9, "Gate")
    assert stored.active_detector_version_id == version.pk
    assert stored.worker == "worker-b@host" and stored.heartbeat_at is not None
    assert stored.enabled is True and stored.state == Camera.State.STARTING
    # what the service returns is the row as stored, not the stale instance
    assert returned.worker == "worker-b@host" and returned.active_detector_version_id == version.pk
    assert stale.worker == "" and stale.threshold != 0.9  # the caller's instance is left as it was read


def test_fields_given_but_not_changed_by_the_editor_keep_a_concurrent_edit(camera):
    stale = Camera.objects.get(pk=camera.pk)
    Camera.objects.filter(pk=camera.pk).update(name="Renamed meanwhile", analysis_fps=2.0)

    # A PUT sends every setting; only the threshold differs from what the editor saw.
    camera_update(camera=stale, by=None, name=stale.name, analysis_fps=stale.analysis_fps, threshold=0.7)

    stored = Camera.objects.get(pk=camera.pk)
    assert (stored.name, stored.analysis_fps, stored.threshold) == ("Renamed meanwhile", 2.0, 0.7)


def test_only_settings_may_be_changed_by_an_edit(camera):
    for field in ("worker", "state", "enabled", "active_detector_version", "heartbeat_at"):
        with pytest.raises(TypeError):
            camera_update(camera=camera, by=None, **{field: None})


def test_api_patch_between_read_and_save_keeps_the_claim_and_the_learned_version(camera, owner, api_as,
                                                                                 monkeypatch):
    real = apis.camera_update
    seen = {}

    def late(*, camera, by, **fields):  # the API read the camera; the worker and learning write before the save
        seen["version"] = _behind_the_back(camera.pk)
        return real(camera=camera, by=by, **fields)

    monkeypatch.setattr(apis, "camera_update", late)
    response = api_as(owner).patch(f"/api/v1/cameras/{camera.pk}/", {"threshold": 0.8}, format="json")

    assert response.status_code == 200, response.content
    stored = Camera.objects.get(pk=camera.pk)
    assert stored.threshold == 0.8
    assert stored.active_detector_version_id == seen["version"].pk
    assert stored.worker == "worker-b@host" and stored.enabled is True
