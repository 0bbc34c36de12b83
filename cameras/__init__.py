"""Cameras: their settings, per-camera permissions, start/stop, learning what is normal, the WebSocket.

Also the web side of the camera protocol: Redis keys and live watchers (live.py), runtime task names (dispatch.py).
"""
