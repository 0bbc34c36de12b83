"""A segment row deleted (its camera deleted, the admin, retention) takes its file with it, after commit; an export
row deleted (expiry, its user deleted, the admin) takes its folder; an event stored closed, of a camera that records,
gets its clip cut from the recording (a task, once the recording reaches the clip's end)."""

import shutil

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from events.signals import events_stored

from .models import Export, Segment
from .services import event_clips_to_cut
from .storage import export_folder, segment_file
from .tasks import recordings_event_clip


@receiver(post_delete, sender=Segment, dispatch_uid="recordings-segment-file")
def segment_file_delete(sender, instance: Segment, **kwargs):
    file = segment_file(instance.tier, instance.path)
    if file is not None:
        transaction.on_commit(lambda: file.unlink(missing_ok=True))


@receiver(post_delete, sender=Export, dispatch_uid="recordings-export-folder")
def export_folder_delete(sender, instance: Export, **kwargs):
    folder = export_folder(instance.pk)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


@receiver(events_stored, dispatch_uid="recordings-event-clips")
def event_clips_queue(sender, event_ids, **kwargs):
    """Events are announced after their batch committed: queue each newly closed one's cut, due when its camera's
    recording may hold the clip's end."""
    for event_id, wait in event_clips_to_cut(event_ids):
        recordings_event_clip.apply_async((event_id,), countdown=wait)
