"""A segment row deleted (its camera deleted, the admin, retention) takes its file with it, after commit."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Segment
from .storage import segment_file


@receiver(post_delete, sender=Segment, dispatch_uid="recordings-segment-file")
def segment_file_delete(sender, instance: Segment, **kwargs):
    file = segment_file(instance.tier, instance.path)
    if file is not None:
        transaction.on_commit(lambda: file.unlink(missing_ok=True))
