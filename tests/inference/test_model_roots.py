"""Model folders and file sources are confined to allowed roots, and say nothing of what lies outside.

Model folders (a camera's ``vlm_model_path``, ``model_path``/``model_dir`` in its detector and agent
parameters) must lie in ``MODEL_ROOTS``: checked when the camera is saved (API and admin: the field
is named) and again by the worker's pool before it loads. File sources must lie in
``CAMERA_FILE_ROOTS``, checked again when the worker opens the file. Relative paths are refused;
symlinks and ``..`` are resolved first; a path outside gets the same message whether it exists.
"""

from __future__ import annotations

import json
import os

import pytest

from inference.base import SourceError
from inference.modelfiles import ModelPathNotAllowed, check_model_dir, check_model_root
from inference.pool import ResourcePool
from inference.source_urls import validate_source_url
from inference.sources import OpenCVSource, open_source
from tests.inference.test_learning_runner import write_clip


@pytest.fixture
def roots(tmp_path, settings):
    """An allowed model folder with a saved model in it, and a folder outside with one too."""
    root = tmp_path / "models"
    outside = tmp_path / "private"
    for folder in (root / "good", outside / "secret"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    settings.MODEL_ROOTS = [str(root)]
    return root, outside


def same_message(a: str, b: str, path_a: str, path_b: str) -> bool:
    return a.replace(path_a, "<path>") == b.replace(path_b, "<path>")


# -- the check itself ----------------------------------------------------------------------------------

def test_outside_the_roots_the_message_is_the_same_whether_the_path_exists(roots):
    root, outside = roots
    exists, missing = str(outside / "secret"), str(outside / "nothing")
    with pytest.raises(ModelPathNotAllowed) as there:
        check_model_root(exists, [root])
    with pytest.raises(ModelPathNotAllowed) as not_there:
        check_model_root(missing, [root])
    assert same_message(str(there.value), str(not_there.value), exists, missing)
    for text in (str(there.value), str(not_there.value)):
        assert "not in an allowed model folder" in text and "MODEL_ROOTS" in text
        assert "exist" not in text and "not a saved model" not in text and "config.json" not in text
    # check_model_dir with roots (what a loader may use) answers the same before looking at the disk
    with pytest.raises(ModelPathNotAllowed) as again:
        check_model_dir(exists, "vlm", roots=[root])
    assert "exist" not in str(again.value)


def test_relative_symlinked_and_dotdot_paths(roots, tmp_path):
    root, outside = roots
    for relative in ("models/good", "good", "~/models/good", "./good"):
        with pytest.raises(ModelPathNotAllowed, match="is not absolute"):
            check_model_root(relative, [root])
    with pytest.raises(ModelPathNotAllowed, match="not in an allowed model folder"):
        check_model_root(f"{root}/../private/secret", [root])  # no escaping with ..
    (root / "link").symlink_to(outside / "secret")
    with pytest.raises(ModelPathNotAllowed, match="not in an allowed model folder"):
        check_model_root(str(root / "link"), [root])  # a link inside that leads outside
    assert check_model_root(f"{root}/good/../good", [root]) == root / "good"
    (root / "alias").symlink_to(root / "good")
    assert check_model_root(str(root / "alias"), [root]) == root / "good"  # resolved
    with pytest.raises(ModelPathNotAllowed):
        check_model_root(str(root) + "-evil/x", [root])  # a sibling whose name starts the same
    with pytest.raises(ModelPathNotAllowed, match="no folder allowed"):
        check_model_root(str(root / "good"), [])


def test_inside_the_roots_a_folder_without_a_model_is_not_a_saved_model(roots):
    root, _ = roots
    (root / "empty").mkdir()
    for path in (root / "missing", root / "empty"):
        with pytest.raises(FileNotFoundError, match="is not a saved model"):
            check_model_dir(str(path), "vlm", roots=[root])
    assert check_model_dir(str(root / "good"), "vlm", roots=[root]) == root / "good"


# -- at save: the API and the admin --------------------------------------------------------------------

@pytest.mark.django_db
def test_the_api_refuses_a_vlm_folder_outside_the_roots_alike_whether_it_exists(api_as, staff, roots):
    from cameras.models import Camera

    root, outside = roots
    answers = {}
    for path in (str(outside / "secret"), str(outside / "nothing")):
        response = api_as(staff).post("/api/v1/cameras/", {
            "name": "vlm", "source_url": "demo://", "vlm_backend": "transformers", "vlm_model_path": path},
            format="json")
        assert response.status_code == 400, response.json()
        assert list(response.json()) == ["vlm_model_path"]
        answers[path] = " ".join(response.json()["vlm_model_path"])
    (a, text_a), (b, text_b) = answers.items()
    assert same_message(text_a, text_b, a, b) and "exist" not in text_a
    relative = api_as(staff).post("/api/v1/cameras/", {
        "name": "vlm", "source_url": "demo://", "vlm_backend": "transformers", "vlm_model_path": "good"},
        format="json")
    assert relative.status_code == 400 and "is not absolute" in str(relative.json()["vlm_model_path"])
    assert not Camera.objects.exists()
    # Inside the roots it is accepted even before the folder is there (it is on the workers' disks).
    ok = api_as(staff).post("/api/v1/cameras/", {
        "name": "vlm", "source_url": "demo://", "vlm_backend": "transformers",
        "vlm_model_path": str(root / "coming-soon")}, format="json")
    assert ok.status_code == 201, ok.json()


@pytest.mark.django_db
@pytest.mark.parametrize("backend,field,value", [
    (("agent_policy", "llm"), "agent_params", {"model_path": "{outside}"}),
    (("agent_policy", "llm"), "agent_params", {"model_path": "relative/llm"}),
    (("detector", "semantic"), "detector_params", {"model_path": "{outside}"}),
    (("detector", "fused"), "detector_params", {"semantic": {"model_path": "{outside}"}}),
    (("detector", "objects"), "detector_params", {"model_dir": "{outside}"}),
])
def test_the_api_refuses_model_paths_in_the_parameters_naming_the_field(api_as, staff, roots, backend, field,
                                                                        value):
    _, outside = roots
    value = json.loads(json.dumps(value).replace("{outside}", str(outside / "secret")))
    payload = {"name": "p", "source_url": "demo://", backend[0]: backend[1], field: value}
    response = api_as(staff).post("/api/v1/cameras/", payload, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field]
    text = str(response.json()[field])
    assert "MODEL_ROOTS" in text or "is not absolute" in text
    assert "exist" not in text


@pytest.mark.django_db
def test_the_admin_refuses_a_vlm_folder_outside_the_roots_on_the_field(client, staff, roots):
    from django.forms.models import model_to_dict

    from cameras.models import Camera

    _, outside = roots
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    form = {}
    for key, value in model_to_dict(Camera(name="x", source_url="demo://")).items():
        if key in ("id",) or value is None or value is False:
            continue
        form[key] = "on" if value is True else json.dumps(value) if isinstance(value, (dict, list)) else value
    form.update(name="admin vlm", source_url="demo://", vlm_backend="transformers",
                vlm_model_path=str(outside / "secret"))
    page = client.post("/admin/cameras/camera/add/", form)
    assert page.status_code == 200  # the form again, with the error on the field
    errors = page.context["adminform"].form.errors
    assert "vlm_model_path" in errors and "MODEL_ROOTS" in str(errors["vlm_model_path"])
    assert not Camera.objects.filter(name="admin vlm").exists()


# -- at load: the worker's pool ------------------------------------------------------------------------

def test_the_pool_checks_the_roots_before_it_loads(roots):
    root, outside = roots
    loads = []
    pool = ResourcePool({"vlm": lambda name, config: loads.append(config) or config}, model_roots=[root])
    with pytest.raises(ModelPathNotAllowed, match="not in an allowed model folder"):
        pool.get("vlm", "transformers", {"model_path": str(outside / "secret")})
    with pytest.raises(ModelPathNotAllowed, match="is not absolute"):
        pool.get("vlm", "transformers", {"model_path": "models/good"})
    with pytest.raises(ModelPathNotAllowed):
        pool.shared("objects", {"model_dir": str(outside / "secret")}, lambda config: config)
    assert loads == [] and pool.loaded() == {}
    # a folder saved inside the roots whose link was swapped to lead outside afterwards
    (root / "current").symlink_to(root / "good")
    assert pool.get("vlm", "transformers", {"model_path": str(root / "current")})["model_path"] == str(root / "good")
    os.unlink(root / "current")
    (root / "current").symlink_to(outside / "secret")
    with pytest.raises(ModelPathNotAllowed):
        pool.get("vlm", "transformers", {"model_path": str(root / "current")})
    assert loads == [{"model_path": str(root / "good")}]  # the loader got the resolved, checked folder
    pool.close()


@pytest.mark.django_db
def test_the_workers_pool_loads_nothing_outside_model_roots(roots, monkeypatch):
    from inference.agent import LLMPolicy
    from inference.vlm import TransformersVLM
    from runtime.process import create_pool

    def refuse(*args, **kwargs):
        raise AssertionError("a model outside MODEL_ROOTS was loaded")

    monkeypatch.setattr(TransformersVLM, "__init__", refuse)
    monkeypatch.setattr(LLMPolicy, "__init__", refuse)
    _, outside = roots
    pool = create_pool()
    try:
        with pytest.raises(ValueError, match="MODEL_ROOTS"):
            pool.vlm("transformers", {"model_path": str(outside / "secret"), "device": "cpu"})
        with pytest.raises(ValueError, match="MODEL_ROOTS"):
            pool.agent("llm", {"model_path": str(outside / "secret"), "max_new_tokens": 8})
        with pytest.raises(ValueError, match="MODEL_ROOTS"):
            from cameras.backends import make_detector

            make_detector({"detector": "semantic", "detector_params": {"model_path": str(outside / "secret")},
                           "threshold": 0.5}, pool)
    finally:
        pool.close()


def test_default_model_roots_are_the_data_and_project_model_folders():
    from django.conf import settings

    roots = [os.path.realpath(r) for r in settings.MODEL_ROOTS]
    assert os.path.realpath(settings.DATA_DIR / "models") in roots
    assert os.path.realpath(settings.BASE_DIR / "var" / "models") in roots
    check_model_root(str(settings.OBJECT_MODEL_DIR), settings.MODEL_ROOTS)  # the object model loads


# -- file sources --------------------------------------------------------------------------------------

@pytest.fixture
def videos(tmp_path):
    inside, outside = tmp_path / "videos", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    clip = write_clip(inside / "clip.mp4", seconds=1.0)
    secret = write_clip(outside / "secret.mp4", seconds=1.0)
    return inside, outside, clip, secret


def test_a_file_source_outside_the_roots_gets_the_same_answer_whether_it_exists(videos):
    inside, outside, clip, secret = videos
    missing = str(outside / "missing.mp4")
    answers = []
    for path in (str(secret), missing, f"file://{secret}", f"file://{missing}"):
        with pytest.raises(ValueError) as info:
            validate_source_url(path, file_roots=[str(inside)])
        text = str(info.value)
        assert "file sources must lie in" in text and "not found" not in text and "regular file" not in text
        answers.append(text.replace(str(secret), "<path>").replace(missing, "<path>"))
    assert len(set(answers)) == 1
    assert validate_source_url(str(clip), file_roots=[str(inside)]) == str(clip)


def test_relative_and_linked_file_sources_are_refused_at_validation(videos, monkeypatch):
    inside, outside, clip, secret = videos
    monkeypatch.chdir(inside)
    for relative in ("clip.mp4", "./clip.mp4", "~/clip.mp4"):
        with pytest.raises(ValueError, match="must be absolute paths"):
            validate_source_url(relative, file_roots=[str(inside)])
    (inside / "link.mp4").symlink_to(secret)
    with pytest.raises(ValueError, match="file sources must lie in"):
        validate_source_url(str(inside / "link.mp4"), file_roots=[str(inside)])


def test_opening_a_file_source_checks_the_roots_again(videos):
    """The camera was saved with a link inside the roots; the link now leads outside."""
    inside, outside, clip, secret = videos
    link = inside / "camera.mp4"
    link.symlink_to(clip)
    source = open_source(str(link), loop=True, file_roots=[str(inside)])
    source.open()
    assert source.read() is not None
    source.close()
    os.unlink(link)
    link.symlink_to(secret)  # swapped after the camera was saved
    with pytest.raises(SourceError, match="file sources must lie in"):
        source.open()
    with pytest.raises(SourceError, match="file sources must lie in") as gone:
        OpenCVSource(str(outside / "missing.mp4"), file_roots=[str(inside)]).open()
    assert "not found" not in str(gone.value)


@pytest.mark.django_db(transaction=True)
def test_the_worker_opens_camera_files_with_the_file_roots(settings, tmp_path, videos):
    from runtime.process import create_logger, create_manager, create_pool
    from tests.factories import CameraFactory

    inside, outside, clip, secret = videos
    settings.CAMERA_FILE_ROOTS = [str(inside)]
    settings.EVENT_LOG_DIR = tmp_path / "eventlog"
    camera = CameraFactory(source_url=str(clip))
    logger = create_logger("roots-worker").start()
    pool = create_pool()
    manager = create_manager("roots-worker", logger, pool)
    try:
        system = manager.build(camera.runtime_config(), manager)
        assert system.source.file_roots == [str(inside)]
        settings.CAMERA_FILE_ROOTS = [str(outside)]  # the camera's file is no longer in an allowed folder
        system = manager.build(camera.runtime_config(), manager)
        with pytest.raises(SourceError, match="file sources must lie in"):
            system.source.open()
    finally:
        manager.close()
        pool.close()
        logger.close()


@pytest.mark.django_db
def test_a_learning_job_reads_the_cameras_file_only_inside_the_roots(settings, videos):
    from cameras.learning import learning_start
    from cameras.models import LearningJob
    from runtime import tasks
    from tests.factories import CameraFactory, UserFactory

    inside, outside, clip, secret = videos
    settings.CAMERA_FILE_ROOTS = [str(inside)]
    camera = CameraFactory(source_url=str(inside / "camera.mp4"))
    (inside / "camera.mp4").symlink_to(secret)  # saved inside; leads outside
    job = learning_start(camera=camera, by=UserFactory(), minutes=0.5)
    assert tasks.detector_learn(job.pk) == "failed"
    job = LearningJob.objects.get(pk=job.pk)
    assert "file sources must lie in" in job.message and job.version is None
