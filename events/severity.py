"""The severities of events, lowest first: the vocabulary events, alerts and their messages share.

An agent's decision (inference.base.THREAT_LEVELS, the same four words) becomes the event's severity.
"""

SEVERITIES = ("low", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    """0 for low up to 3 for critical; -1 for anything else."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1
