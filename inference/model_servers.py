"""VLM and LLM agent backends on a model server the site runs (OpenAI chat-completions protocol).

* ``OpenAIVLM`` ("openai" VLM): sends the key frame (and optionally frames before and after
  it) as images and parses the JSON answer as the transformers VLM does.
* ``OpenAIPolicy`` ("openai" agent): asks the model for the JSON decision; an unusable answer
  or a failed call falls back to ``RulePolicy``, like the local LLM policy.

Config (the camera's ``vlm_params`` / ``agent_params``, or the site default):
``base_url`` (``http://host:11434/v1`` for Ollama, ``http://host:8080/v1`` for llama.cpp
server, ``http://host:8000/v1`` for vLLM), ``model``, ``api_key`` (optional), ``timeout``
(seconds, 20), ``max_image_px`` (1024), ``max_tokens`` (300). The worker adds
``allowed_networks`` (a callable: the site's model-server networks) and ``networks_where``.

Nothing is loaded in the worker: creating one of these only checks the settings.
No Django here.
"""

from __future__ import annotations

import logging
import threading

from .agent import LLMPolicy, RulePolicy, check_allowed_actions, episode_prompt
from .base import VLMAnswer, VLMBackend
from .openai_chat import CLIENT_PARAMS, ChatError, client_from
from .vlm import build_prompt, parse_answer

logger = logging.getLogger(__name__)

__all__ = ["CLIENT_PARAMS", "OpenAIPolicy", "OpenAIVLM", "client_from"]

class OpenAIVLM(VLMBackend):
    """A VLM on a model server. Thread-safe; each call is one HTTP request per image."""

    name = "openai"
    max_batch = 4

    def __init__(self, **config):
        super().__init__(**config)
        self.client = client_from(config, what="VLM")
        self._lock = threading.Lock()
        #: Requests made, failed, and the last failure's reason (figures and the "test" action).
        self.requests = 0
        self.failures = 0
        self.last_error = ""

    def describe_batch(self, images, prompts):
        if len(images) != len(prompts):
            raise ValueError(f"describe_batch: {len(images)} images but {len(prompts)} prompts")
        return [self.describe_frames([image], prompt) for image, prompt in zip(images, prompts)]

    def describe_frames(self, frames, prompt: str, *, raise_errors: bool = False) -> VLMAnswer | None:
        """One answer about ``frames`` (the key frame, or frames around it in time order); None when
        the server gave none (the reason is logged and kept in ``last_error``). ``raise_errors``: raise
        the ``ChatError`` instead (counted the same way), for a caller that tells timeouts apart."""
        frames = [f for f in frames if f is not None]
        if not frames:
            return None
        text = build_prompt(prompt)
        if len(frames) > 1:
            text = f"These {len(frames)} images are consecutive moments of one camera, oldest first.\n{text}"
        with self._lock:
            self.requests += 1
        try:
            reply = self.client.complete(text, frames)
        except ChatError as exc:
            with self._lock:
                self.failures += 1
                self.last_error = str(exc)
            logger.warning("VLM: %s", exc)
            if raise_errors:
                raise
            return None
        return parse_answer(reply.text)

    def __repr__(self) -> str:
        return f"<OpenAIVLM {self.client.model} at {self.client.base_url}>"


class OpenAIPolicy(LLMPolicy):
    """The LLM agent on a model server; falls back to ``RulePolicy`` when it gives no usable answer.

    Extra params: ``rules`` (the fallback's ``RulePolicy`` params).
    """

    name = "openai"
    #: Nothing is loaded: the pool keys a server policy on its whole config.
    weight_params = ()

    def __init__(self, **params):  # noqa: D401 - no local model: LLMPolicy.__init__ is not called
        self.params = params
        self.client = client_from(params, what="agent")
        self.fallback = RulePolicy(**(params.get("rules") or {}))
        self.allowed_actions = check_allowed_actions(params.get("allowed_actions"))
        self.generate_calls = 0
        self.fallbacks = 0

    def format_prompt(self, episode) -> str:
        return episode_prompt(episode)

    def _generate(self, prompt: str) -> str:
        self.generate_calls += 1
        return self.client.complete(prompt).text

    def __repr__(self) -> str:
        return f"<OpenAIPolicy {self.client.model} at {self.client.base_url}>"
