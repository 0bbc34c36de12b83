"""The "openai" VLM and agent backends against a real local chat-completions server."""

import numpy as np
import pytest

from inference.addresses import parse_networks
from inference.base import EpisodeSummary, VLMAnswer
from inference.registry import resolve

LOOPBACK = parse_networks("127.0.0.0/8")


def config(server, **extra):
    return {"base_url": server.base_url, "model": "llava", "timeout": 3, "allowed_networks": LOOPBACK, **extra}


def test_the_vlm_describes_a_frame_with_the_cameras_prompt(server):
    vlm = resolve("vlm", "openai")(**config(server))
    answer = vlm.describe(np.full((240, 360, 3), 90, np.uint8), "Watch the loading bay.")
    assert answer.summary == "A person is lying on the ground." and answer.threat_level == "high"
    assert answer.objects == ["person"]
    text = server.requests[-1]["messages"][0]["content"][0]["text"]
    assert text.startswith("Watch the loading bay.") and '"threat_level"' in text


def test_frames_around_the_peak_go_in_one_request_oldest_first(server):
    vlm = resolve("vlm", "openai")(**config(server))
    frames = [np.full((100, 100, 3), v, np.uint8) for v in (10, 120, 240)]
    assert vlm.describe_frames(frames, "") is not None
    assert len(server.images()) == 3
    assert "3 images are consecutive moments" in server.requests[-1]["messages"][0]["content"][0]["text"]


def test_a_plain_text_answer_still_gives_a_description(server):
    server.reply = "Two people are fighting near the door."
    answer = resolve("vlm", "openai")(**config(server)).describe(np.zeros((64, 64, 3), np.uint8), "")
    assert answer.summary.startswith("Two people are fighting") and answer.threat_level == "critical"


@pytest.mark.parametrize("setup,reason", [
    (lambda s: setattr(s, "status", 500), "answered HTTP 500"),
    (lambda s: setattr(s, "delay", 3.5), "did not answer within 3 s"),
    (lambda s: setattr(s, "api_key", "other"), "refused the API key"),
])
def test_a_failing_server_leaves_the_frame_undescribed_with_the_reason(server, setup, reason):
    setup(server)
    vlm = resolve("vlm", "openai")(**config(server))
    assert vlm.describe(np.zeros((64, 64, 3), np.uint8), "") is None
    assert vlm.failures == 1 and reason in vlm.last_error


def test_missing_settings_are_named():
    with pytest.raises(ValueError, match="VLM: base_url is required"):
        resolve("vlm", "openai")(model="m")
    with pytest.raises(ValueError, match="agent: model is required"):
        resolve("agent", "openai")(base_url="http://127.0.0.1:1/v1")


def episode():
    return EpisodeSummary(peak_score=0.9, mean_score=0.7, duration=6.0, threshold=0.5,
                          answer=VLMAnswer(summary="A person is lying on the ground.", threat_level="high"))


def test_the_agent_decides_through_the_server(server):
    server.reply = '{"severity": "critical", "actions": ["alert_now", "notify"], "reasons": ["person down"]}'
    decision = resolve("agent", "openai")(**config(server)).decide(episode())
    assert decision.severity == "critical" and "alert_now" in decision.actions
    assert decision.reasons == ["person down"] and decision.policy == "openai"
    prompt = server.requests[-1]["messages"][0]["content"]
    assert "A person is lying on the ground." in prompt and "Peak anomaly score: 0.900" in prompt


@pytest.mark.parametrize("setup,problem", [
    (lambda s: setattr(s, "reply", "I think it is fine"), "answer was not a valid JSON decision"),
    (lambda s: setattr(s, "status", 502), "generation failed"),
])
def test_the_agent_falls_back_to_the_rules_with_the_reason(server, setup, problem):
    setup(server)
    decision = resolve("agent", "openai")(**config(server)).decide(episode())
    assert decision.policy == "rules" and problem in decision.reasons[0]
    assert "fell back to the rule policy" in decision.reasons[0]


def test_an_llm_answer_is_bounded_by_the_allow_list_and_says_so(server):
    server.reply = '{"severity": "low", "actions": ["alert_now", "escalate"], "reasons": ["just to be safe"]}'
    decision = resolve("agent", "openai")(**config(server)).decide(episode())
    assert decision.severity == "low" and decision.actions == ["record"]
    assert "not allowed at low on this camera, dropped: alert_now, escalate" in decision.reasons[-1]
    # A camera may allow more (here: paging at medium) and the trace records what the decision came from.
    server.reply = '{"severity": "medium", "actions": ["notify", "alert_now"], "reasons": ["person down"]}'
    policy = resolve("agent", "openai")(**config(server, allowed_actions={"medium": ["notify", "alert_now"]}))
    decision = policy.decide(episode())
    assert decision.actions == ["record", "notify", "alert_now"]
    assert decision.inputs == {"peak_score": 0.9, "mean_score": 0.7, "threshold": 0.5, "duration_s": 6.0,
                               "description": "A person is lying on the ground.", "vlm_threat_level": "high"}
    assert decision.as_dict()["inputs"]["description"] == "A person is lying on the ground."


@pytest.mark.parametrize("allowed,message", [
    ({"urgent": ["notify"]}, "unknown severity 'urgent'"),
    ({"high": ["page"]}, "must be a list of record, notify, alert_now, escalate"),
    (["notify"], "must be an object"),
])
def test_a_bad_allow_list_is_named(server, allowed, message):
    with pytest.raises(ValueError, match=message):
        resolve("agent", "openai")(**config(server, allowed_actions=allowed))


def test_the_rule_policy_records_its_inputs_too():
    decision = resolve("agent", "rules")().decide(episode())
    assert decision.inputs["peak_score"] == 0.9 and decision.inputs["description"].startswith("A person")
