"""Alert texts speak the recipient's language (English or Korean) and show times in the recipient's time zone."""

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone, translation
from guardian.shortcuts import assign_perm

from alerts.models import Delivery
from alerts.services import alert_channel_test
from tests.alerts.conftest import make_channel, make_rule
from tests.factories import EventFactory, UserFactory

pytestmark = pytest.mark.django_db

# 03:04:05 UTC is 12:04:05 in Seoul (KST, UTC+9) and 04:04:05 in Berlin in winter (CET, UTC+1).
AT = datetime(2026, 1, 5, 3, 4, 5, tzinfo=dt_timezone.utc)
ENGLISH_WORDS = ("similar", "event", "Digest", "Open:", "Earlier", "Test alert", " at ", " on ", "CRITICAL", "HIGH",
                 "MEDIUM", "medium", "suppressed", "Anomaly")


def user_with(camera, username, **prefs):
    user = UserFactory(username=username, **prefs)
    assign_perm("view_camera", user, camera)
    channel = make_channel(user, kind="email", name=f"{username} mail", email=f"{username}@example.com")
    make_rule(user, channels=[channel])
    return user, channel


@pytest.fixture
def korean(camera):
    return user_with(camera, "minji", language="ko", time_zone="Asia/Seoul")


@pytest.fixture
def english(camera):
    return user_with(camera, "alice", language="en", time_zone="UTC")


def mail_to(user):
    found = [m for m in mail.outbox if m.to == [user.email]]
    assert len(found) == 1, [m.to for m in mail.outbox]
    return found[0]


def assert_no_english(text):
    text = re.sub(r"https?://\S+", "", text)  # links stay links
    leftovers = [w for w in ENGLISH_WORDS if w in text]
    assert not leftovers, f"untranslated {leftovers} in {text!r}"


def test_the_korean_translations_are_compiled():
    with translation.override("ko"):
        assert translation.gettext("Earlier:") == "이전 알림:"
        assert translation.ngettext("Digest: %(count)d event (%(levels)s)", "Digest: %(count)d events (%(levels)s)",
                                    3) == "요약: 이벤트 %(count)d건 (%(levels)s)"


def test_an_immediate_alert_in_korean_with_seoul_time_and_in_english_with_utc(camera, korean, english, route,
                                                                             run_queued):
    event = EventFactory(camera=camera, severity="critical", started_at=AT, description="")
    route(event)
    run_queued()
    ko = mail_to(korean[0])
    assert ko.subject == f"[심각] {camera.name}: 이상 감지"
    assert f"2026-01-05 12:04:05 KST, {camera.name}에서 심각 이벤트가 발생했습니다." in ko.body
    assert "이상이 감지되었습니다." in ko.body and f"열기: {settings.SITE_URL}/events/{event.pk}/" in ko.body
    assert_no_english(ko.subject + ko.body)
    en = mail_to(english[0])
    assert en.subject == f"[CRITICAL] {camera.name}: Anomaly detected"
    assert f"CRITICAL event on {camera.name} at 2026-01-05 03:04:05 UTC." in en.body
    assert "Anomaly detected." in en.body and "Open: " in en.body
    # The stored copy and the webhook/in-app payload say which language they were written in.
    assert Delivery.objects.get(recipient=korean[0]).subject == ko.subject


def test_a_camera_health_alert_reads_in_korean_and_needs_no_follow_up(camera, korean, english, route, run_queued):
    """The worker writes a covered camera's sentence in English once; each recipient reads it in their language,
    and the description it carries from the start is not sent again as a follow-up."""
    event = EventFactory(camera=camera, severity="high", started_at=AT,
                         description="Camera view covered: 83% of the image lost its texture",
                         decision={"severity": "high", "actions": ["record", "notify", "alert_now"], "policy": "system",
                                   "reasons": ["Camera view covered: 83% of the image lost its texture"]},
                         details={"kind": "camera_health", "condition": "covered"})
    route(event)
    run_queued()
    ko = mail_to(korean[0])
    assert ko.subject == f"[높음] {camera.name}: 카메라 시야 가림: 영상의 83%에서 질감이 사라짐"
    assert_no_english(ko.subject + ko.body)
    assert "Camera view covered: 83% of the image lost its texture" in mail_to(english[0]).subject
    route(event)  # routed again (e.g. its next update): the description was told already
    run_queued()
    assert not Delivery.objects.filter(mode=Delivery.Mode.FOLLOW_UP).exists()


def test_an_english_user_in_another_time_zone_gets_local_times(camera, route, run_queued):
    berlin, _channel = user_with(camera, "hans", language="", time_zone="Europe/Berlin")  # "": the site's language
    route(EventFactory(camera=camera, severity="high", started_at=AT))
    run_queued()
    message = mail_to(berlin)
    assert message.subject.startswith("[HIGH] ")
    assert "at 2026-01-05 04:04:05 CET." in message.body


def test_a_digest_in_korean_and_in_english(camera, korean, english, route, digest, run_queued):
    events = [EventFactory(camera=camera, severity="medium", started_at=AT + timedelta(seconds=i),
                           description=f"사람이 뛰어감 {i}") for i in range(2)]
    events.append(EventFactory(camera=camera, severity="low", started_at=AT + timedelta(minutes=1),
                               description="Someone waits"))
    route(*events)
    digest()
    run_queued()
    ko = mail_to(korean[0])
    assert ko.subject == "요약: 이벤트 3건 (보통 2건, 낮음 1건)"
    assert ko.body.startswith("지난 요약 이후 이벤트 3건:")
    assert f"- [보통] {camera.name}, 2026-01-05 12:04:05 KST: 사람이 뛰어감 0" in ko.body
    assert f"- [낮음] {camera.name}, 2026-01-05 12:05:05 KST: Someone waits" in ko.body  # the VLM's own words stay
    en = mail_to(english[0])
    assert en.subject == "Digest: 3 events (2 medium, 1 low)"
    assert en.body.startswith("3 events since the last digest:")
    assert f"- [MEDIUM] {camera.name} at 2026-01-05 03:04:05 UTC: " in en.body


def test_suppression_notes_in_korean(camera, korean, route, run_queued):
    user, channel = korean
    route(EventFactory(camera=camera, severity="high", started_at=AT))
    route(EventFactory(camera=camera, severity="high", started_at=AT), EventFactory(camera=camera, severity="high"))
    run_queued()
    body = mail_to(user).body
    window = max(1, round(settings.ALERT_SUPPRESS_SECONDS / 60))
    assert f"(+{window}분 안의 비슷한 알림 2건, 따로 보내지 않음)" in body
    # The window passes: the next message reports what it suppressed, in Korean, with Seoul times.
    original = Delivery.objects.get()
    route(EventFactory(camera=camera, severity="high"))  # suppressed, reported later
    Delivery.objects.filter(pk=original.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.ALERT_SUPPRESS_SECONDS + 1))
    mail.outbox.clear()
    route(EventFactory(camera=camera, severity="high", description="다시 넘어짐"))
    run_queued()
    body = mail_to(user).body
    assert "이전 알림:" in body
    assert f"- 비슷한 알림 1건 생략됨: {camera.name}의 높음 'anomaly', " in body and " KST까지." in body
    assert_no_english(mail_to(user).subject + body)


def test_a_digest_counts_similar_alerts_in_korean(camera, korean, route, digest, run_queued):
    route(EventFactory(camera=camera, severity="medium", started_at=AT, description="배회"))
    digest()
    route(EventFactory(camera=camera, severity="medium"))  # a repeat before the digest goes out: counted in it
    run_queued()
    message = mail_to(korean[0])
    assert message.subject == "요약: 이벤트 1건 (보통 1건)"
    assert f"- [보통] {camera.name}, 2026-01-05 12:04:05 KST: 배회 (+비슷한 알림 1건)" in message.body
    assert_no_english(message.subject + message.body)


def test_the_test_alert_speaks_the_channel_owners_language(korean, english):
    alert_channel_test(channel=korean[1], by=korean[0])
    alert_channel_test(channel=english[1], by=english[0])
    ko, en = mail_to(korean[0]), mail_to(english[0])
    assert ko.subject == "'minji mail' 테스트 알림" and "테스트 알림입니다" in ko.body
    assert_no_english(ko.subject + ko.body)
    assert en.subject == "Test alert for 'alice mail'" and "If you can read it" in en.body


def test_in_app_notification_title_and_webhook_text_in_the_recipients_language(camera, route, run_queued, hook):
    user, _mail = user_with(camera, "jisoo", language="ko", time_zone="Asia/Seoul")
    webhook = make_channel(user, kind="webhook", url=hook.url(), name="jisoo hook")
    make_rule(user, channels=[webhook], notify_in_app=True)
    route(EventFactory(camera=camera, severity="critical", started_at=AT, description="누군가 쓰러짐"))
    run_queued()
    in_app = Delivery.objects.get(medium="in_app", recipient=user)
    assert in_app.status == "sent" and in_app.subject == f"[심각] {camera.name}: 누군가 쓰러짐"
    body = hook.json()
    assert body["language"] == "ko" and body["subject"] == f"[심각] {camera.name}: 누군가 쓰러짐"
    assert "2026-01-05 12:04:05 KST" in body["text"]
    assert body["event"]["severity"] == "critical"  # machine-readable fields stay as they are


def test_a_group_channel_uses_the_site_language_and_time_zone(camera, route, run_queued):
    group = Group.objects.create(name="night shift")
    assign_perm("view_camera", group, camera)
    member = UserFactory(username="member", language="ko", time_zone="Asia/Seoul")
    member.groups.add(group)
    channel = make_channel(group=group, kind="email", email="shift@example.com")
    make_rule(group=group, channels=[channel])
    route(EventFactory(camera=camera, severity="critical", started_at=AT))
    run_queued()
    message = [m for m in mail.outbox if m.to == ["shift@example.com"]][0]
    assert message.subject.startswith("[CRITICAL]") and "03:04:05 UTC" in message.body


def test_an_escalation_reads_in_korean():
    from types import SimpleNamespace

    from django.utils import translation

    from alerts.messages import escalation_line

    with translation.override("ko"):
        assert escalation_line(SimpleNamespace(order=2, unacknowledged_minutes=25)) == \
            "에스컬레이션 2단계: 25분 동안 확인되지 않음."
