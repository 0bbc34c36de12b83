"""Rendering of alert messages: subject, plain text (email, Apprise) and JSON (webhook, in-app).

Pure functions of already-loaded rows; no queries except through the serializer's relations
(``select_related('camera')`` beforehand).
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings

from inference.base import SEVERITIES

from .transports import Message


def event_url(event) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/events/{event.pk}/"


def event_summary(event) -> str:
    lines = (event.description or "").strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not text:
        text = "Anomaly detected"
    return text if len(text) <= 140 else text[:139] + "…"


def event_title(event) -> str:
    return f"{event.severity.upper()} on {event.camera.name}: {event_summary(event)}"


def _when(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "?"


def event_json(event, similar: int = 0) -> dict:
    from events.serializers import EventOutputSerializer

    data = dict(EventOutputSerializer(event).data)
    data["url"] = event_url(event)
    data["similar_suppressed"] = similar
    return data


def _report_lines(reports: list[dict]) -> list[str]:
    lines = []
    for r in reports:
        lines.append(
            f"{r['count']} similar alert{'s' if r['count'] != 1 else ''} suppressed: {r['severity']} "
            f"'{r['kind']}' on {r['camera_name']} between {_when(r['first'])} and {_when(r['last'])}."
        )
    return lines


def summarize_reports(items) -> list[dict]:
    """Suppressed items grouped by camera, kind and severity (for 'N similar were suppressed')."""
    groups: dict[tuple, dict] = {}
    for item in items:
        key = (item.camera_id, item.kind, item.severity)
        g = groups.setdefault(key, {"camera": item.camera_id, "camera_name": item.camera.name, "kind": item.kind,
                                    "severity": item.severity, "count": 0, "first": item.created_at,
                                    "last": item.created_at})
        g["count"] += 1
        g["first"], g["last"] = min(g["first"], item.created_at), max(g["last"], item.created_at)
    return list(groups.values())


def _reports_json(reports: list[dict]) -> list[dict]:
    return [{**r, "first": r["first"].isoformat(), "last": r["last"].isoformat()} for r in reports]


def render_alert(*, delivery, items: list, similar: dict[int, int], reports: list[dict]) -> Message:
    """An immediate alert (one event) or a digest (several), with suppression counts."""
    window_min = max(1, round(settings.ALERT_SUPPRESS_SECONDS / 60))
    events = [(item, item.event) for item in items]
    report_lines = _report_lines(reports)
    total_similar = sum(similar.get(item.pk, 0) for item, _ in events)
    if delivery.mode == delivery.Mode.DIGEST:
        counts = Counter(e.severity for _, e in events)
        by_level = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts[s])
        subject = f"Digest: {len(events)} event{'s' if len(events) != 1 else ''} ({by_level})"
        lines = [f"{len(events)} event{'s' if len(events) != 1 else ''} since the last digest:", ""]
        for item, event in events:
            extra = f" (+{similar[item.pk]} similar)" if similar.get(item.pk) else ""
            lines.append(f"- [{event.severity.upper()}] {event.camera.name} at {_when(event.started_at)}: "
                         f"{event_summary(event)}{extra}")
            lines.append(f"  {event_url(event)}")
        kind = "digest"
    else:
        item, event = events[0]
        subject = f"[{event.severity.upper()}] {event.camera.name}: {event_summary(event)}"
        lines = [
            f"{event.severity.upper()} event on {event.camera.name} at {_when(event.started_at)}.",
            "",
            (event.description or "").strip() or "Anomaly detected.",
            "",
            f"Open: {event_url(event)}",
        ]
        if similar.get(item.pk):
            lines.append(f"(+{similar[item.pk]} similar within {window_min} min, not sent separately)")
        kind = "alert"
    if report_lines:
        lines += ["", "Earlier:"] + [f"- {line}" for line in report_lines]
    text = "\n".join(lines)
    payload = {
        "type": kind,
        "delivery": delivery.pk,
        "severity": max((e.severity for _, e in events), key=SEVERITIES.index),
        "events": [event_json(e, similar.get(i.pk, 0)) for i, e in events],
        "suppressed": {"similar": total_similar, "earlier": _reports_json(reports)},
        "subject": subject,
        "text": text,
    }
    if kind == "alert":
        payload["event"] = payload["events"][0]
    return Message(subject=subject[:300], text=text, payload=payload)


def render_in_app(*, delivery, item, similar: int, reports: list[dict]) -> Message:
    event = item.event
    payload = {
        "event": str(event.pk),
        "camera": event.camera_id,
        "camera_name": event.camera.name,
        "severity": event.severity,
        "title": event_title(event),
        "url": event_url(event),
        "delivery": delivery.pk,
        "similar_suppressed": similar,
        "earlier_suppressed": sum(r["count"] for r in reports),
    }
    return Message(subject=payload["title"][:300], text=payload["title"], payload=payload)


def render_test(*, delivery, channel) -> Message:
    subject = f"Test alert for '{channel.name}'"
    text = (f"This is a test alert from {settings.SITE_URL.rstrip('/')}/ for the {channel.kind} channel "
            f"'{channel.name}'. If you can read it, alerts will reach you here.")
    payload = {"type": "test", "delivery": delivery.pk, "channel": channel.pk, "severity": None, "events": [],
               "suppressed": {"similar": 0, "earlier": []}, "subject": subject, "text": text}
    return Message(subject=subject, text=text, payload=payload)
