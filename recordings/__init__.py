"""Recordings: each camera's footage in segments, their index, retention, playback (docs/recordings.md)."""
