"""The worker's English (decision reasons, system events' sentences) in the reader's language (events/reasons.py).

Every text the rule policy, the action bound, the LLM fallback, camera health and the offline event write
is generated here by the real code and must be a known template: a change of wording in inference/ that
this module does not follow fails here, instead of showing English to a Korean operator.
"""

import re

import pytest
from django.utils import translation

from events.reasons import action_name, input_name, policy_name, reason_known, reason_text, term_text
from inference.agent import RulePolicy, bound_decision
from inference.base import Decision, EpisodeSummary, VLMAnswer
from inference.camera_health import CONDITIONS, CameraHealth, HealthChange


def episode(peak=0.9, duration=5.0, threshold=0.5, answer=None, **details):
    return EpisodeSummary(peak_score=peak, mean_score=peak / 2, duration=duration, threshold=threshold,
                          answer=answer, details=details)


def rule_reasons() -> list[str]:
    policy = RulePolicy()
    episodes = [
        episode(), episode(peak=0.55), episode(threshold=0.0), episode(duration=45.0), episode(peak=2.0, duration=45.0),
        episode(answer=VLMAnswer("A man walks.", threat_level="critical")),
        episode(peak=0.55, answer=VLMAnswer("A man walks.", threat_level="critical")),
        episode(peak=2.0, answer=VLMAnswer("A man walks.", threat_level="low")),
        episode(peak=0.55, answer=VLMAnswer("A man walks.", threat_level="medium")),
        episode(answer=VLMAnswer("Smoke rises from a bin.")),
        episode(peak=0.55, answer=VLMAnswer("A person fell on the path.")),
        episode(peak=2.0, answer=VLMAnswer("A person fell on the path.")),
        episode(answer=VLMAnswer("Nothing unusual happens.")),
        episode(peak=0.3, answer=VLMAnswer("Nothing unusual happens.")),
        episode(peak=0.55, zones=[{"name": "fence", "kind": "forbidden", "seconds": 4.0, "labels": ["person"]}]),
        episode(peak=2.0, zones=[{"name": "fence", "kind": "forbidden"}]),
        episode(peak=0.55, zones=[{"name": "door", "kind": "loiter", "seconds": 45.0}, {"name": "gate", "kind": "line",
                                                                                       "direction": "left"}]),
        episode(peak=0.55, zones=[{"name": "lawn", "kind": "forbidden", "labels": ["dog"]}]),
        episode(peak=0.55, answer=VLMAnswer("A man.", objects=["man"]), zones=[{"name": "fence", "kind": "forbidden"}]),
        episode(peak=0.55, object_terms=[{"term": "person_down", "value": 0.9, "label": "person",
                                          "explain": "person lying down for 12 s (box 2.1x wider than tall)"}]),
        episode(peak=2.0, object_terms=[{"term": "left_behind", "value": 0.9, "label": "suitcase",
                                         "explain": "suitcase left unattended for 2 min 5 s"}]),
    ]
    out = []
    for ep in episodes:
        out += policy.decide(ep).reasons
    out += bound_decision(Decision(severity="high", actions=["record", "notify", "alert_now"], reasons=[], policy="rules"),
                          {"high": ["record", "notify"]}).reasons
    return out


def health_sentences() -> list[str]:
    health = CameraHealth()
    measurements = {"covered": 0.83, "sharpness": 0.21, "shift": 8.1, "rotation": 6.0, "inliers": 4,
                    "usual_inliers": 80.0, "seconds": 12.0, "ratio": 0.05, "bright_p90": 7.0, "saturated": 0.7}
    out = []
    for condition in CONDITIONS:
        for started in (True, False):
            out.append(health._sentence(condition, measurements, started, 135.0 if started else 12.0))
    out.append(health._sentence("moved", {"inliers": 3, "usual_inliers": 70.0}, True, 0))
    return out


SYSTEM = ["camera went offline: connection refused", "camera is offline: no frames",
          "Camera Gate went offline: connection refused", "Camera Gate is offline: no frames (back online after 40 s)",
          "Camera Gate went offline: timeout (camera stopped after 12 s)",
          "model chose high without giving reasons",
          "LLM policy: the server answered 500; fell back to the rule policy"]


def test_every_text_the_worker_writes_is_a_known_template():
    texts = rule_reasons() + health_sentences() + SYSTEM
    assert len(texts) > 40
    unknown = [t for t in texts if not reason_known(t)]
    assert unknown == []
    assert not reason_known("The guard says hello")  # a model's own words are shown as written
    assert reason_text("The guard says hello") == "The guard says hello"


ENGLISH = re.compile(r"[A-Za-z]{3,}")


def _english_left(text: str) -> list[str]:
    """Words of 3+ Latin letters outside quotes, names and what the worker quotes (camera names, causes)."""
    text = re.sub(r"'[^']*'", "", text)
    for kept in ("Gate", "connection refused", "no frames", "timeout", "VLM", "the server answered 500", "man"):
        text = text.replace(kept, "")
    return ENGLISH.findall(text)


def test_a_korean_reader_reads_no_english_words_from_the_worker():
    terms = [{"term": "person_down", "value": 0.9, "label": "person",
              "explain": "person lying down for 12 s (box 2.1x wider than tall)"},
             {"term": "left_behind", "value": 0.9, "label": "suitcase", "explain": "suitcase left unattended for 2 min 5 s"}]
    with translation.override("ko"):
        out = [reason_text(t, terms) for t in rule_reasons() + health_sentences() + SYSTEM]
        leftovers = {t: _english_left(t) for t in out if _english_left(t)}
        assert leftovers == {}
        assert reason_text("peak score 0.71 is 1.6x the threshold 0.45 -> medium") == \
            "최고 점수 0.71: 임계값 0.45의 1.6배 → 보통"
        assert [action_name(a) for a in ("record", "notify", "alert_now")] == ["기록", "통보", "즉시 알림"]
        assert policy_name("rules") == "규칙" and input_name("duration_s") == "지속 시간(초)"
        assert term_text(terms[0]) == "사람이 쓰러져 움직이지 않음"
        shape = {"term": "shape", "label": "person", "value": 0.7, "numbers": {"ratio": 2.74},
                 "explain": "person 2.7x as wide for its height as people here"}
        assert term_text(shape) == "이곳에서 평소보다 키에 비해 2.7배 넓은 사람"
        with translation.override("en"):
            assert term_text(shape) == "person 2.7 times as wide for its height as usual here"


def test_english_readers_read_the_same_facts():
    with translation.override("en"):
        text = "peak score 0.71 is 1.6x the threshold 0.45 -> medium"
        assert reason_text(text) == "peak score 0.71 is 1.6 times the threshold 0.45 → medium"
        covered = "Camera view covered: 83% of the image lost its texture"
        assert reason_text(covered) == covered
        frozen = "Camera image frozen: the same picture for 2 min"
        assert reason_text(frozen) == frozen
        # an object term without the numbers to say it again keeps its stored words
        assert term_text({"term": "rare_class", "label": "car", "explain": "car on a spot where 0 were seen"}) == \
            "car on a spot where 0 were seen"
