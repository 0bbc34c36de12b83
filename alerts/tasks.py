"""Alert tasks (``default`` queue). They take ids, call services, and are safe to run twice."""

from celery import shared_task

from .push import push_send
from .services import (
    alert_delivery_attempt,
    alerts_digest_build,
    alerts_escalate,
    alerts_requeue_overdue,
    alerts_route_events,
)


@shared_task
def alert_deliver(delivery_id: int) -> str:
    """One attempt at a delivery; a failure that may be retried is re-queued by the service with backoff."""
    delay = alert_delivery_attempt(delivery_id=int(delivery_id))
    return "retry" if delay is not None else "done"


@shared_task
def alerts_digest() -> dict:
    """Beat (every ALERT_DIGEST_SECONDS): one digest per channel, and re-queue lost deliveries."""
    return {"digests": alerts_digest_build(), "requeued": alerts_requeue_overdue()}


@shared_task
def alerts_route(event_ids: list[str]) -> int:
    """Route stored (or updated) events to the people responsible for their cameras. Safe to run twice."""
    alerts_route_events(event_ids=event_ids)
    return len(event_ids)


@shared_task
def alerts_escalation() -> list[int]:
    """Beat (every ALERT_ESCALATION_CHECK_SECONDS): fire the escalation steps that are due. Safe to run twice."""
    return alerts_escalate()


@shared_task
def alert_push(user_id: int, notification: dict) -> dict:
    """Web Push of one in-app notification to the user's subscribed browsers (alerts/push.py). Never retried: a
    push service keeps the message for an offline browser itself (its TTL)."""
    return push_send(user_id=int(user_id), notification=notification)
