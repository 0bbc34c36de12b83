"""The events app's own reactions to its signals: each queues a task on the default queue."""

from django.dispatch import receiver

from .signals import event_false_alarm
from .tasks import events_false_alarm_learn


@receiver(event_false_alarm)
def _queue_false_alarm_learning(sender, event_id, user_id=None, **kwargs):
    events_false_alarm_learn.delay(str(event_id), user_id)
