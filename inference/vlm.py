"""Vision-language backends that describe an episode's key frame.

* ``NoVLM`` ("none"): describes nothing (returns None), for deployments without a model.
* ``TransformersVLM`` ("transformers"): any local image-text-to-text model that
  ``AutoProcessor`` / ``AutoModelForImageTextToText`` can load from a folder
  (Llava, Qwen2-VL, SmolVLM, ...). Never touches the network.

The prompt asks for a small JSON object; ``parse_answer`` turns whatever the
model said into a ``VLMAnswer`` and never raises.

No Django imports here: the backends run the same in the live loop, in
evaluation commands and in benchmarks.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from .base import THREAT_LEVELS, VLMAnswer, VLMBackend
from .jsontext import find_json_object
from .modelfiles import check_model_dir, mentions_torchvision, pil_image_processor, read_json, resolve_device, resolve_dtype

# There is no network: never let a load try the hub first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CAMERA_PROMPT",
    "JSON_INSTRUCTION",
    "NoVLM",
    "TransformersVLM",
    "build_prompt",
    "infer_threat_level",
    "parse_answer",
    "resolve_device",
    "resolve_dtype",
]

DEFAULT_CAMERA_PROMPT = "Describe what is happening in this surveillance camera image."

JSON_INSTRUCTION = (
    "Answer with one JSON object only, no other text: "
    '{"summary": "<one short sentence>", '
    '"threat_level": "low|medium|high|critical", '
    '"objects": ["<visible object>", ...]}'
)


def build_prompt(camera_prompt: str) -> str:
    """The camera's own prompt followed by the JSON-answer instruction.

    Idempotent: a prompt that already carries the instruction is returned unchanged.
    An empty camera prompt is replaced by ``DEFAULT_CAMERA_PROMPT``.
    """
    text = (camera_prompt or "").strip() or DEFAULT_CAMERA_PROMPT
    if JSON_INSTRUCTION in text:
        return text
    return f"{text}\n{JSON_INSTRUCTION}"


# --------------------------------------------------------------------------- parsing

_THREAT_SYNONYMS = {
    "low": "low",
    "none": "low",
    "no": "low",
    "no threat": "low",
    "minimal": "low",
    "minor": "low",
    "normal": "low",
    "safe": "low",
    "benign": "low",
    "medium": "medium",
    "moderate": "medium",
    "mid": "medium",
    "elevated": "medium",
    "suspicious": "medium",
    "high": "high",
    "severe": "high",
    "serious": "high",
    "dangerous": "high",
    "critical": "critical",
    "extreme": "critical",
    "emergency": "critical",
}

# Keywords for the plain-text fallback, strongest first. Word-boundary matches,
# an immediately preceding negation ("no fire", "not fighting") does not count.
_KEYWORD_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "critical",
        ("fire", "flames", "smoke", "weapon", "weapons", "gun", "guns", "firearm", "rifle", "pistol",
         "knife", "knives", "fight", "fighting", "blood", "bleeding", "explosion", "shooting", "stabbing"),
    ),
    (
        "high",
        ("fall", "fell", "fallen", "falling", "lying", "collapsed", "collapse", "unconscious", "injured",
         "intruder", "break-in", "breaking in", "attack", "assault", "trespasser"),
    ),
    (
        "medium",
        ("suspicious", "loitering", "running", "trespassing", "climbing", "masked", "crowd", "vandalism"),
    ),
    (
        "low",
        ("nothing unusual", "normal", "no threat", "no activity", "empty", "quiet", "calm", "routine"),
    ),
)

_NEGATIONS = {"no", "not", "without", "nor", "never"}

_EXPLICIT_LEVEL = re.compile(
    r"\b(?:threat[_ ]?level|threat|severity|danger)[\"']?\s*[:=\-]?\s*(?:is\s+)?[\"']?([a-z]+)", re.IGNORECASE
)

_FENCE = re.compile(r"```(?:json|JSON)?")
_ROLE_PREFIX = re.compile(r"^\s*(?:assistant|answer|response|output)\s*[:>]\s*", re.IGNORECASE)
_MAX_SUMMARY = 500


def _normalise_level(value) -> str | None:
    if not isinstance(value, str):
        return None
    key = re.sub(r"[^a-z ]+", " ", value.lower()).strip()
    key = re.sub(r"\s+", " ", key)
    if key in _THREAT_SYNONYMS:
        return _THREAT_SYNONYMS[key]
    # "high threat", "medium-high" -> the strongest severity word in it
    found = [s for s in THREAT_LEVELS if re.search(rf"\b{s}\b", key)]
    return max(found, key=THREAT_LEVELS.index) if found else None


def _keyword_hit(text: str, keyword: str) -> bool:
    for m in re.finditer(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])", text):
        before = text[: m.start()].split()
        if before and before[-1].strip(".,;:!?\"'()") in _NEGATIONS:
            continue
        return True
    return False


def infer_threat_level(text: str) -> str | None:
    """Severity suggested by a free-text description, or None when nothing points to one.

    An explicit "threat level: high" wins; otherwise the strongest keyword found.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    lowered = text.lower()
    m = _EXPLICIT_LEVEL.search(lowered)
    if m:
        level = _normalise_level(m.group(1))
        if level:
            return level
    for level, keywords in _KEYWORD_LEVELS:
        if any(_keyword_hit(lowered, k) for k in keywords):
            return level
    return None


def _clean_text(text: str) -> str:
    text = _FENCE.sub(" ", text)
    text = _ROLE_PREFIX.sub("", text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > _MAX_SUMMARY:
        text = text[: _MAX_SUMMARY - 1].rstrip() + "…"
    return text


def _objects(value) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;\n]", value)]
    if not isinstance(value, (list, tuple)):
        return []
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):  # {"name": "car", ...}
            item = item.get("name") or item.get("label") or item.get("object")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            item = re.sub(r"\s+", " ", item).strip()
            if item and item not in out:
                out.append(item[:80])
    return out[:50]


def parse_answer(text) -> VLMAnswer:
    """Turn a model's raw output into a ``VLMAnswer``. Never raises.

    A JSON object with a "summary" (or "description"/"caption") is used as is
    (threat level normalised to one of THREAT_LEVELS, objects to a list of strings).
    Anything else becomes ``summary`` = the cleaned text, ``threat_level`` inferred
    from keywords (or None), ``objects`` = [].
    """
    try:
        raw = text if isinstance(text, str) else ("" if text is None else str(text))
    except Exception:  # pragma: no cover - str() of an odd object failing
        raw = ""
    try:
        data = find_json_object(raw)
        if data is not None:
            summary = None
            for key in ("summary", "description", "caption", "text", "answer"):
                if isinstance(data.get(key), str) and data[key].strip():
                    summary = _clean_text(data[key])
                    break
            if summary is not None:
                level = None
                for key in ("threat_level", "threat", "severity", "level"):
                    if key in data:
                        level = _normalise_level(data[key])
                        if level:
                            break
                objects = _objects(data.get("objects", data.get("items", [])))
                return VLMAnswer(summary=summary, threat_level=level, objects=objects, raw=raw)
        summary = _clean_text(raw)
        return VLMAnswer(summary=summary, threat_level=infer_threat_level(summary), objects=[], raw=raw)
    except Exception:  # pragma: no cover - belt and braces: garbage must never raise
        logger.exception("could not parse VLM output")
        return VLMAnswer(summary=str(raw)[:_MAX_SUMMARY], threat_level=None, objects=[], raw=str(raw))


# --------------------------------------------------------------------------- backends


class NoVLM(VLMBackend):
    """No model: every key frame stays undescribed."""

    name = "none"
    max_batch = 1024

    def describe_batch(self, images, prompts):
        return [None for _ in images]


def _load_processor(path: Path):
    """``AutoProcessor`` for ``path``; with a pillow image processor when torchvision is missing.

    Returns ``(processor, used_pil_fallback)``.
    """
    import transformers
    from transformers import AutoProcessor, AutoTokenizer

    try:
        return AutoProcessor.from_pretrained(str(path), local_files_only=True), False
    except Exception as exc:
        if not mentions_torchvision(exc):
            raise
        original = exc
    logger.warning("processor in %s needs torchvision; using the pillow image processor", path)

    class_name = (
        read_json(path / "processor_config.json").get("processor_class")
        or read_json(path / "preprocessor_config.json").get("processor_class")
        or read_json(path / "tokenizer_config.json").get("processor_class")
    )
    image_processor = pil_image_processor(path)
    processor_cls = getattr(transformers, class_name, None) if class_name else None
    if processor_cls is None:
        # No multimodal processor class: the image processor alone cannot build prompts.
        raise RuntimeError(f"cannot build a processor for {str(path)!r} without torchvision") from original
    args = []
    for attribute in processor_cls.get_attributes():
        if "tokenizer" in attribute:
            args.append(AutoTokenizer.from_pretrained(str(path), local_files_only=True))
        elif attribute == "image_processor":
            args.append(image_processor)
        else:
            raise RuntimeError(
                f"cannot rebuild {class_name} ({attribute}) for {str(path)!r} without torchvision"
            ) from original
    processor_dict, kwargs = processor_cls.get_processor_dict(str(path), local_files_only=True)
    return processor_cls.from_args_and_dict(args, processor_dict, **kwargs), True


class TransformersVLM(VLMBackend):
    """A local image-text-to-text model (``AutoModelForImageTextToText``).

    Config:
        model_path: local folder with the saved model and processor (required).
        device: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1", ...
        dtype: "auto" (bfloat16/float16 on cuda, float32 on cpu), "float32", "float16", "bfloat16".
        max_new_tokens: 64.
        max_batch: 8 (images per generate()).
        prompt_template: used when the processor has no chat template;
            default ``"USER: {image}\\n{prompt} ASSISTANT:"``.
        use_chat_template: True (set False to always use ``prompt_template``).

    One instance is shared by every camera of a worker: ``describe_batch`` holds a
    lock around preprocessing + ``generate()``.
    """

    name = "transformers"
    max_batch = 8
    DEFAULT_PROMPT_TEMPLATE = "USER: {image}\n{prompt} ASSISTANT:"

    def __init__(self, **config):
        super().__init__(**config)
        self.model_path = check_model_dir(config.get("model_path"), "TransformersVLM")
        self.max_new_tokens = int(config.get("max_new_tokens", 64))
        self.max_batch = max(1, int(config.get("max_batch", 8)))
        self.prompt_template = config.get("prompt_template") or self.DEFAULT_PROMPT_TEMPLATE
        self.use_chat_template = bool(config.get("use_chat_template", True))
        self.device = resolve_device(config.get("device", "auto"))
        self.dtype = resolve_dtype(config.get("dtype", "auto"), self.device)
        self._lock = threading.Lock()
        #: generate() calls and images described, for stats and tests.
        self.generate_calls = 0
        self.images_described = 0
        self._load()

    # -- loading

    def _load(self) -> None:
        from transformers import AutoModelForImageTextToText

        try:
            self.processor, self.used_pil_fallback = _load_processor(self.model_path)
        except Exception as exc:
            raise RuntimeError(f"TransformersVLM: cannot load the processor from {str(self.model_path)!r}: {exc}") from exc
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                str(self.model_path), local_files_only=True, dtype=self.dtype
            )
        except Exception as exc:
            raise RuntimeError(
                f"TransformersVLM: cannot load an image-text-to-text model from {str(self.model_path)!r}: {exc}"
            ) from exc
        self.model = model.to(self.device).eval()

        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None and tokenizer.eos_token is not None:
                tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.image_token = getattr(self.processor, "image_token", None) or "<image>"

    # -- prompting

    def format_prompt(self, prompt: str) -> str:
        """The full text for one image: chat template when the processor has one."""
        text = build_prompt(prompt)
        template = getattr(self.processor, "chat_template", None)
        if self.use_chat_template and template:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            try:
                out = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                if isinstance(out, list):
                    out = out[0]
                if isinstance(out, str) and out:
                    return out
            except Exception:
                logger.warning("chat template of %s failed; using the plain prompt", self.model_path, exc_info=True)
        return self.prompt_template.format(image=self.image_token, prompt=text)

    # -- generation

    def _generate(self, pil_images: list, texts: list[str]) -> list[str]:
        """One batched generate() for ``pil_images``; the decoded new text of each."""
        import torch

        with self._lock, torch.inference_mode():
            inputs = self.processor(images=pil_images, text=texts, return_tensors="pt", padding=True)
            moved = {}
            for key, value in inputs.items():
                if isinstance(value, torch.Tensor):
                    if torch.is_floating_point(value):
                        value = value.to(self.device, dtype=self.dtype)
                    else:
                        value = value.to(self.device)
                moved[key] = value
            gen_kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False}
            if self.tokenizer is not None and self.tokenizer.pad_token_id is not None:
                gen_kwargs["pad_token_id"] = self.tokenizer.pad_token_id
            output = self.model.generate(**moved, **gen_kwargs)
            self.generate_calls += 1
            self.images_described += len(pil_images)
        new_tokens = output[:, moved["input_ids"].shape[1] :]
        decoder = self.tokenizer if self.tokenizer is not None else self.processor
        return list(decoder.batch_decode(new_tokens, skip_special_tokens=True))

    def describe_batch(self, images, prompts):
        """One answer per image, in order; None for an entry that is not an image.

        All valid images go through one ``generate()`` (split into chunks of
        ``max_batch`` when more are given). Unparseable output still gives an answer.
        """
        if len(images) != len(prompts):
            raise ValueError(f"describe_batch: {len(images)} images but {len(prompts)} prompts")
        from .images import to_pil_rgb  # OpenCV: only where frames are turned into pictures (not the web)

        answers: list[VLMAnswer | None] = [None] * len(images)
        todo = []
        for i, (image, prompt) in enumerate(zip(images, prompts)):
            pil = to_pil_rgb(image)
            if pil is not None:
                todo.append((i, pil, self.format_prompt(prompt)))
        for start in range(0, len(todo), self.max_batch):
            chunk = todo[start : start + self.max_batch]
            texts = self._generate([c[1] for c in chunk], [c[2] for c in chunk])
            for (i, _, _), text in zip(chunk, texts):
                answers[i] = parse_answer(text)
        return answers

    def __repr__(self) -> str:
        return f"<TransformersVLM {self.model_path} on {self.device} ({str(self.dtype).replace('torch.', '')})>"
