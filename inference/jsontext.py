"""JSON objects inside free model text: the first balanced ``{...}`` that parses (trailing commas forgiven).

Shared by the VLM answer parser and the LLM agent's decision parser.
"""

from __future__ import annotations

import json
import re


def json_candidates(text: str):
    """Balanced ``{...}`` substrings of ``text``, outermost first, left to right."""
    depth = 0
    start = None
    in_str = False
    escape = False
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0 and start is not None:
                yield text[start : i + 1]
                start = None


def find_json_object(text: str) -> dict | None:
    """The first JSON object found in ``text``, or None."""
    for candidate in json_candidates(text):
        for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
            try:
                value = json.loads(attempt)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    return None


