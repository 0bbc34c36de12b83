"""Agent policies: decide an episode's severity and what to do about it.

* ``RulePolicy`` ("rules"): deterministic rules on the score, the duration, the
  VLM's answer and zone hits, with a human-readable reason for every step.
* ``LLMPolicy`` ("llm"): a local text-generation model asked for a JSON
  decision; anything unusable falls back to ``RulePolicy``.

No Django imports here.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading

from .base import THREAT_LEVELS, AgentPolicy, Decision, EpisodeSummary
from .jsontext import find_json_object
from .modelfiles import check_model_dir, resolve_device, resolve_dtype

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIONS",
    "LLMPolicy",
    "RulePolicy",
    "actions_for",
    "episode_prompt",
    "parse_decision",
]

#: Every action a policy may ask for, in escalation order.
ACTIONS = ("record", "notify", "alert_now", "escalate")


#: What an LLM policy may ask for at each severity (a camera's ``agent_params["allowed_actions"]`` narrows
#: or widens it): actions outside it are dropped, with a reason. ``record`` is always allowed.
DEFAULT_ALLOWED_ACTIONS = {
    "low": ["record"],
    "medium": ["record", "notify"],
    "high": ["record", "notify", "alert_now"],
    "critical": ["record", "notify", "alert_now", "escalate"],
}


def check_allowed_actions(value) -> dict[str, list[str]]:
    """The per-severity allow-list, DEFAULT_ALLOWED_ACTIONS filled in; ValueError naming a bad entry."""
    if value is None:
        return {k: list(v) for k, v in DEFAULT_ALLOWED_ACTIONS.items()}
    if not isinstance(value, dict):
        raise ValueError("allowed_actions must be an object: severity -> list of actions")
    out = {k: list(v) for k, v in DEFAULT_ALLOWED_ACTIONS.items()}
    for severity, actions in value.items():
        if severity not in THREAT_LEVELS:
            raise ValueError(f"allowed_actions: unknown severity {severity!r} (one of {', '.join(THREAT_LEVELS)})")
        if not isinstance(actions, list) or any(a not in ACTIONS for a in actions):
            raise ValueError(f"allowed_actions[{severity!r}] must be a list of {', '.join(ACTIONS)}")
        out[severity] = sorted(set(actions) | {"record"}, key=ACTIONS.index)
    return out


def bound_decision(decision: Decision, allowed: dict[str, list[str]]) -> Decision:
    """``decision`` with the actions its severity does not allow dropped, each drop given as a reason."""
    permitted = allowed.get(decision.severity, ["record"])
    kept = [a for a in decision.actions if a in permitted]
    dropped = [a for a in decision.actions if a not in permitted]
    if "record" not in kept:
        kept.insert(0, "record")
    reasons = list(decision.reasons)
    if dropped:
        reasons.append(f"not allowed at {decision.severity} on this camera, dropped: {', '.join(dropped)} "
                       f"(allowed: {', '.join(permitted)})")
    return Decision(severity=decision.severity, actions=kept, reasons=reasons, policy=decision.policy,
                    inputs=decision.inputs)


def decision_inputs(episode: EpisodeSummary) -> dict:
    """What a decision was made from, for the event's trace (small, JSON-ready)."""
    inputs = {"peak_score": round(float(episode.peak_score), 4), "mean_score": round(float(episode.mean_score), 4),
              "threshold": round(float(episode.threshold), 4), "duration_s": round(float(episode.duration), 1)}
    answer = episode.answer
    if answer is not None:
        inputs["description"] = answer.summary[:300]
        if answer.threat_level:
            inputs["vlm_threat_level"] = answer.threat_level
        if answer.objects:
            inputs["vlm_objects"] = [str(o)[:40] for o in answer.objects[:10]]
    details = episode.details if isinstance(episode.details, dict) else {}
    zones = details.get("zones")
    if isinstance(zones, (list, tuple)) and zones:
        inputs["zones"] = [f"{z.get('name')} ({z.get('kind') or z.get('rule')})" for z in zones[:10] if isinstance(z, dict)]
    labels = details.get("labels")
    if isinstance(labels, (list, tuple)) and labels:
        inputs["labels"] = [str(label)[:40] for label in labels[:10]]
    return inputs


def actions_for(severity: str) -> list[str]:
    """The standard actions of a severity: always record; notify from medium;
    alert_now from high; escalate at critical."""
    level = THREAT_LEVELS.index(severity)
    actions = ["record"]
    if level >= THREAT_LEVELS.index("medium"):
        actions.append("notify")
    if level >= THREAT_LEVELS.index("high"):
        actions.append("alert_now")
    if level >= THREAT_LEVELS.index("critical"):
        actions.append("escalate")
    return actions


def _level(severity: str) -> int:
    return THREAT_LEVELS.index(severity)


def _name(level: int) -> str:
    return THREAT_LEVELS[max(0, min(len(THREAT_LEVELS) - 1, level))]


_NEGATIONS = {"no", "not", "without", "nor", "never"}


def _find_keyword(text: str, keywords) -> str | None:
    """The first keyword (word-boundary match, not right after a negation) found in ``text``."""
    for keyword in keywords:
        kw = keyword.lower().strip()
        if not kw:
            continue
        for m in re.finditer(rf"(?<![\w-]){re.escape(kw)}(?![\w-])", text):
            before = text[: m.start()].split()
            if before and before[-1].strip(".,;:!?\"'()") in _NEGATIONS:
                continue
            return keyword
    return None


def _seconds(zone: dict) -> float | None:
    value = zone.get("seconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value >= 0:
        return float(value)
    return None


def _zone_hit(zone: dict, kind: str, name: str, answer) -> str:
    """A zone hit in words: "person in forbidden zone 'fence' for 4 s", "loitering 45 s in zone 'door'"."""
    seconds = _seconds(zone)
    if kind == "forbidden":
        objects = [str(o).strip() for o in (answer.objects or [])] if answer is not None else []
        subject = next((o for o in objects if o), "presence")
        text = f"{subject} in forbidden zone {name!r}"
        return text + (f" for {seconds:.0f} s" if seconds is not None and seconds >= 1 else "")
    if kind == "loiter":
        return f"loitering {seconds:.0f} s in zone {name!r}" if seconds is not None else f"loitering in zone {name!r}"
    if kind == "line":
        direction = zone.get("direction")
        side = f" to its {direction} side" if direction in ("left", "right") else ""
        return f"line {name!r} crossed{side}"
    return f"zone {name!r} is {kind}"


class RulePolicy(AgentPolicy):
    """Deterministic severity rules.

    Steps, each adding a reason:

    1. score band: ratio = peak_score / threshold; ``< medium_ratio`` low,
       ``< high_ratio`` medium, else high (``critical_ratio``, off by default,
       gives critical);
    2. duration: longer than ``long_duration`` seconds raises one level, not above
       ``duration_max``;
    3. the VLM's threat_level: taken when higher, but at most one level above the
       score-based level (step 1);
    4. keywords in the VLM summary/objects: ``critical_keywords`` -> critical,
       ``high_keywords`` -> at least high, otherwise ``calm_phrases`` lower one level;
    5. zones (``details["zones"]``, as ``inference.zones.ZonedDetector`` reports them: a
       list of {"name", "kind", "seconds", "area"}; ``"rule"`` is read when ``"kind"`` is
       absent): a kind listed in ``zone_rules`` (default {"forbidden": "high", "loiter":
       "medium", "line": "high"}) sets that minimum, with a reason naming the zone ("person in forbidden
       zone 'fence' for 4 s -> at least high: high", "loitering 45 s in zone 'entrance' ...").
       With the objects detector a hit lists the ``labels`` standing in the zone: a zone where
       only ``zone_ignore_labels`` (a bird, a cat, a dog) are raises nothing;
    6. objects: an anomaly term of the objects detector (``details["object_terms"]``, value at
       least 0.5) listed in ``object_rules`` (default person_down high, left_behind and
       rare_class medium) sets that minimum, with its explanation as the reason.

    Actions follow the severity (``actions_for``).
    """

    name = "rules"

    DEFAULTS = {
        "medium_ratio": 1.25,
        "high_ratio": 1.75,
        "critical_ratio": None,
        "long_duration": 30.0,
        "duration_max": "high",
        "high_keywords": ("fall", "fell", "fallen", "falling", "lying", "collapsed", "collapse", "unconscious"),
        "critical_keywords": ("fire", "smoke", "weapon", "gun", "knife", "fight", "fighting", "blood"),
        "calm_phrases": ("nothing unusual", "normal"),
        "zone_rules": {"forbidden": "high", "loiter": "medium", "line": "high"},
        # objects (the objects detector): what is in a zone decides, and some anomaly terms set a minimum
        "zone_ignore_labels": ("bird", "cat", "dog"),
        "object_rules": {"person_down": "high", "left_behind": "medium", "rare_class": "medium"},
        "use_vlm_threat": True,
    }

    def __init__(self, **params):
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"RulePolicy: unknown parameter(s) {sorted(unknown)}; known: {sorted(self.DEFAULTS)}")
        merged = {**self.DEFAULTS, **params}
        super().__init__(**merged)
        self.medium_ratio = float(merged["medium_ratio"])
        self.high_ratio = float(merged["high_ratio"])
        self.critical_ratio = None if merged["critical_ratio"] is None else float(merged["critical_ratio"])
        if not 0 < self.medium_ratio <= self.high_ratio:
            raise ValueError("RulePolicy: need 0 < medium_ratio <= high_ratio")
        self.long_duration = None if merged["long_duration"] is None else float(merged["long_duration"])
        if merged["duration_max"] not in THREAT_LEVELS:
            raise ValueError(f"RulePolicy: duration_max must be one of {THREAT_LEVELS}")
        self.duration_max = merged["duration_max"]
        self.high_keywords = tuple(merged["high_keywords"] or ())
        self.critical_keywords = tuple(merged["critical_keywords"] or ())
        self.calm_phrases = tuple(merged["calm_phrases"] or ())
        self.zone_rules = dict(merged["zone_rules"] or {})
        for rule, sev in self.zone_rules.items():
            if sev not in THREAT_LEVELS:
                raise ValueError(f"RulePolicy: zone rule {rule!r} maps to unknown severity {sev!r}")
        self.zone_ignore_labels = frozenset(merged["zone_ignore_labels"] or ())
        self.object_rules = dict(merged["object_rules"] or {})
        for rule, sev in self.object_rules.items():
            if sev not in THREAT_LEVELS:
                raise ValueError(f"RulePolicy: object rule {rule!r} maps to unknown severity {sev!r}")
        self.use_vlm_threat = bool(merged["use_vlm_threat"])

    # -- steps

    def _score_level(self, ep: EpisodeSummary, reasons: list[str]) -> int:
        peak, threshold = float(ep.peak_score), float(ep.threshold)
        if threshold > 0:
            ratio = peak / threshold
        else:
            ratio = float("inf") if peak > 0 else 0.0
        if self.critical_ratio is not None and ratio >= self.critical_ratio:
            level = _level("critical")
        elif ratio >= self.high_ratio:
            level = _level("high")
        elif ratio >= self.medium_ratio:
            level = _level("medium")
        else:
            level = _level("low")
        ratio_txt = "infinitely many times" if ratio == float("inf") else f"{ratio:.1f}x"
        reasons.append(f"peak score {peak:.2f} is {ratio_txt} the threshold {threshold:.2f} -> {_name(level)}")
        return level

    def decide(self, episode: EpisodeSummary) -> Decision:
        reasons: list[str] = []
        score_level = self._score_level(episode, reasons)
        level = score_level

        # 2. duration
        if self.long_duration is not None and episode.duration > self.long_duration:
            cap = _level(self.duration_max)
            if level < cap:
                level += 1
                reasons.append(
                    f"lasted {episode.duration:.0f} s, longer than {self.long_duration:.0f} s -> {_name(level)}"
                )
            else:
                reasons.append(
                    f"lasted {episode.duration:.0f} s, longer than {self.long_duration:.0f} s "
                    f"(already {_name(level)}, duration raises at most to {self.duration_max})"
                )

        answer = episode.answer
        text = ""
        if answer is not None:
            parts = [answer.summary or ""] + [str(o) for o in (answer.objects or [])]
            text = " ".join(parts).lower()
        critical_kw = _find_keyword(text, self.critical_keywords) if text else None

        # 3. the VLM's own threat level
        vlm_level = answer.threat_level if answer is not None else None
        if self.use_vlm_threat and vlm_level in THREAT_LEVELS:
            wanted = _level(vlm_level)
            if wanted > level:
                allowed = max(level, score_level + 1) if critical_kw is None else wanted
                new = min(wanted, allowed)
                if new > level:
                    level = new
                    if new < wanted:
                        reasons.append(
                            f"VLM rates the threat {vlm_level}; capped at one level above the score -> {_name(level)}"
                        )
                    else:
                        reasons.append(f"VLM rates the threat {vlm_level} -> {_name(level)}")
                else:
                    reasons.append(
                        f"VLM rates the threat {vlm_level}; ignored, more than one level above the score"
                    )
            else:
                reasons.append(f"VLM rates the threat {vlm_level}; keeps {_name(level)}")

        # 4. keywords in the description
        if text:
            if critical_kw is not None:
                if level < _level("critical"):
                    level = _level("critical")
                reasons.append(f"description mentions {critical_kw!r} -> critical")
            else:
                high_kw = _find_keyword(text, self.high_keywords)
                if high_kw is not None:
                    if level < _level("high"):
                        level = _level("high")
                        reasons.append(f"description mentions {high_kw!r} -> high")
                    else:
                        reasons.append(f"description mentions {high_kw!r}; keeps {_name(level)}")
                else:
                    calm = _find_keyword(text, self.calm_phrases)
                    if calm is not None:
                        if level > 0:
                            level -= 1
                            reasons.append(f"description says {calm!r} -> lowered to {_name(level)}")
                        else:
                            reasons.append(f"description says {calm!r}; stays low")

        # 5. zones
        zones = episode.details.get("zones") if isinstance(episode.details, dict) else None
        if isinstance(zones, (list, tuple)):
            seen = set()
            for zone in zones:
                if not isinstance(zone, dict):
                    continue
                kind = zone.get("kind") or zone.get("rule")
                minimum = self.zone_rules.get(kind) if isinstance(kind, str) else None
                if minimum is None:
                    continue
                zname = str(zone.get("name") or "unnamed")
                if (zname, kind) in seen:
                    continue
                seen.add((zname, kind))
                labels = zone.get("labels")
                if isinstance(labels, list) and labels and set(labels) <= self.zone_ignore_labels:
                    reasons.append(f"only {', '.join(labels)} in {kind} zone '{zname}'; not raised")
                    continue
                what = _zone_hit(zone, kind, zname, answer)
                if isinstance(labels, list) and labels:
                    what = f"{what} ({', '.join(labels)})"
                if level < _level(minimum):
                    level = _level(minimum)
                    reasons.append(f"{what} -> at least {minimum}: {_name(level)}")
                else:
                    reasons.append(f"{what} (at least {minimum}); keeps {_name(level)}")

        # 6. objects: anomaly terms of the objects detector that set a minimum
        terms = episode.details.get("object_terms") if isinstance(episode.details, dict) else None
        for term in terms if isinstance(terms, (list, tuple)) else ():
            if not isinstance(term, dict) or float(term.get("value") or 0) < 0.5:
                continue
            minimum = self.object_rules.get(term.get("term"))
            if minimum is None:
                continue
            what = str(term.get("explain") or term.get("term"))[:200]
            if level < _level(minimum):
                level = _level(minimum)
                reasons.append(f"{what} -> at least {minimum}: {_name(level)}")
            else:
                reasons.append(f"{what} (at least {minimum}); keeps {_name(level)}")

        severity = _name(level)
        return Decision(severity=severity, actions=actions_for(severity), reasons=reasons, policy=self.name,
                        inputs=decision_inputs(episode))


# --------------------------------------------------------------------------- LLM policy


def episode_prompt(episode: EpisodeSummary) -> str:
    """The episode described in plain text, with the JSON-answer instruction."""
    lines = [
        "You are the duty officer of a video-surveillance system. Decide how serious this anomaly episode is.",
        f"Peak anomaly score: {episode.peak_score:.3f} (alert threshold {episode.threshold:.3f}).",
        f"Mean anomaly score: {episode.mean_score:.3f}.",
        f"Duration: {episode.duration:.1f} seconds.",
    ]
    answer = episode.answer
    if answer is not None:
        lines.append(f"Scene description: {answer.summary}")
        if answer.threat_level:
            lines.append(f"Vision model threat level: {answer.threat_level}.")
        if answer.objects:
            lines.append("Objects seen: " + ", ".join(map(str, answer.objects)) + ".")
    zones = episode.details.get("zones") if isinstance(episode.details, dict) else None
    if isinstance(zones, (list, tuple)) and zones:
        hits = []
        for z in zones:
            if not isinstance(z, dict):
                continue
            kind = z.get("kind") or z.get("rule")
            text = f"{z.get('name')} ({kind})"
            seconds = _seconds(z)
            if kind == "line":
                if z.get("direction") in ("left", "right"):
                    text += f", crossed to its {z['direction']} side"
            elif seconds is not None:
                text += f" for {seconds:.0f} s"
            if isinstance(z.get("labels"), list) and z["labels"]:
                text += f" by {', '.join(map(str, z['labels']))}"
            area = z.get("area")
            if isinstance(area, (int, float)) and not isinstance(area, bool) and 0 < area <= 1:
                text += f", {100 * area:.0f}% of the zone occupied"
            hits.append(text)
        if hits:
            lines.append("Zones hit: " + "; ".join(hits) + ".")
            lines.append("Zone rules: forbidden = any presence there is an anomaly; "
                         "loiter = someone stayed there longer than allowed; "
                         "line = an object crossed a tripwire in the watched direction.")
    lines.append(
        "Answer with one JSON object only: "
        '{"severity": "low|medium|high|critical", '
        '"actions": [any of "record", "notify", "alert_now", "escalate"], '
        '"reasons": ["<short reason>", ...]}'
    )
    return "\n".join(lines)


def parse_decision(text, policy: str = "llm") -> Decision | None:
    """A ``Decision`` from a model's JSON answer, or None when it is not usable.

    Needs a severity in THREAT_LEVELS. Actions are filtered to ``ACTIONS``; "record"
    is always included; no usable actions -> the severity's standard actions.
    Missing reasons get one saying the model gave none. Never raises.
    """

    try:
        if not isinstance(text, str):
            return None
        data = find_json_object(text)
        if not isinstance(data, dict):
            return None
        severity = data.get("severity", data.get("threat_level"))
        severity = severity.strip().lower() if isinstance(severity, str) else None
        if severity not in THREAT_LEVELS:
            return None
        raw_actions = data.get("actions")
        if isinstance(raw_actions, str):
            raw_actions = re.split(r"[,\s]+", raw_actions)
        actions: list[str] = []
        if isinstance(raw_actions, (list, tuple)):
            for a in raw_actions:
                if isinstance(a, str) and a.strip().lower() in ACTIONS and a.strip().lower() not in actions:
                    actions.append(a.strip().lower())
        if not actions:
            actions = actions_for(severity)
        elif "record" not in actions:
            actions.insert(0, "record")
        actions.sort(key=ACTIONS.index)
        raw_reasons = data.get("reasons", data.get("reason"))
        if isinstance(raw_reasons, str):
            raw_reasons = [raw_reasons]
        reasons = []
        if isinstance(raw_reasons, (list, tuple)):
            reasons = [re.sub(r"\s+", " ", r).strip()[:300] for r in raw_reasons if isinstance(r, str) and r.strip()]
        if not reasons:
            reasons = [f"model chose {severity} without giving reasons"]
        return Decision(severity=severity, actions=actions, reasons=reasons[:20], policy=policy)
    except Exception:  # pragma: no cover - garbage must never raise
        logger.exception("could not parse an LLM decision")
        return None


class LLMPolicy(AgentPolicy):
    """A local causal LM decides; its unusable answers fall back to ``RulePolicy``.

    Params:
        model_path: local folder with a saved causal LM + tokenizer (required).
        device: "auto"; dtype: "auto"; max_new_tokens: 128.
        rules: dict of ``RulePolicy`` params for the fallback ({}).
        use_chat_template: True (when the tokenizer has one).

    The weights depend only on ``weight_params``; a worker's pool loads one model per set of them
    and gives each camera ``with_params(**its params)``, a view sharing the model, the tokenizer
    and the generation lock, so editing a camera's other parameters loads nothing new.
    """

    name = "llm"
    #: The parameters that decide the loaded weights (inference.pool.ResourcePool.agent).
    weight_params = ("model_path", "device", "dtype")

    def __init__(self, **params):
        super().__init__(**params)

        self.model_path = check_model_dir(params.get("model_path"), "LLMPolicy")
        self.device = resolve_device(params.get("device", "auto"))
        self.dtype = resolve_dtype(params.get("dtype", "auto"), self.device)
        self._configure(params)
        self._lock = threading.Lock()
        self._load()

    def _configure(self, params: dict) -> None:
        """The decision parameters (everything but the weights); checked before any load."""
        self.params = params
        self.max_new_tokens = int(params.get("max_new_tokens", 128))
        self.use_chat_template = bool(params.get("use_chat_template", True))
        self.fallback = RulePolicy(**(params.get("rules") or {}))
        self.allowed_actions = check_allowed_actions(params.get("allowed_actions"))
        self.generate_calls = 0
        self.fallbacks = 0

    def with_params(self, **params) -> "LLMPolicy":
        """This loaded model with other decision parameters; the weight parameters stay this model's."""
        view = copy.copy(self)  # shares model, tokenizer and _lock
        view._configure({**params, **{k: self.params[k] for k in self.weight_params if k in self.params}})
        return view

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = str(self.model_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=self.dtype)
        except Exception as exc:
            raise RuntimeError(f"LLMPolicy: cannot load a causal LM from {path!r}: {exc}") from exc
        self.model = model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def format_prompt(self, episode: EpisodeSummary) -> str:
        text = episode_prompt(episode)
        if self.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            try:
                out = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
                )
                if isinstance(out, str) and out:
                    return out
            except Exception:
                logger.warning("chat template of %s failed; using the plain prompt", self.model_path, exc_info=True)
        return text + "\n"

    def _generate(self, prompt: str) -> str:
        import torch

        with self._lock, torch.inference_mode():
            inputs = self.tokenizer([prompt], return_tensors="pt", padding=True, add_special_tokens=True)
            inputs = {k: v.to(self.device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
            inputs.pop("token_type_ids", None)
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            self.generate_calls += 1
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    def decide(self, episode: EpisodeSummary) -> Decision:
        problem = None
        try:
            text = self._generate(self.format_prompt(episode))
        except Exception as exc:
            logger.exception("LLMPolicy: generation failed")
            text = None
            problem = f"generation failed ({type(exc).__name__}: {exc})"
        decision = parse_decision(text, policy=self.name) if text is not None else None
        if decision is not None:
            decision.inputs = decision_inputs(episode)
            return bound_decision(decision, self.allowed_actions)
        if problem is None:
            snippet = re.sub(r"\s+", " ", text or "").strip()[:80]
            problem = f"answer was not a valid JSON decision ({snippet!r})"
        self.fallbacks += 1
        fallback = self.fallback.decide(episode)
        reasons = [f"LLM policy: {problem}; fell back to the rule policy"] + fallback.reasons
        return Decision(severity=fallback.severity, actions=fallback.actions, reasons=reasons, policy=self.fallback.name,
                        inputs=decision_inputs(episode))
