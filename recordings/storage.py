"""Where segment files live: one folder per tier (RECORDING_DIR, and RECORDING_ARCHIVE_DIR when set)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

FAST, ARCHIVE = "fast", "archive"


def tier_roots() -> dict[str, Path]:
    """{tier: folder} of the tiers configured (the archive only when RECORDING_ARCHIVE_DIR is set)."""
    roots = {FAST: Path(settings.RECORDING_DIR)}
    if settings.RECORDING_ARCHIVE_DIR:
        roots[ARCHIVE] = Path(settings.RECORDING_ARCHIVE_DIR)
    return roots


def tier_root(tier: str) -> Path | None:
    return tier_roots().get(tier)


def segment_file(tier: str, path: str) -> Path | None:
    """The absolute file of a segment, or None when its tier has no folder (any more) or the path leaves it."""
    root = tier_root(tier)
    if root is None:
        return None
    file = (root / path).resolve()
    if not file.is_relative_to(root.resolve()):
        return None
    return file


def segment_name(camera_id: int, start, run: str, ext: str) -> str:
    """A finished segment's path in its tier: ``<camera>/<YYYY-MM-DD>/<HHMMSS>-<run>.<ext>`` (UTC)."""
    return f"{int(camera_id)}/{start:%Y-%m-%d}/{start:%H%M%S}-{run}.{ext}"


def export_folder(export_id) -> Path:
    """An export's files: RECORDING_EXPORT_DIR/<export id>/."""
    return Path(settings.RECORDING_EXPORT_DIR) / str(export_id)
