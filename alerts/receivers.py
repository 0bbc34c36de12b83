"""Alerts follow the events: each stored batch is routed by a task on the default queue.

Connected by ``AlertsConfig.ready``. Routing used to run inside the inference worker's event-flush
thread; now a default-queue worker does it, so a slow rule set never holds up storing events.
"""

from django.dispatch import receiver

from events.signals import events_stored

from .tasks import alerts_route


@receiver(events_stored)
def _queue_routing(sender, event_ids, **kwargs):
    alerts_route.delay([str(pk) for pk in event_ids])
