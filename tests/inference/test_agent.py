"""Agent policies: the rule policy step by step, the LLM policy and its fallback."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from inference.agent import ACTIONS, LLMPolicy, RulePolicy, actions_for, episode_prompt, parse_decision
from inference.base import AgentPolicy, Decision, EpisodeSummary, VLMAnswer

from .tiny_models import build_tiny_causal_lm


def ep(peak=0.5, threshold=0.5, duration=5.0, mean=None, summary=None, threat=None, objects=(), zones=None):
    answer = None
    if summary is not None or threat is not None or objects:
        answer = VLMAnswer(summary=summary or "", threat_level=threat, objects=list(objects))
    details = {"zones": zones} if zones is not None else {}
    return EpisodeSummary(
        peak_score=peak,
        mean_score=peak * 0.8 if mean is None else mean,
        duration=duration,
        threshold=threshold,
        answer=answer,
        details=details,
    )


@pytest.fixture
def rules():
    return RulePolicy()


# ----------------------------------------------------------------------------- actions


def test_actions_follow_severity():
    assert actions_for("low") == ["record"]
    assert actions_for("medium") == ["record", "notify"]
    assert actions_for("high") == ["record", "notify", "alert_now"]
    assert actions_for("critical") == ["record", "notify", "alert_now", "escalate"]
    assert tuple(actions_for("critical")) == ACTIONS


# ----------------------------------------------------------------------------- score bands


@pytest.mark.parametrize(
    "peak, severity",
    [(0.50, "low"), (0.60, "low"), (0.63, "medium"), (0.80, "medium"), (0.90, "high"), (2.0, "high")],
)
def test_score_bands(rules, peak, severity):
    d = rules.decide(ep(peak=peak, threshold=0.5))
    assert isinstance(d, Decision)
    assert d.severity == severity
    assert d.actions == actions_for(severity)
    assert d.policy == "rules"
    assert len(d.reasons) == 1


def test_score_reason_is_readable(rules):
    d = rules.decide(ep(peak=0.91, threshold=0.5))
    assert d.reasons == ["peak score 0.91 is 1.8x the threshold 0.50 -> high"]


def test_custom_bands_and_critical_ratio():
    policy = RulePolicy(medium_ratio=1.1, high_ratio=1.3, critical_ratio=2.0)
    assert policy.decide(ep(peak=0.56)).severity == "medium"
    assert policy.decide(ep(peak=0.66)).severity == "high"
    assert policy.decide(ep(peak=1.0)).severity == "critical"
    assert RulePolicy().decide(ep(peak=5.0)).severity == "high"  # no critical by score alone by default


def test_zero_threshold_does_not_crash(rules):
    d = rules.decide(ep(peak=0.3, threshold=0.0))
    assert d.severity == "high"
    assert "threshold 0.00" in d.reasons[0]


def test_unknown_or_bad_params_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        RulePolicy(hihg_ratio=2)
    with pytest.raises(ValueError):
        RulePolicy(medium_ratio=2.0, high_ratio=1.5)


# ----------------------------------------------------------------------------- duration


def test_long_duration_raises_one_level(rules):
    d = rules.decide(ep(peak=0.7, duration=45))  # medium by score
    assert d.severity == "high"
    assert any("45 s" in r and "30 s" in r and r.endswith("high") for r in d.reasons)
    assert rules.decide(ep(peak=0.7, duration=30)).severity == "medium"  # not longer than 30 s


def test_duration_alone_never_makes_critical(rules):
    d = rules.decide(ep(peak=0.95, duration=600))
    assert d.severity == "high"
    assert len(d.reasons) == 2


# ----------------------------------------------------------------------------- VLM answer


def test_vlm_threat_level_is_capped_one_level_above_the_score(rules):
    d = rules.decide(ep(peak=0.5, summary="two people near a car", threat="critical"))
    assert d.severity == "medium"  # score low -> at most medium
    assert any("capped" in r for r in d.reasons)
    d = rules.decide(ep(peak=0.7, summary="two people near a car", threat="high"))
    assert d.severity == "high"
    d = rules.decide(ep(peak=0.9, summary="two people near a car", threat="low"))
    assert d.severity == "high"  # a lower VLM level never lowers


def test_high_keywords(rules):
    d = rules.decide(ep(peak=0.5, summary="An elderly man is lying on the floor", threat="low"))
    assert d.severity == "high"
    assert "alert_now" in d.actions
    assert any("'lying'" in r for r in d.reasons)
    assert rules.decide(ep(peak=0.5, summary="A person collapsed")).severity == "high"
    assert rules.decide(ep(peak=0.5, summary="someone", objects=["fallen bicycle"])).severity == "high"


@pytest.mark.parametrize("word", ["fire", "smoke", "weapon", "gun", "knife", "fight", "blood"])
def test_critical_keywords(rules, word):
    d = rules.decide(ep(peak=0.5, summary=f"There is a {word} near the entrance", threat="low"))
    assert d.severity == "critical"
    assert d.actions == ["record", "notify", "alert_now", "escalate"]
    assert any(f"'{word}'" in r and "critical" in r for r in d.reasons)


def test_critical_keyword_in_objects(rules):
    assert rules.decide(ep(peak=0.5, summary="a man", objects=["knife"])).severity == "critical"


def test_negated_keyword_does_not_count(rules):
    assert rules.decide(ep(peak=0.5, summary="no fire, no smoke, a parked car")).severity == "low"


def test_calm_phrases_lower_one_level(rules):
    d = rules.decide(ep(peak=0.9, summary="Nothing unusual: a cat walks by"))
    assert d.severity == "medium"
    assert any("nothing unusual" in r and "medium" in r for r in d.reasons)
    assert rules.decide(ep(peak=0.7, summary="normal street traffic")).severity == "low"
    assert rules.decide(ep(peak=0.5, summary="normal street traffic")).severity == "low"
    assert rules.decide(ep(peak=0.7, summary="abnormal crowd")).severity == "medium"  # word boundary


def test_no_answer_means_score_and_duration_only(rules):
    d = rules.decide(ep(peak=0.7, duration=10))
    assert d.severity == "medium"
    assert d.reasons == ["peak score 0.70 is 1.4x the threshold 0.50 -> medium"]


# ----------------------------------------------------------------------------- zones


def test_forbidden_zone_means_at_least_high(rules):
    d = rules.decide(ep(peak=0.5, zones=[{"name": "roof", "rule": "forbidden"}]))
    assert d.severity == "high"
    assert any("'roof'" in r and "forbidden" in r for r in d.reasons)
    # a calm description cannot lower it below high
    d = rules.decide(ep(peak=0.5, summary="nothing unusual", zones=[{"name": "roof", "rule": "forbidden"}]))
    assert d.severity == "high"
    # other rules are ignored by default, and a critical episode stays critical
    assert rules.decide(ep(peak=0.5, zones=[{"name": "lobby", "rule": "watch"}])).severity == "low"
    d = rules.decide(ep(peak=0.5, summary="gun", zones=[{"name": "roof", "rule": "forbidden"}]))
    assert d.severity == "critical"


def test_custom_zone_rules():
    policy = RulePolicy(zone_rules={"forbidden": "critical", "watch": "medium"})
    assert policy.decide(ep(zones=[{"name": "a", "rule": "watch"}])).severity == "medium"
    assert policy.decide(ep(zones=[{"name": "a", "rule": "forbidden"}])).severity == "critical"
    assert policy.decide(ep(zones=["junk", {"rule": None}])).severity == "low"


# ----------------------------------------------------------------------------- determinism


def test_rule_policy_is_deterministic(rules):
    e = ep(peak=0.8, duration=40, summary="a man fell near the gate", threat="medium",
           zones=[{"name": "gate", "rule": "forbidden"}])
    first = rules.decide(e)
    assert all(RulePolicy().decide(e) == first for _ in range(5))
    assert first.as_dict()["policy"] == "rules"
    assert isinstance(rules, AgentPolicy)


# ----------------------------------------------------------------------------- LLM policy


def test_parse_decision_valid_and_invalid():
    d = parse_decision(
        'ok {"severity": "HIGH", "actions": ["notify", "alert_now", "dance"], "reasons": ["a man fell"]}'
    )
    assert d == Decision(severity="high", actions=["record", "notify", "alert_now"], reasons=["a man fell"], policy="llm")
    d = parse_decision('{"severity": "medium"}')
    assert d.actions == ["record", "notify"] and d.reasons
    for bad in [None, "", "nonsense", '{"severity": "purple"}', '{"actions": ["record"]}', "[1, 2]"]:
        assert parse_decision(bad) is None


@pytest.fixture(scope="module")
def tiny_lm_path(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_llm_policy_falls_back_to_rules_on_garbage(tiny_lm_path):
    policy = LLMPolicy(model_path=str(tiny_lm_path), device="cpu", max_new_tokens=8)
    assert policy.name == "llm"
    e = ep(peak=0.9, summary="a man is lying near the door", threat="high")
    d = policy.decide(e)
    expected = RulePolicy().decide(e)
    assert policy.generate_calls == 1  # the model really ran
    assert policy.fallbacks == 1
    assert d.severity == expected.severity == "high"
    assert d.actions == expected.actions
    assert d.policy == "rules"
    assert "fell back to the rule policy" in d.reasons[0]
    assert d.reasons[1:] == expected.reasons


def test_llm_policy_fallback_uses_rule_params(tiny_lm_path):
    policy = LLMPolicy(model_path=str(tiny_lm_path), device="cpu", max_new_tokens=4,
                       rules={"high_ratio": 1.1, "medium_ratio": 1.05})
    assert policy.decide(ep(peak=0.6)).severity == "high"


def test_llm_policy_uses_a_valid_answer(tiny_lm_path, monkeypatch):
    policy = LLMPolicy(model_path=str(tiny_lm_path), device="cpu", max_new_tokens=4)
    prompts = []

    def fake_generate(prompt):
        prompts.append(prompt)
        return '{"severity": "critical", "actions": ["escalate"], "reasons": ["armed person"]}'

    monkeypatch.setattr(policy, "_generate", fake_generate)
    d = policy.decide(ep(peak=0.6, summary="a man holds a gun", objects=["gun"]))
    assert (d.severity, d.actions, d.reasons, d.policy) == ("critical", ["record", "escalate"], ["armed person"], "llm")
    assert d.inputs["description"] == "a man holds a gun" and d.inputs["vlm_objects"] == ["gun"]
    assert "a man holds a gun" in prompts[0] and '"severity"' in prompts[0]


def test_llm_policy_generation_error_falls_back(tiny_lm_path, monkeypatch):
    policy = LLMPolicy(model_path=str(tiny_lm_path), device="cpu")

    def boom(prompt):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(policy, "_generate", boom)
    d = policy.decide(ep(peak=0.5))
    assert d.severity == "low" and d.policy == "rules"
    assert "CUDA out of memory" in d.reasons[0]


def test_llm_policy_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        LLMPolicy(model_path=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="model_path"):
        LLMPolicy()


def test_episode_prompt_mentions_everything():
    text = episode_prompt(ep(peak=0.9, duration=12, summary="a fight", threat="high", objects=["man"],
                             zones=[{"name": "gate", "rule": "forbidden"}]))
    for part in ("0.900", "0.500", "12.0 seconds", "a fight", "high", "man", "gate (forbidden)", '"severity"'):
        assert part in text


# ----------------------------------------------------------------------------- zones as ZonedDetector reports them


def fence(seconds=4.0, area=0.12, active=True):
    return {"name": "fence", "kind": "forbidden", "rule": "forbidden", "seconds": seconds, "area": area,
            "active": active}


def entrance(seconds=45.0):
    return {"name": "entrance", "kind": "loiter", "rule": "loiter", "seconds": seconds, "area": 0.05, "active": True}


def test_forbidden_zone_hit_names_the_zone_and_what_is_there(rules):
    d = rules.decide(ep(peak=0.5, summary="a man by the fence", objects=["person", "bag"], zones=[fence()]))
    assert d.severity == "high" and d.actions == actions_for("high")
    assert "person in forbidden zone 'fence' for 4 s -> at least high: high" in d.reasons
    d = rules.decide(ep(peak=0.5, zones=[fence(seconds=0.2)]))
    assert d.reasons[-1] == "presence in forbidden zone 'fence' -> at least high: high"
    # a hit the detector still reports after it ended (inactive) counts too
    assert rules.decide(ep(peak=0.5, zones=[fence(active=False)])).severity == "high"


def test_loitering_means_at_least_medium(rules):
    d = rules.decide(ep(peak=0.5, zones=[entrance()]))
    assert d.severity == "medium" and d.actions == ["record", "notify"]
    assert d.reasons[-1] == "loitering 45 s in zone 'entrance' -> at least medium: medium"
    # a higher score keeps its level, and says so
    d = rules.decide(ep(peak=0.95, zones=[entrance(seconds=61.4)]))
    assert d.severity == "high"
    assert d.reasons[-1] == "loitering 61 s in zone 'entrance' (at least medium); keeps high"
    # a calm description lowers the score level, never below the zone's minimum
    assert rules.decide(ep(peak=0.8, summary="nothing unusual", zones=[entrance()])).severity == "medium"


def test_zone_hits_combine_with_duration_and_the_vlm(rules):
    d = rules.decide(ep(peak=0.6, duration=40, summary="two people talking", threat="low",
                        zones=[entrance(), fence()]))
    assert d.severity == "high"
    assert any(r.startswith("lasted 40 s") for r in d.reasons)
    assert any("loitering 45 s in zone 'entrance'" in r for r in d.reasons)
    assert any("in forbidden zone 'fence'" in r for r in d.reasons)
    d = rules.decide(ep(peak=0.6, summary="a person holding a knife", zones=[entrance()]))
    assert d.severity == "critical" and d.actions == actions_for("critical")
    # the same zone reported twice gives one reason
    d = rules.decide(ep(peak=0.5, zones=[fence(), fence(active=False)]))
    assert sum("'fence'" in r for r in d.reasons) == 1


def test_zone_severities_are_configurable():
    policy = RulePolicy(zone_rules={"forbidden": "critical", "loiter": "high"})
    assert policy.decide(ep(zones=[entrance()])).severity == "high"
    assert policy.decide(ep(zones=[fence()])).severity == "critical"
    assert RulePolicy(zone_rules={"forbidden": "high"}).decide(ep(zones=[entrance()])).severity == "low"
    with pytest.raises(ValueError, match="loiter"):
        RulePolicy(zone_rules={"loiter": "urgent"})


def test_episode_prompt_describes_zone_hits():
    text = episode_prompt(ep(peak=0.9, zones=[fence(), entrance()]))
    assert "Zones hit: fence (forbidden) for 4 s, 12% of the zone occupied; entrance (loiter) for 45 s" in text
    assert "loiter = someone stayed there longer than allowed" in text
    assert "Zones hit" not in episode_prompt(ep(peak=0.9))


def test_llm_policy_prompt_includes_zone_hits(tiny_lm_path, monkeypatch):
    policy = LLMPolicy(model_path=str(tiny_lm_path), device="cpu", max_new_tokens=4)
    prompts = []
    monkeypatch.setattr(policy, "_generate", lambda prompt: prompts.append(prompt) or "no idea")
    d = policy.decide(ep(peak=0.5, zones=[entrance()]))
    assert "entrance (loiter) for 45 s" in prompts[0]
    # its fallback applies the zone rules too
    assert d.severity == "medium" and "loitering 45 s in zone 'entrance'" in d.reasons[-1]


# -- objects (the objects detector) ------------------------------------------------------------------
def _objects_episode(**details):
    from inference.base import EpisodeSummary

    return EpisodeSummary(peak_score=0.55, mean_score=0.5, duration=4.0, threshold=0.5, details=details)


def test_a_person_in_a_forbidden_zone_is_high_a_cat_is_not():
    from inference.agent import RulePolicy

    zone = {"name": "fence", "kind": "forbidden", "seconds": 4.0, "area": 0.1}
    person = RulePolicy().decide(_objects_episode(zones=[{**zone, "labels": ["person"]}]))
    cat = RulePolicy().decide(_objects_episode(zones=[{**zone, "labels": ["cat"]}]))
    assert person.severity == "high" and any("(person)" in r for r in person.reasons)
    assert cat.severity == "low" and any("only cat in forbidden zone 'fence'" in r for r in cat.reasons)


def test_object_terms_set_their_minimum_with_the_explanation_as_reason():
    from inference.agent import RulePolicy

    down = {"term": "person_down", "value": 0.99, "explain": "person down for 6 s"}
    rare = {"term": "rare_class", "value": 0.9, "explain": "bicycle on a spot where 0 were seen in 2,550 learned frames"}
    weak = {"term": "person_down", "value": 0.3, "explain": "person down for 2 s"}
    assert RulePolicy().decide(_objects_episode(object_terms=[down])).severity == "high"
    decided = RulePolicy().decide(_objects_episode(object_terms=[rare]))
    assert decided.severity == "medium" and "0 were seen in 2,550 learned frames -> at least medium" in decided.reasons[-1]
    assert RulePolicy().decide(_objects_episode(object_terms=[weak])).severity == "low"
    assert RulePolicy(object_rules={}).decide(_objects_episode(object_terms=[down])).severity == "low"


def test_a_tripwire_crossing_is_high_and_named_with_its_direction():
    from inference.agent import RulePolicy

    hit = {"name": "gate", "kind": "line", "rule": "line", "direction": "left", "labels": ["person"], "seconds": 0,
           "area": 0, "track": 4, "active": True}
    decided = RulePolicy().decide(_objects_episode(zones=[hit]))
    assert decided.severity == "high"
    assert any("line 'gate' crossed to its left side (person) -> at least high" in r for r in decided.reasons)
