"""VLM backends: the tiny Llava goes through the real loading and generation code."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from inference.base import THREAT_LEVELS, VLMAnswer, VLMBackend
from inference.vlm import (
    JSON_INSTRUCTION,
    NoVLM,
    TransformersVLM,
    build_prompt,
    infer_threat_level,
    parse_answer,
)

from .tiny_models import build_tiny_vlm


@pytest.fixture(scope="module")
def tiny_vlm_path(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="module")
def tiny_vlm(tiny_vlm_path):
    return TransformersVLM(model_path=str(tiny_vlm_path), device="cpu", max_new_tokens=12, max_batch=8)


def _images():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),  # BGR colour
        rng.integers(0, 256, (30, 30), dtype=np.uint8),  # grayscale
        rng.integers(0, 256, (64, 40, 4), dtype=np.uint8),  # BGRA
    ]


# ----------------------------------------------------------------------------- NoVLM


def test_novlm_returns_none_for_every_image():
    vlm = NoVLM()
    assert vlm.name == "none"
    assert isinstance(vlm, VLMBackend)
    assert vlm.describe_batch(_images(), ["a", "b", "c"]) == [None, None, None]
    assert vlm.describe(_images()[0], "x") is None


# ----------------------------------------------------------------------------- prompt


def test_build_prompt_wraps_camera_prompt_with_json_instruction():
    p = build_prompt("Watch the loading bay door.")
    assert p.startswith("Watch the loading bay door.")
    assert JSON_INSTRUCTION in p
    for key in ('"summary"', '"threat_level"', '"objects"', "low|medium|high|critical"):
        assert key in p
    assert build_prompt(p) == p  # idempotent
    assert JSON_INSTRUCTION in build_prompt("")  # default camera prompt
    assert build_prompt("").split("\n")[0].strip()


# ----------------------------------------------------------------------------- parsing


def test_parse_well_formed_json_answer():
    raw = '{"summary": "A man walks a dog.", "threat_level": "low", "objects": ["man", "dog"]}'
    a = parse_answer(raw)
    assert a == VLMAnswer(summary="A man walks a dog.", threat_level="low", objects=["man", "dog"], raw=raw)


def test_parse_json_inside_fences_and_chatter():
    raw = (
        'Sure, here it is:\n```json\n{"summary": "Smoke rises from a car",'
        ' "threat_level": "Critical", "objects": ["car", {"name": "smoke"}],}\n```'
    )
    a = parse_answer(raw)
    assert a.summary == "Smoke rises from a car"
    assert a.threat_level == "critical"
    assert a.objects == ["car", "smoke"]
    assert a.raw == raw


def test_parse_json_normalises_levels_and_objects():
    a = parse_answer('{"summary": "Someone at the gate", "threat_level": "moderate", "objects": "person, gate"}')
    assert a.threat_level == "medium"
    assert a.objects == ["person", "gate"]
    b = parse_answer('{"summary": "x", "threat_level": "purple"}')
    assert b.threat_level is None and b.objects == []


def test_parse_keyword_fallback():
    a = parse_answer("A person is lying on the floor near the door.")
    assert a.summary == "A person is lying on the floor near the door."
    assert a.threat_level == "high"
    assert a.objects == []
    assert parse_answer("Thick smoke fills the corridor").threat_level == "critical"
    assert parse_answer("Nothing unusual, an empty parking lot").threat_level == "low"
    assert parse_answer("A red car is parked").threat_level is None
    assert parse_answer("no fire visible, the scene is normal").threat_level == "low"  # negation
    assert parse_answer("assistant: threat level: HIGH. Two men").threat_level == "high"
    assert parse_answer("assistant: a cat").summary == "a cat"


def test_infer_threat_level_strongest_keyword_wins():
    assert infer_threat_level("a man fell, then a fight started") == "critical"
    assert infer_threat_level("someone is loitering") == "medium"
    assert infer_threat_level("") is None


@pytest.mark.parametrize(
    "garbage",
    ["", None, "{{{ ]] \"", '{"summary": 5}', "[1, 2, 3]", '{"objects": ["a"]', "\x00\x01 ���", "x" * 5000, 42],
)
def test_parse_never_raises_on_garbage(garbage):
    a = parse_answer(garbage)
    assert isinstance(a, VLMAnswer)
    assert isinstance(a.summary, str)
    assert a.threat_level in THREAT_LEVELS + (None,)
    assert isinstance(a.objects, list)
    assert len(a.summary) <= 500


# ----------------------------------------------------------------------------- loading errors


def test_missing_model_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        TransformersVLM(model_path=str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty.*not a saved model"):
        TransformersVLM(model_path=str(empty))
    with pytest.raises(ValueError, match="model_path"):
        TransformersVLM()


# ----------------------------------------------------------------------------- tiny model


def test_transformers_vlm_describes_a_batch_in_one_generate(tiny_vlm, monkeypatch):
    vlm = tiny_vlm
    assert vlm.name == "transformers"
    assert vlm.max_batch == 8
    assert vlm.device == "cpu"
    assert vlm.tokenizer.padding_side == "left"
    assert type(vlm.processor.image_processor).__name__.endswith("Pil")

    calls = []
    real_generate = vlm.model.generate

    def counting_generate(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real_generate(**kwargs)

    monkeypatch.setattr(vlm.model, "generate", counting_generate)
    answers = vlm.describe_batch(_images(), ["Watch the door.", "Watch the gate.", ""])
    assert calls == [3]  # one batched generate for the three images
    assert len(answers) == 3
    for a in answers:
        assert isinstance(a, VLMAnswer)
        assert isinstance(a.summary, str)
        # random weights -> garbage words, never JSON; handled by the fallback parser
        assert a.raw.strip(), "the tiny model generated nothing"
        assert a.threat_level in THREAT_LEVELS + (None,)
        assert a.objects == []


def test_transformers_vlm_is_deterministic_and_skips_non_images(tiny_vlm):
    img = _images()[0]
    first = tiny_vlm.describe(img, "Watch the door.")
    again = tiny_vlm.describe_batch([None, img], ["x", "Watch the door."])
    assert again[0] is None
    assert again[1] == first  # greedy decoding, same padding-free input


def test_transformers_vlm_parses_json_the_model_returns(tiny_vlm, monkeypatch):
    seen = {}

    def fake_generate(pil_images, texts):
        seen["texts"] = texts
        seen["sizes"] = [im.size for im in pil_images]
        return ['{"summary": "A person fell", "threat_level": "high", "objects": ["person"]}', "garbage words"]

    monkeypatch.setattr(tiny_vlm, "_generate", fake_generate)
    answers = tiny_vlm.describe_batch(_images()[:2], ["Watch the stairs.", "Watch the gate."])
    assert answers[0].summary == "A person fell"
    assert answers[0].threat_level == "high"
    assert answers[0].objects == ["person"]
    assert answers[1].summary == "garbage words" and answers[1].threat_level is None
    # the processor's chat template was used, with its image token and the JSON instruction
    assert all("<image>" in t and JSON_INSTRUCTION in t for t in seen["texts"])
    assert "Watch the stairs." in seen["texts"][0] and seen["texts"][0].startswith("user")
    assert seen["sizes"] == [(64, 48), (30, 30)]  # PIL (width, height)


def test_bgr_is_converted_to_rgb(tiny_vlm, monkeypatch):
    seen = {}

    def fake_generate(pil_images, texts):
        seen["images"] = pil_images
        return ["ok"] * len(pil_images)

    monkeypatch.setattr(tiny_vlm, "_generate", fake_generate)
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in BGR
    tiny_vlm.describe(bgr, "x")
    im = seen["images"][0]
    assert im.mode == "RGB"
    assert im.getpixel((0, 0)) == (0, 0, 255)


def test_plain_prompt_without_chat_template(tmp_path):
    path = build_tiny_vlm(tmp_path / "no_template", chat_template=False)
    vlm = TransformersVLM(model_path=str(path), device="cpu", max_new_tokens=4)
    text = vlm.format_prompt("Watch the door.")
    assert text.startswith("USER: <image>\nWatch the door.")
    assert text.endswith("ASSISTANT:")
    answers = vlm.describe_batch(_images()[:2], ["a", "b"])
    assert [type(a) for a in answers] == [VLMAnswer, VLMAnswer]


def test_pillow_fallback_when_processor_needs_torchvision(tiny_vlm_path, monkeypatch):
    import transformers

    def needs_torchvision(*args, **kwargs):
        raise ImportError("CLIPImageProcessor requires the Torchvision library but it was not found")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", needs_torchvision)
    vlm = TransformersVLM(model_path=str(tiny_vlm_path), device="cpu", max_new_tokens=4)
    assert vlm.used_pil_fallback is True
    assert type(vlm.processor).__name__ == "LlavaProcessor"
    assert type(vlm.processor.image_processor).__name__ == "CLIPImageProcessorPil"
    assert vlm.processor.num_additional_image_tokens == 1
    assert vlm.processor.chat_template
    answers = vlm.describe_batch(_images(), ["a", "b", "c"])
    assert all(isinstance(a, VLMAnswer) for a in answers)


def test_pillow_fallback_from_the_saved_config(tiny_vlm_path, monkeypatch):
    """Even when AutoImageProcessor cannot give the pil backend, the class name maps to ...Pil."""
    import transformers

    from inference.modelfiles import pil_image_processor

    def broken(*args, **kwargs):
        raise ImportError("requires torchvision")

    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", broken)
    ip = pil_image_processor(tiny_vlm_path)
    assert type(ip).__name__ == "CLIPImageProcessorPil"
    assert ip.crop_size == {"height": 32, "width": 32}


def test_other_load_errors_are_not_swallowed(tiny_vlm_path, monkeypatch):
    import transformers

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", broken)
    with pytest.raises(RuntimeError, match="disk on fire") as info:
        TransformersVLM(model_path=str(tiny_vlm_path), device="cpu")
    assert str(tiny_vlm_path) in str(info.value)
