"""Pages speak English and Korean (browser or user setting) and show times in the user's time zone."""

import re
from datetime import datetime, timezone

import pytest
from django.urls import reverse

from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_browser_language_picks_korean(client, owner, camera):
    client.force_login(owner)
    html = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9").content.decode()
    assert 'lang="ko"' in html and "대시보드" in html and "최근 이벤트" in html
    html = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert 'lang="en"' in html and "Latest events" in html


def test_user_setting_wins_over_the_browser(client, owner, camera):
    owner.language = "ko"
    owner.save()
    EventFactory(camera=camera, severity="critical", status="acknowledged")
    client.force_login(owner)
    html = client.get(reverse("event-list-page"), HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert "이벤트" in html and "심각" in html and "확인됨" in html  # labels of choices too
    owner.language = "en"
    owner.save()
    html = client.get(reverse("event-list-page"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "Critical" in html and "심각" not in html


def test_times_are_shown_in_the_users_time_zone(client, owner, camera):
    event = EventFactory(camera=camera, started_at=datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc),
                         ended_at=datetime(2026, 1, 1, 0, 0, 9, tzinfo=timezone.utc))
    client.force_login(owner)
    assert "2026-01-01 00:00:05" in client.get(reverse("event-page", args=[event.pk])).content.decode()
    owner.time_zone = "Asia/Seoul"
    owner.save()
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert "2026-01-01 09:00:05" in html and 'data-time-zone="Asia/Seoul"' in html  # charts use it too


def test_preferences_page_saves_language_and_time_zone(client, owner):
    client.force_login(owner)
    assert client.get(reverse("preferences")).status_code == 200
    response = client.post(reverse("preferences"), {"language": "ko", "time_zone": "Asia/Seoul"}, follow=True)
    owner.refresh_from_db()
    assert (owner.language, owner.time_zone) == ("ko", "Asia/Seoul")
    assert "설정을 저장했습니다." in response.content.decode()
    response = client.post(reverse("preferences"), {"language": "xx", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    owner.refresh_from_db()
    assert (owner.language, owner.time_zone) == ("ko", "Asia/Seoul")
    client.post(reverse("preferences"), {"language": "", "time_zone": "UTC"})
    owner.refresh_from_db()
    assert owner.language == ""  # back to the browser's language


def test_the_camera_pages_learning_and_figures_panels_speak_korean(client, owner, camera):
    client.force_login(owner)
    html = client.get(reverse("camera-page", args=[camera.pk]), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "지금 정상 상태 학습" in html and "실시간 지표" in html and "프레임 지연" in html
    assert "Learn what is normal now" not in html


# -- the event page says nothing in English to a Korean reader ------------------------------------------------
_SHOWN = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)


def _visible_words(html: str, keep: tuple) -> list[str]:
    """Words of 3+ Latin letters in the page's visible text, apart from ``keep`` (names the operators gave)."""
    text = _SHOWN.sub(" ", html)
    text = re.sub(r"&[a-z#0-9]+;", " ", text)
    for kept in keep:
        text = text.replace(kept, " ")
    return sorted(set(re.findall(r"[A-Za-z]{3,}", text)))


#: Product and protocol names kept as they are in Korean text.
NAMES = ("VLM", "Ollama", "llama.cpp", "vLLM", "API", "JSON", "WebM", "MP4")


@pytest.mark.parametrize("kind", ["scene", "camera_health"])
def test_a_korean_user_sees_no_english_on_the_event_page(client, owner, camera, kind):
    owner.language, owner.time_zone = "ko", "Asia/Seoul"
    owner.save(update_fields=["language", "time_zone"])
    client.force_login(owner)
    if kind == "scene":
        event = EventFactory(
            camera=camera, severity="high", description="", labels=",person,",
            decision={"severity": "high", "actions": ["record", "notify", "alert_now"], "policy": "rules",
                      "reasons": ["peak score 0.91 is 1.8x the threshold 0.50 -> high",
                                  "person in forbidden zone 'fence' for 4 s (person) -> at least high: high",
                                  "person lying down for 12 s (box 2.1x wider than tall) -> at least high: high"],
                      "inputs": {"peak_score": 0.91, "mean_score": 0.6, "threshold": 0.5, "duration_s": 4.0,
                                 "labels": ["person"], "zones": ["fence (forbidden)"]}},
            details={"objects": [{"track": 1, "label": "person", "score": 0.9}],
                     "object_terms": [{"term": "person_down", "value": 0.9, "label": "person", "track": 1,
                                       "explain": "person lying down for 12 s (box 2.1x wider than tall)"}]})
        keep = (camera.name, owner.username, "fence", "Asia/Seoul", *NAMES)
    else:
        sentence = "Camera view covered: 83% of the image lost its texture"
        event = EventFactory(camera=camera, severity="high", description=sentence,
                             decision={"severity": "high", "actions": ["record", "notify", "alert_now"],
                                       "policy": "system", "reasons": [sentence]},
                             details={"kind": "camera_health", "condition": "covered", "covered": 0.83})
        keep = (camera.name, owner.username, "Asia/Seoul", *NAMES)
    html = client.get(reverse("event-page", args=[event.pk])).content.decode()
    assert 'lang="ko"' in html
    assert _visible_words(html, keep) == []
