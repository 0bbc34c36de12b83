"""What the events app announces after a commit, for the apps that act on events (they queue tasks).

* ``events_stored(event_ids)``: a batch of worker records became events (new or updated);
  alerts/receivers.py queues their routing.
* ``event_false_alarm(event_id, user_id)``: an operator marked an event a false alarm;
  events/receivers.py queues the camera's feedback learning.

The events app never imports the apps that listen.
"""

from django.dispatch import Signal

events_stored = Signal()
event_false_alarm = Signal()
