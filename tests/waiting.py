"""Waiting for something that happens in another thread or process, without sleeping longer than needed."""

import time


def wait_for(predicate, timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
