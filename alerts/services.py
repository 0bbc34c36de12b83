"""Alert routing. Filled in by the alerts work (issue 4)."""


def alerts_route_events(*, event_ids: list) -> None:
    """Called after events are stored or updated; routes them to the right people."""
    return None
