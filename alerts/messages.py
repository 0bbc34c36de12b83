"""Rendering of alert messages: subject, plain text (email, Apprise) and JSON (webhook, in-app).

Every text is rendered in the recipient's language (``User.language``, else ``LANGUAGE_CODE``)
with times in the recipient's time zone (``User.time_zone``); a group's channel has no single
recipient and gets the site defaults. Translations: locale/ko/LC_MESSAGES/django.po.

Pure functions of already-loaded rows; no queries except through the serializer's relations
(``select_related('camera')`` beforehand).
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from events.describe import label_name
from events.reasons import event_description
from events.serializers import EventOutputSerializer
from events.severity import SEVERITIES

from .transports import Message

#: Severity names as alerts show them (the same msgids as the pages': "Critical" -> "심각").
SEVERITY_LABELS = {
    "low": gettext_noop("Low"),
    "medium": gettext_noop("Medium"),
    "high": gettext_noop("High"),
    "critical": gettext_noop("Critical"),
}


def _severity(severity: str) -> str:
    """The severity in the active language, lower case ("medium"; "보통")."""
    label = SEVERITY_LABELS.get(severity)
    return _(label).lower() if label else severity


def _severity_tag(severity: str) -> str:
    """The severity in the active language, upper case ("CRITICAL"; "심각")."""
    label = SEVERITY_LABELS.get(severity)
    return _(label).upper() if label else severity.upper()


def recipient_of(delivery):
    """The user a delivery speaks to: its recipient, else its channel's owner; None for a group."""
    if getattr(delivery, "recipient_id", None):
        return delivery.recipient
    channel = getattr(delivery, "channel", None)
    if channel is not None and channel.owner_id:
        return channel.owner
    return None


def _language(user) -> str:
    languages = {code for code, _name in settings.LANGUAGES}
    language = (getattr(user, "language", "") or "").strip()
    if language in languages:
        return language
    base = language.split("-")[0]
    return base if base in languages else settings.LANGUAGE_CODE


def _time_zone(user):
    for name in (getattr(user, "time_zone", "") or "", settings.TIME_ZONE):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


@contextmanager
def recipient_locale(user):
    """Translations and times of ``user`` (None: the site's) for what is rendered inside."""
    with translation.override(_language(user)), timezone.override(_time_zone(user)):
        yield


def event_url(event) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/events/{event.pk}/"


#: What a zone rule that fired says, by the zone's kind (inference/zone_specs.py KINDS).
ZONE_PHRASES = {
    "forbidden": gettext_noop("In the forbidden zone '%(name)s'."),
    "loiter": gettext_noop("Loitering in the zone '%(name)s'."),
    "line": gettext_noop("Crossed the line '%(name)s'."),
}
ZONE_PHRASE = gettext_noop("In the zone '%(name)s'.")
MAX_ZONES = 3


def event_zones(event) -> list[dict]:
    """The zones the detector reported for the event (``details["zones"]``, or the worker's
    ``details["detector_details"]["zones"]``): ``[{"name", "kind", ...}]``, each name once."""
    details = event.details if isinstance(event.details, dict) else {}
    inner = details.get("detector_details")
    zones = details.get("zones") or (inner.get("zones") if isinstance(inner, dict) else None)
    seen, found = set(), []
    for zone in zones if isinstance(zones, list) else ():
        if not isinstance(zone, dict) or not str(zone.get("name") or "").strip():
            continue
        name = str(zone["name"]).strip()[:60]
        if name not in seen:
            seen.add(name)
            found.append({**zone, "name": name})
    return found


def event_seen(event) -> str:
    """What the detector saw, in the active language: the objects (events/describe.py, else the
    labels) and the zones that fired ("A person behaving unusually. In the forbidden zone 'fence'.");
    "" when it reported neither."""
    parts = []
    objects = event.sentence
    labels = [label_name(x) for x in getattr(event, "label_list", [])]
    if not objects and labels:
        objects = _("Seen: %(labels)s.") % {"labels": ", ".join(labels)}
    if objects:
        parts.append(objects)
    for zone in event_zones(event)[:MAX_ZONES]:
        phrase = ZONE_PHRASES.get(str(zone.get("kind") or zone.get("rule") or ""), ZONE_PHRASE)
        parts.append(_(phrase) % {"name": zone["name"]})
    return " ".join(parts)


def event_summary(event) -> str:
    lines = event_description(event).strip().splitlines()
    text = lines[0].strip() if lines else event_seen(event)  # without a VLM: what the detector saw
    if not text:
        text = _("Anomaly detected")
    return text if len(text) <= 140 else text[:139] + "…"


def carries_description(delivery, event) -> bool:
    """Whether a sent message already told the event's description (its first line: the summary)."""
    if not (event.description or "").strip() or delivery.status != delivery.Status.SENT:
        return False
    with recipient_locale(delivery.recipient if delivery.recipient_id else None):  # as the message was written
        return event_summary(event) in f"{delivery.subject}\n{delivery.body}"


def message_id(delivery) -> str:
    """The email Message-ID of a delivery, the same at every attempt (a follow-up refers to it)."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    stamp = int(delivery.created_at.timestamp()) if delivery.created_at else 0
    return f"<alert-{delivery.pk}.{stamp}@{host}>"


def event_title(event) -> str:
    return _("%(severity)s on %(camera)s: %(summary)s") % {
        "severity": _severity_tag(event.severity), "camera": event.camera.name, "summary": event_summary(event)}


def _when(dt) -> str:
    """A time in the active time zone (the recipient's), with the zone's abbreviation."""
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S %Z") if dt else "?"


def event_json(event, similar: int = 0) -> dict:
    data = dict(EventOutputSerializer(event).data)
    data["url"] = event_url(event)
    data["similar_suppressed"] = similar
    return data


def _report_lines(reports: list[dict]) -> list[str]:
    lines = []
    for r in reports:
        lines.append(ngettext(
            "%(count)d similar alert suppressed: %(severity)s '%(kind)s' on %(camera)s between %(first)s and "
            "%(last)s.",
            "%(count)d similar alerts suppressed: %(severity)s '%(kind)s' on %(camera)s between %(first)s and "
            "%(last)s.",
            r["count"],
        ) % {"count": r["count"], "severity": _severity(r["severity"]), "kind": r["kind"],
             "camera": r["camera_name"], "first": _when(r["first"]), "last": _when(r["last"])})
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


def render_alert(*, delivery, items: list, similar: dict[int, int], reports: list[dict], escalation=None) -> Message:
    """An immediate alert (one event) or a digest (several), with suppression counts, in the recipient's language.

    ``escalation`` (an ``Escalation``): the alert is that escalation step's, and says so.
    """
    user = recipient_of(delivery)
    with recipient_locale(user):
        return _render_alert(delivery=delivery, items=items, similar=similar, reports=reports,
                             language=translation.get_language(), escalation=escalation)


def escalation_line(escalation) -> str:
    """"Escalation, step 2: not acknowledged for 25 minutes." in the active language."""
    return ngettext(
        "Escalation, step %(step)d: not acknowledged for %(minutes)d minute.",
        "Escalation, step %(step)d: not acknowledged for %(minutes)d minutes.",
        escalation.unacknowledged_minutes,
    ) % {"step": escalation.order, "minutes": escalation.unacknowledged_minutes}


def escalation_json(escalation) -> dict:
    return {"step": escalation.order, "after_minutes": escalation.after_minutes,
            "unacknowledged_minutes": escalation.unacknowledged_minutes, "rule": escalation.rule_id,
            "fired_at": escalation.fired_at.isoformat()}


def _render_alert(*, delivery, items, similar, reports, language, escalation=None) -> Message:
    window_min = max(1, round(settings.ALERT_SUPPRESS_SECONDS / 60))
    events = [(item, item.event) for item in items]
    report_lines = _report_lines(reports)
    total_similar = sum(similar.get(item.pk, 0) for item, _item in events)
    if delivery.mode == delivery.Mode.DIGEST:
        counts = Counter(e.severity for _item, e in events)
        by_level = ", ".join(_("%(count)d %(severity)s") % {"count": counts[s], "severity": _severity(s)}
                             for s in reversed(SEVERITIES) if counts[s])
        n = len(events)
        subject = ngettext("Digest: %(count)d event (%(levels)s)", "Digest: %(count)d events (%(levels)s)", n) % {
            "count": n, "levels": by_level}
        lines = [ngettext("%(count)d event since the last digest:", "%(count)d events since the last digest:", n)
                 % {"count": n}, ""]
        for incident, members in _by_incident(events):
            indent = ""
            if incident is not None:  # several events of one incident: listed together under it
                lines.append("- " + ngettext(
                    "Incident #%(number)d in area %(area)s: %(count)d event",
                    "Incident #%(number)d in area %(area)s: %(count)d events", len(members)) % {
                    "number": incident.pk, "area": incident.area.name, "count": len(members)})
                indent = "  "
            for item, event in members:
                extra = " " + _("(+%(count)d similar)") % {"count": similar[item.pk]} if similar.get(item.pk) else ""
                lines.append(indent + "- " + _("[%(severity)s] %(camera)s at %(when)s: %(summary)s") % {
                    "severity": _severity_tag(event.severity), "camera": event.camera.name,
                    "when": _when(event.started_at), "summary": event_summary(event)} + extra)
                lines.append(f"{indent}  {event_url(event)}")
        kind = "digest"
    else:
        item, event = events[0]
        subject = _("[%(severity)s] %(camera)s: %(summary)s") % {
            "severity": _severity_tag(event.severity), "camera": event.camera.name, "summary": event_summary(event)}
        lines = [
            _("%(severity)s event on %(camera)s at %(when)s.") % {
                "severity": _severity_tag(event.severity), "camera": event.camera.name,
                "when": _when(event.started_at)},
            "",
            event_description(event).strip() or event_seen(event) or _("Anomaly detected."),
            "",
            _("Open: %(url)s") % {"url": event_url(event)},
        ]
        seen = event_seen(event) if event_description(event).strip() else ""
        if seen:  # the description, then what the detector saw
            lines[4:4] = [seen, ""]
        if similar.get(item.pk):
            lines.append(_("(+%(count)d similar within %(minutes)d min, not sent separately)") % {
                "count": similar[item.pk], "minutes": window_min})
        if escalation is not None:
            subject = _("Escalation (step %(step)d): %(subject)s") % {"step": escalation.order, "subject": subject}
            lines = [escalation_line(escalation), ""] + lines
        kind = "alert"
    if report_lines:
        lines += ["", _("Earlier:")] + [f"- {line}" for line in report_lines]
    text = "\n".join(lines)
    payload = {
        "type": kind,
        "delivery": delivery.pk,
        "severity": max((e.severity for _item, e in events), key=SEVERITIES.index),
        "events": [event_json(e, similar.get(i.pk, 0)) for i, e in events],
        "suppressed": {"similar": total_similar, "earlier": _reports_json(reports)},
        "subject": subject,
        "text": text,
        "language": language,
    }
    if kind == "alert":
        payload["event"] = payload["events"][0]
    if escalation is not None:
        payload["escalation"] = escalation_json(escalation)
    return Message(subject=subject[:300], text=text, payload=payload, headers={"Message-ID": message_id(delivery)})


def _by_incident(events: list[tuple]) -> list[tuple]:
    """A digest's (item, event) pairs in order, those of one incident together: [(incident or None, pairs)].

    An incident with one event here is not named (the line is the event's, as without incidents)."""
    groups: dict[tuple, list] = {}
    for item, event in events:
        key = ("incident", event.incident_id) if event.incident_id else ("item", item.pk)
        groups.setdefault(key, []).append((item, event))
    return [(members[0][1].incident if key[0] == "incident" and len(members) > 1 else None, members)
            for key, members in groups.items()]


def _in_app_payload(event, *, title: str, delivery_id: int, similar: int, earlier: int, language: str) -> dict:
    """The ``notification`` message an open page receives about ``event`` (an alert or its update)."""
    return {
        "event": str(event.pk),
        "camera": event.camera_id,
        "camera_name": event.camera.name,
        "severity": event.severity,
        "title": title,
        "url": event_url(event),
        "delivery": delivery_id,
        "similar_suppressed": similar,
        "earlier_suppressed": earlier,
        "language": language,
    }


def render_in_app(*, delivery, item, similar: int, reports: list[dict], escalation=None) -> Message:
    event = item.event
    with recipient_locale(recipient_of(delivery)):
        title = event_title(event)
        if escalation is not None:
            title = _("Escalation (step %(step)d): %(subject)s") % {"step": escalation.order, "subject": title}
        language = translation.get_language()
    payload = _in_app_payload(event, title=title, delivery_id=delivery.pk, similar=similar,
                              earlier=sum(r["count"] for r in reports), language=language)
    if escalation is not None:
        payload["escalation"] = escalation_json(escalation)
    return Message(subject=payload["title"][:300], text=payload["title"], payload=payload)


def incident_line(event) -> str:
    """"Also on camera Door (area Yard): high – <what was seen>." in the active language (incident follow-ups)."""
    values = {"camera": event.camera.name, "severity": _severity(event.severity), "summary": event_summary(event)}
    incident = event.incident if event.incident_id else None
    if incident is None:  # its area (and so the incident) was deleted since
        return _("Also on camera %(camera)s: %(severity)s – %(summary)s") % values
    return _("Also on camera %(camera)s (area %(area)s): %(severity)s – %(summary)s") % {
        **values, "area": incident.area.name}


def incident_json(event) -> dict | None:
    incident = event.incident if event.incident_id else None
    if incident is None:
        return None
    return {"id": incident.pk, "area": incident.area_id, "area_name": incident.area.name}


def render_follow_up(*, delivery, first, item, previous_severity: str, head=None, reply: bool = True) -> Message:
    """A follow-up to the immediate alert ``first`` (two-stage alerts), in the recipient's language.

    Push channels get a short message linked to the first: the email is a reply to it (the same
    subject with "Re:", ``In-Reply-To`` and ``References`` naming its Message-ID), the webhook JSON
    says ``"type": "follow_up"``, ``"kind"`` and ``"follow_up_of"`` (the first delivery's id), Apprise
    gets "Update: <description>". In-app gets the first notification again, updated: the same
    ``delivery`` id (the thread's ``head``: the first's, or the alert an incident follow-up ``first``
    follows) with the new title, and ``"update": true``.

    Kind ``incident`` (another event of the incident the first alert was about): "Also on camera
    <name> (area <area>): <severity> – <what>" and the event's link. ``reply`` False (the recipient
    may no longer view the head's camera): the subject is the event's own, not a reply to the head's.
    """
    event = item.event
    head = head or first
    kind = delivery.follow_up_kind or delivery.FollowUpKind.DESCRIPTION
    description = event_description(event).strip()
    with recipient_locale(recipient_of(delivery)):
        language = translation.get_language()
        lines = []
        if kind == delivery.FollowUpKind.INCIDENT:
            lines.append(incident_line(event))
        else:
            if kind == delivery.FollowUpKind.DESCRIPTION and description:
                lines.append(_("Update: %(description)s") % {"description": description})
            if event.severity != previous_severity or kind == delivery.FollowUpKind.SEVERITY:
                lines.append(_("Severity now %(severity)s (was %(previous)s).") % {
                    "severity": _severity(event.severity), "previous": _severity(previous_severity)})
        lines += ["", _("Open: %(url)s") % {"url": event_url(event)}]
        text = "\n".join(lines)
        own_subject = _("[%(severity)s] %(camera)s: %(summary)s") % {
            "severity": _severity_tag(event.severity), "camera": event.camera.name, "summary": event_summary(event)}
        if delivery.medium == delivery.Medium.IN_APP:
            title = lines[0] if kind == delivery.FollowUpKind.INCIDENT else event_title(event)
        elif not reply:
            title = own_subject
        else:
            first_subject = (first.subject if first is not None else "") or own_subject
            title = first_subject if first_subject.startswith("Re: ") else f"Re: {first_subject}"
    first_id = first.pk if first is not None else None
    incident = incident_json(event)
    if delivery.medium == delivery.Medium.IN_APP:
        payload = _in_app_payload(
            event, title=title, delivery_id=head.pk if head is not None else delivery.pk,  # the one it updates
            similar=head.suppressed_count if head is not None else 0,
            earlier=head.reported_count if head is not None else 0, language=language)
        payload.update({
            "update": True,
            "kind": kind,
            "follow_up_of": first_id,
            "follow_up": delivery.pk,
            "text": lines[0],
        })
        if incident is not None:
            payload["incident"] = incident
        return Message(subject=title[:300], text=title, payload=payload)
    payload = {
        "type": "follow_up",
        "kind": kind,
        "follow_up_of": first_id,
        "thread": head.pk if head is not None else None,
        "delivery": delivery.pk,
        "severity": event.severity,
        "previous_severity": previous_severity,
        "description": description,
        "event": event_json(event),
        "incident": incident,
        "subject": title,
        "text": text,
        "language": language,
    }
    headers = {"Message-ID": message_id(delivery)}
    if first is not None:
        headers["In-Reply-To"] = message_id(first)
        # The thread from its head: mail clients group an incident's replies under the first alert.
        headers["References"] = " ".join(dict.fromkeys(message_id(d) for d in (head, first) if d is not None))
    return Message(subject=title[:300], text=text, payload=payload, headers=headers)


def render_test(*, delivery, channel) -> Message:
    with recipient_locale(recipient_of(delivery) or (channel.owner if channel.owner_id else None)):
        subject = _("Test alert for '%(channel)s'") % {"channel": channel.name}
        text = _("This is a test alert from %(site)s for the %(kind)s channel '%(channel)s'. If you can read it, "
                 "alerts will reach you here.") % {
            "site": f"{settings.SITE_URL.rstrip('/')}/", "kind": channel.kind, "channel": channel.name}
        language = translation.get_language()
    payload = {"type": "test", "delivery": delivery.pk, "channel": channel.pk, "severity": None, "events": [],
               "suppressed": {"similar": 0, "earlier": []}, "subject": subject, "text": text, "language": language}
    return Message(subject=subject, text=text, payload=payload)
