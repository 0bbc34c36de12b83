"""Where the inference library meets the Django apps: the inference worker process and its tasks.

Owns the per-worker pieces (camera leases, heartbeat figures, the event log, media writers, live
frames, score history) and the Celery tasks of the ``inference`` queue; web apps reach it only
through task names (cameras/dispatch.py) and Redis (cameras/live.py), never by importing it.
"""
