"""Issue 18, "evidence that can be scanned", on the operator pages: notes, reopen and reclassify on the event
page, bulk resolve and false alarm on the events list, thumbnails and labels in every events list, and the
phone layout. The first part renders pages with Django's client; the browser part (marked slow) drives Debian's
Chromium against a real daphne."""

import io
import re
import shutil
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry
from events.models import AnomalyEvent, EventNote
from events.services import event_note_add
from tests.factories import CameraFactory, EventFactory, UserFactory
from tests.pages.conftest import grant, many

MAX_QUERIES = 12  # tests/pages/test_pages.py: a handful, whatever the number of events


def closed(camera, status="resolved", by=None, **kwargs):
    now = timezone.now()
    return EventFactory(camera=camera, status=status, acknowledged_by=by, acknowledged_at=now,
                        resolved_by=by, resolved_at=now, **kwargs)


def with_objects(camera, **kwargs):
    """An event whose objects have thumbnails: the person (0.9) is the best crop, the bicycle (0.4) is not."""
    details = {"objects": [
        {"track": 2, "label": "bicycle", "score": 0.4, "thumbnail": "events/objects/e-2.jpg"},
        {"track": 7, "label": "person", "score": 0.9, "thumbnail": "events/objects/e-7.jpg"},
        {"track": 9, "label": "car", "score": 0.99},  # no crop
    ]}
    return EventFactory(camera=camera, details=details, labels=",bicycle,car,person,", **kwargs)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- the event page: notes, reopen, reclassify -----------------------------------------------------------
@pytest.mark.django_db
def test_operator_reopens_a_resolved_event_with_a_note(client, owner, camera):
    event = closed(camera, by=owner)
    event_note_add(event=event, by=owner, text="First look: a delivery.")
    client.force_login(owner)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert 'id="event-note-form"' in html and 'data-action="reopen"' in html
    assert 'data-action="reclassify-false-alarm"' in html and 'data-action="reclassify-resolved"' not in html
    assert "First look: a delivery." in html and 'data-role="author">owner<' in html
    assert "js/evidence.js" in html
    response = client.post(reverse("event-page-reopen", args=[event.pk]), {"text": "The van came back."})
    assert response.status_code == 302 and response["Location"] == reverse("event-page", args=[event.pk])
    event.refresh_from_db()
    assert event.status == "acknowledged" and event.resolved_at is None
    assert [n.text for n in EventNote.objects.filter(event=event)] == ["First look: a delivery.", "The van came back."]
    assert AuditEntry.objects.filter(action="event.reopen", target_id=str(event.pk), actor=owner).exists()
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "The van came back." in html and 'data-action="reopen"' not in html and 'data-action="resolve"' in html


@pytest.mark.django_db
def test_reclassify_on_the_page_and_a_refusal_is_a_message(client, owner, camera):
    event = closed(camera, "false_alarm", by=owner)
    client.force_login(owner)
    html = client.get(reverse("event-fragment", args=[event.pk, "notes"])).content.decode()
    assert 'data-action="reclassify-resolved"' in html and 'id="event-notes-list"' in html
    client.post(reverse("event-page-resolve", args=[event.pk]), {"false_alarm": "0", "text": ""})
    event.refresh_from_db()
    assert event.status == "resolved" and not EventNote.objects.exists()
    open_event = EventFactory(camera=camera)
    response = client.post(reverse("event-page-reopen", args=[open_event.pk]), {"text": "x"}, follow=True)
    assert response.status_code == 200 and "Only a resolved event or a false alarm can be reopened" in texts(response)[0]
    assert not EventNote.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text,problem", [("", "The note is empty."), ("x" * 2001, "at most 2000")])
def test_a_bad_note_on_the_page_is_a_message_naming_it(client, owner, camera, text, problem):
    event = EventFactory(camera=camera)
    client.force_login(owner)
    response = client.post(reverse("event-page-note", args=[event.pk]), {"text": text})
    assert response.status_code == 302 and problem in texts(response)[0]
    assert not EventNote.objects.exists()
    response = client.post(reverse("event-page-note", args=[event.pk]), {"text": "Checked the gate."})
    assert texts(response)[-1] == "Note added." and EventNote.objects.get().author == owner


@pytest.mark.django_db
def test_viewer_reads_notes_but_may_not_write_and_outsider_is_refused(client, viewer, outsider, owner, camera):
    event = closed(camera, by=owner)
    event_note_add(event=event, by=owner, text="Seen by the owner.")
    client.force_login(viewer)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "Seen by the owner." in html
    assert 'id="event-note-form"' not in html and 'data-action="reopen"' not in html
    for name, data in (("event-page-note", {"text": "mine"}), ("event-page-reopen", {})):
        assert client.post(reverse(name, args=[event.pk]), data).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("event-fragment", args=[event.pk, "notes"])).status_code == 403
    for name, data in (("event-page-note", {"text": "mine"}), ("event-page-reopen", {})):
        assert client.post(reverse(name, args=[event.pk]), data).status_code == 403
    event.refresh_from_db()
    assert event.status == "resolved" and EventNote.objects.count() == 1


@pytest.mark.django_db
def test_event_page_with_notes_keeps_its_query_count(client, owner, camera, django_assert_max_num_queries):
    event = closed(camera, by=owner)
    for i in range(30):
        event_note_add(event=event, by=owner, text=f"note {i}")
    client.force_login(owner)
    for url in (reverse("event-page", args=[event.pk]), reverse("event-fragment", args=[event.pk, "notes"])):
        with django_assert_max_num_queries(MAX_QUERIES):
            html = client.get(url).content.decode()
        assert html.count("data-note=") == 30


# -- the events list: bulk resolve and false alarm ------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("false_alarm", [False, True])
def test_bulk_resolve_and_false_alarm_from_the_list(client, viewer, camera, false_alarm):
    gate = CameraFactory(name="Gate")
    grant(viewer, gate, "view_camera", "operate_camera")
    mine = [EventFactory(camera=gate), EventFactory(camera=gate, status="acknowledged")]
    done = closed(gate)
    view_only = EventFactory(camera=camera)
    client.force_login(viewer)
    html = client.get(reverse("event-list-page")).content.decode()
    assert 'data-action="bulk-resolve"' in html and 'data-action="bulk-false-alarm"' in html
    assert f'value="{mine[1].pk}"' in html  # acknowledged events can be closed in bulk too
    assert f'value="{done.pk}"' not in html and f'value="{view_only.pk}"' not in html
    data = {"event": [str(e.pk) for e in (*mine, done, view_only)], "next": reverse("event-list-page")}
    if false_alarm:
        data["false_alarm"] = "1"
    response = client.post(reverse("event-bulk-resolve"), data)
    assert response.status_code == 302 and response["Location"] == reverse("event-list-page")
    status = dict(AnomalyEvent.objects.values_list("id", "status"))
    target = "false_alarm" if false_alarm else "resolved"
    assert [status[e.pk] for e in mine] == [target, target]
    assert status[done.pk] == "resolved" and status[view_only.pk] == "new"
    said = texts(response)
    assert said[0] == ("2 events marked as false alarms." if false_alarm else "2 events resolved.")
    assert said[1].startswith("2 events were left as they were")


@pytest.mark.django_db
def test_viewer_gets_no_bulk_buttons_and_bulk_resolve_changes_nothing(client, viewer, camera):
    event = EventFactory(camera=camera)
    client.force_login(viewer)
    html = client.get(reverse("event-list-page")).content.decode()
    assert 'data-action="bulk-resolve"' not in html and 'data-action="bulk-false-alarm"' not in html
    client.post(reverse("event-bulk-resolve"), {"event": [str(event.pk)], "false_alarm": "1"})
    assert AnomalyEvent.objects.get(pk=event.pk).status == "new"


# -- thumbnails and labels in every events list -----------------------------------------------------------
@pytest.mark.django_db
def test_every_events_list_shows_the_best_crop_else_the_snapshot_and_the_labels(client, owner, camera):
    crop = with_objects(camera, started_at=timezone.now() - timedelta(minutes=1))
    snap = EventFactory(camera=camera, snapshot="events/snapshots/s.jpg", started_at=timezone.now() - timedelta(minutes=2))
    bare = EventFactory(camera=camera, started_at=timezone.now() - timedelta(minutes=3))
    client.force_login(owner)
    pages = [reverse("event-list-page"), reverse("dashboard"), reverse("camera-page", args=[camera.pk]),
             reverse("event-fragment", args=[crop.pk, "row"])]
    for url in pages:
        html = client.get(url).content.decode()
        row = re.search(rf'<tr data-event="{crop.pk}".*?</tr>', html, re.S).group(0)
        img = re.search(r"<img [^>]*>", row).group(0)
        assert f'src="{reverse("event-object", args=[crop.pk, 7])}"' in img, url
        assert 'loading="lazy"' in img and 'width="64"' in img and 'height="48"' in img and 'alt="person"' in img
        assert all(f'data-label="{label}"' in row for label in ("bicycle", "car", "person"))
        if url == pages[-1]:
            continue
        row = re.search(rf'<tr data-event="{snap.pk}".*?</tr>', html, re.S).group(0)
        assert f'src="{reverse("event-snapshot", args=[snap.pk])}"' in row and 'loading="lazy"' in row, url
        row = re.search(rf'<tr data-event="{bare.pk}".*?</tr>', html, re.S).group(0)
        assert "<img" not in row, url


@pytest.mark.django_db
def test_lists_with_thumbnails_keep_their_query_counts(client, owner, django_assert_max_num_queries):
    cameras = many(4, 25, owner, "view_camera", "operate_camera")
    for camera in cameras:
        for _ in range(5):
            with_objects(camera, snapshot="events/snapshots/x.jpg", started_at=timezone.now())  # the newest
    client.force_login(owner)
    for url in (reverse("event-list-page"), reverse("dashboard")):
        with django_assert_max_num_queries(MAX_QUERIES):
            html = client.get(url).content.decode()
        assert html.count('class="event-thumb"') >= 20, url


# -- in Debian's Chromium ----------------------------------------------------------------------------------------
def _jpeg(color) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (96, 72), color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def media_files():
    """JPEG files under MEDIA_ROOT (shared with the daphne the test starts), removed after the test."""
    root = django_settings.MEDIA_ROOT / "events" / f"evidence-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)

    def write(name, color=(200, 40, 40)) -> str:
        (root / name).write_bytes(_jpeg(color))
        return (root / name).relative_to(django_settings.MEDIA_ROOT).as_posix()

    yield write
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def base(processes, tmp_path, settings):
    """A real daphne on this test's database; the users made after this sign in with the quick hasher."""
    from tests.system.processes import process_env

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    env = process_env(tmp_path)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return f"http://127.0.0.1:{processes.daphne(env)}"


def _events(camera, media_files, count=3):
    """Events of ``camera``: one with an object crop (under events/objects/, as the worker writes them), the
    others with a snapshot; the camera's name long enough to wrap on a phone."""
    crop_dir = django_settings.MEDIA_ROOT / "events" / "objects"
    crop_dir.mkdir(parents=True, exist_ok=True)
    name = f"events/objects/evidence-{uuid.uuid4().hex[:8]}-4.jpg"
    (django_settings.MEDIA_ROOT / name).write_bytes(_jpeg((40, 160, 40)))
    now = timezone.now()
    events = [EventFactory(camera=camera, started_at=now - timedelta(minutes=1), labels=",person,",
                           details={"objects": [{"track": 4, "label": "person", "score": 0.8, "thumbnail": name}]})]
    for i in range(1, count):
        events.append(EventFactory(camera=camera, started_at=now - timedelta(minutes=1 + i),
                                   snapshot=media_files(f"snap-{i}.jpg"), severity="critical" if i % 2 else "low",
                                   description="A very long description of what the camera saw " * 4))
    return events, name


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_operator_reopens_a_resolved_event_with_a_note_in_the_browser(base, browser):
    from tests.pages.test_browser import JS_ERRORS, sign_in

    JS_ERRORS.clear()
    alice = UserFactory(username="alice", first_name="Alice")
    camera = CameraFactory(name="North gate")
    for perm in ("view_camera", "operate_camera"):
        assign_perm(perm, alice, camera)
    event = closed(camera, by=alice)

    page = sign_in(browser, base, "alice")
    other = page.context.new_page()  # the same event open elsewhere, with a note being typed
    other.goto(f"{base}/events/{event.pk}/")
    other.wait_for_function("document.getElementById('event').dataset.live === '1'")
    other.fill("#note-text", "draft")
    page.goto(f"{base}/events/{event.pk}/")
    assert page.inner_text('#event-actions [data-role="status"]') == "Resolved"
    assert page.locator("#event-notes-list [data-empty]").count() == 1
    page.fill("#note-text", "The same van came back at 02:10: reopening.")
    page.click('[data-action="reopen"]')
    page.wait_for_selector('#event-actions[data-status="acknowledged"]')
    assert page.inner_text('#event-actions [data-role="status"]') == "Acknowledged"
    note = page.locator("#event-notes-list li[data-note]")
    assert note.count() == 1
    assert note.locator('[data-role="author"]').inner_text() == "alice"
    assert note.locator('[data-role="text"]').inner_text() == "The same van came back at 02:10: reopening."
    assert page.locator('[data-action="reopen"]').count() == 0 and page.locator('[data-action="resolve"]').count() == 1
    assert page.input_value("#note-text") == ""
    # the other page follows live (event.js, then evidence.js), and keeps what is being typed
    other.wait_for_selector("#event-notes-list li[data-note]")
    other.wait_for_selector('#event-follow-up[data-status="acknowledged"]', state="attached")
    assert other.locator('[data-action="reopen"]').count() == 0
    assert other.input_value("#note-text") == "draft"
    other.close()

    # a note alone, then resolving again with a note: both kept, in order
    page.fill("#note-text", "Guard on the way.")
    page.click('[data-action="add-note"]')
    page.wait_for_selector("#event-notes-list li[data-note] >> nth=1")
    page.fill("#note-text", "Nothing found; resolved.")
    page.click('[data-action="resolve"]')
    page.wait_for_selector('#event-actions[data-status="resolved"]')
    assert page.locator("#event-notes-list li[data-note]").count() == 3

    event.refresh_from_db()
    assert event.status == "resolved" and event.resolved_by == alice
    actions = list(AuditEntry.objects.filter(target_id=str(event.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["event.reopen", "event.note", "event.note", "event.resolve", "event.note"]
    assert [n.author_name for n in EventNote.objects.filter(event=event)] == ["alice"] * 3
    assert not JS_ERRORS, JS_ERRORS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bulk_resolve_and_false_alarm_and_thumbnails_in_the_browser(base, browser, media_files):
    from tests.pages.test_browser import JS_ERRORS, sign_in

    JS_ERRORS.clear()
    alice = UserFactory(username="alice")
    camera, watched = CameraFactory(name="North gate"), CameraFactory(name="Yard")
    for perm in ("view_camera", "operate_camera"):
        assign_perm(perm, alice, camera)
    assign_perm("view_camera", alice, watched)  # view only: its events are left alone
    events, _ = _events(camera, media_files, count=5)
    theirs = EventFactory(camera=watched, started_at=timezone.now() - timedelta(minutes=30))

    page = sign_in(browser, base, "alice")
    for path in ("/events/", "/", f"/cameras/{camera.pk}/"):  # every events list shows the pictures
        page.goto(f"{base}{path}")
        row = page.locator(f'tr[data-event="{events[0].pk}"]')
        img = row.locator("img.event-thumb")
        img.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert img.get_attribute("src") == f"/events/{events[0].pk}/objects/4.jpg"
        assert img.get_attribute("loading") == "lazy"
        box = img.bounding_box()
        assert (round(box["width"]), round(box["height"])) == (64, 48)
        assert row.locator('.badge.label[data-label="person"]').count() == 1
        if path.startswith("/cameras/"):
            # the side column's list is compact: the picture shows whole, without scrolling the table sideways;
            # the objects and the sentence (which made each row a few lines tall there) are on the event page
            wrap = row.locator("xpath=ancestor::div[contains(@class, 'table-wrap')]").bounding_box()
            assert box["x"] + box["width"] <= wrap["x"] + wrap["width"]
            assert not row.locator("td.description").is_visible() and not row.locator("td.labels").is_visible()
            assert row.bounding_box()["height"] < 80
        snap = page.locator(f'tr[data-event="{events[1].pk}"] img.event-thumb')
        snap.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=snap.element_handle())

    page.goto(f"{base}/events/")
    assert page.locator(f'input[name="event"][value="{theirs.pk}"]').count() == 0
    for event in events[:2]:
        page.check(f'input[name="event"][value="{event.pk}"]')
    page.click('[data-action="bulk-resolve"]')
    page.wait_for_selector(".messages")
    assert "2 events resolved." in page.inner_text(".messages")
    page.check("#select-all")
    page.click('[data-action="bulk-false-alarm"]')
    page.wait_for_selector(".messages")
    assert "3 events marked as false alarms." in page.inner_text(".messages")
    status = dict(AnomalyEvent.objects.values_list("id", "status"))
    assert [status[e.pk] for e in events] == ["resolved"] * 2 + ["false_alarm"] * 3
    assert status[theirs.pk] == "new"
    assert page.locator(f'tr[data-event="{events[4].pk}"] .badge.status-false_alarm').count() == 1
    assert AuditEntry.objects.filter(action="event.false_alarm", details__bulk=True).count() == 3
    assert not JS_ERRORS, JS_ERRORS


#: What sticks out of a 390 px wide page (for the failure message).
WIDER = """Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > 390)
  .slice(0, 8).map((e) => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_events_lists_fit_a_phone(base, browser, media_files):
    """390 px wide: each row's time, camera, severity, status and picture lie wholly inside the screen."""
    from tests.pages.test_browser import JS_ERRORS, sign_in

    JS_ERRORS.clear()
    alice = UserFactory(username="alice")
    camera = CameraFactory(name="Loading dock, north-east gate (outside camera 12)")
    for perm in ("view_camera", "operate_camera"):
        assign_perm(perm, alice, camera)
    events, _ = _events(camera, media_files, count=4)

    page = sign_in(browser, base, "alice", viewport={"width": 390, "height": 844})
    for path, cells in (("/events/", ("when", "camera", "severity", "status", "thumb")),
                        ("/", ("when", "camera", "severity", "status", "thumb")),
                        (f"/cameras/{camera.pk}/", ("when", "severity", "status", "thumb"))):
        page.goto(f"{base}{path}")
        page.wait_for_selector("tr.event-row")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, (path, page.evaluate(WIDER))
        rows = page.locator("tr.event-row")
        assert rows.count() == len(events), path
        for i in range(rows.count()):
            row = rows.nth(i)
            row.scroll_into_view_if_needed()
            for cell in cells:
                target = row.locator(f"td.{cell} > *").first  # the content: the link, the name, the badge
                if cell == "camera":
                    target = row.locator("td.camera")
                box = target.bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0, (path, i, cell)
                assert 0 <= box["x"] and box["x"] + box["width"] <= 390, (path, i, cell, box)
    assert not JS_ERRORS, JS_ERRORS
