"""Normal footage uploaded to learn from: size limits, storing, checking that OpenCV reads it, deleting."""

import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import get_valid_filename

from inference.base import SourceError


def uploads_root() -> Path:
    return settings.DATA_DIR / "learning-uploads"


def check_upload_sizes(clips) -> None:
    most, cap_mb = settings.LEARN_UPLOAD_MAX_CLIPS, settings.LEARN_UPLOAD_MAX_MB
    if len(clips) > most:
        raise ValidationError({"clips": f"At most {most} clips at a time ({len(clips)} given)."})
    for clip in clips:
        if clip.size > cap_mb * 1024 * 1024:
            raise ValidationError({"clips": f"{clip.name}: {clip.size / 1024 / 1024:.0f} MB is over the "
                                            f"{cap_mb:g} MB limit per clip."})
        if not clip.size:
            raise ValidationError({"clips": f"{clip.name}: the file is empty."})


def store_uploads(camera_id: int, clips) -> list[str]:
    """Write the uploads under DATA_DIR/learning-uploads/<camera>/<batch>/ and check that each is a readable
    video; relative paths. ValidationError naming the file and the problem (nothing is kept then)."""
    from inference.sources import open_source  # OpenCV: the web process loads it only when clips are uploaded

    batch = uploads_root() / str(camera_id) / uuid.uuid4().hex
    batch.mkdir(parents=True, exist_ok=True)
    stored = []
    try:
        for i, clip in enumerate(clips):
            original = os.path.basename(clip.name or "") or f"clip {i + 1}"
            path = batch / f"{i + 1:02d}-{get_valid_filename(original) or 'clip'}"
            with open(path, "wb") as out:
                for chunk in clip.chunks():
                    out.write(chunk)
            try:
                with open_source(str(path)) as source:
                    if source.read() is None:
                        raise SourceError("no frame could be decoded")
            except (SourceError, ValueError) as exc:
                problem = str(exc).replace(str(path), original).replace(path.name, original)
                raise ValidationError({"clips": f"{original}: OpenCV cannot read it as a video ({problem})."}) \
                    from None
            stored.append(path.relative_to(settings.DATA_DIR).as_posix())
    except BaseException:
        shutil.rmtree(batch, ignore_errors=True)
        raise
    return stored


def delete_uploads(clips) -> None:
    root = uploads_root().resolve()
    for folder in {(settings.DATA_DIR / c).parent.resolve() for c in clips}:
        if root in folder.parents:
            shutil.rmtree(folder, ignore_errors=True)
