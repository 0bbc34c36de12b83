"""A segment row deleted (its camera deleted, the admin, retention) takes its file with it, after commit; an export
row deleted (expiry, its user deleted, the admin) takes its folder."""

import shutil

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Export, Segment
from .storage import export_folder, segment_file


@receiver(post_delete, sender=Segment, dispatch_uid="recordings-segment-file")
def segment_file_delete(sender, instance: Segment, **kwargs):
    file = segment_file(instance.tier, instance.path)
    if file is not None:
        transaction.on_commit(lambda: file.unlink(missing_ok=True))


@receiver(post_delete, sender=Export, dispatch_uid="recordings-export-folder")
def export_folder_delete(sender, instance: Export, **kwargs):
    folder = export_folder(instance.pk)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
