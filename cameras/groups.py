"""Channel-layer group names. Each name is built here and nowhere else."""


def camera_group(camera_id: int) -> str:
    """Events, status and scores of one camera."""
    return f"camera.{int(camera_id)}"


def camera_frames_group(camera_id: int, fps: int) -> str:
    """Live frames of one camera at one frame-rate tier."""
    return f"camera.{int(camera_id)}.frames.{int(fps)}"


def user_group(user_id: int) -> str:
    """Everything addressed to one user (notifications, permission changes)."""
    return f"user.{int(user_id)}"
