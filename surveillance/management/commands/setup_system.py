"""Prepare a fresh installation: admin user, demo camera, beat schedules. Safe to run again.

The administrator's password is printed only when it is made: on the first run, and with --reset-password.
"""

import os
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from alerts.services import alert_rule_create
from cameras.models import Camera
from cameras.services import camera_create, camera_start
from surveillance.schedules import ensure_beat_schedules

DEMO_SOURCE = "demo://"
#: The demo cameras record (docs/recordings.md): the camera page's timeline and the event pages play footage from the
#: first minutes, and footage without an event is deleted after RECORDING_UNMARKED_KEEP_MINUTES, so the disk stays small.
DEMO_RECORD_MODE = "events"
#: The demo scene's marked forbidden area on the near grass (inference/demo.py ``DemoSource.zone``: x from 0.56
#: to 0.86 of the width, y from 0.83 to 0.97 of the height), so that its "walks into the forbidden area"
#: anomaly is a zone event (docs/detection.md, "Zones and masks").
DEMO_ZONES = [
    {"name": "Forbidden area", "kind": "forbidden", "points": [[0.56, 0.83], [0.86, 0.83], [0.86, 0.97], [0.56, 0.97]]},
]
DEFAULT_RULE = "High and critical, every camera, in the browser"
#: Real footage for a second, file camera where this machine has it (the developers' and CI's do).
SAMPLE_VIDEO = Path(os.getenv("SAMPLE_VIDEO", settings.BASE_DIR.parent / "shared" / "datasets" / "pets-walkway"
                              / "vtest.avi"))


class Command(BaseCommand):
    help = ("Create the admin user (printing its login once, when created), a demo camera if none exists, "
            "and beat schedules. --reset-password sets and prints a new administrator password.")

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="Do not create the demo camera.")
        parser.add_argument("--reset-password", action="store_true",
                            help="Give the administrator a new password (ADMIN_PASSWORD, else a random one) "
                                 "and print it.")

    def handle(self, *args, no_demo=False, reset_password=False, **options):
        User = get_user_model()
        username = os.getenv("ADMIN_USERNAME", "admin")
        password_file = settings.DATA_DIR / "admin-password.txt"
        admin = User.objects.filter(username=username).first()
        # The password is printed only when it is made: at creation (the first run) or on --reset-password.
        if admin is None:
            password = os.getenv("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username=username, email="", password=password)
            _keep_password(password_file, password)
            self.stdout.write(f"Created the administrator '{username}'.")
            self._print_login(username, password)
            # So that the first high or critical event reaches the administrator's open pages: without a
            # rule nobody is alerted. Made with the administrator only (a rule deleted later stays deleted).
            rule = alert_rule_create(owner=admin, by=admin, name=DEFAULT_RULE, all_cameras=True,
                                     min_severity="high", notify_in_app=True)
            self.stdout.write(f"Alert rule '{rule.name}' created for '{username}' (My alerts, or the admin, to change it).")
        elif reset_password:
            password = os.getenv("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin.set_password(password)
            admin.save(update_fields=["password"])
            _keep_password(password_file, password)
            self.stdout.write(f"Set a new password for the administrator '{username}'.")
            self._print_login(username, password)
        else:
            self.stdout.write(
                f"The administrator '{username}' exists (its password is printed only when it is created or "
                f"reset{'; the first one is in ' + str(password_file) if password_file.exists() else ''}). "
                f"To set a new one and print it: .venv/bin/python manage.py setup_system --reset-password")

        if not no_demo and not Camera.objects.exists():
            camera = camera_create(by=admin, name="Demo camera", source_url=DEMO_SOURCE, zones=DEMO_ZONES,
                                   record_mode=DEMO_RECORD_MODE)
            camera_start(camera=camera, by=admin)
            self.stdout.write(f"Created and started the demo camera (id {camera.pk}, {DEMO_SOURCE}, with its forbidden "
                              f"zone, recording around its events).")
            self._file_camera(admin)
        created = ensure_beat_schedules()
        if created:
            self.stdout.write(f"Beat schedules created: {', '.join(created)}")

    def _print_login(self, username: str, password: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"Login: username '{username}', password '{password}'"))

    def _file_camera(self, admin) -> None:
        """A camera playing real footage in a loop (copied under the first CAMERA_FILE_ROOTS folder)."""
        if not SAMPLE_VIDEO.is_file() or not settings.CAMERA_FILE_ROOTS:
            self.stdout.write(f"No sample footage at {SAMPLE_VIDEO}: only the demo camera (set SAMPLE_VIDEO to add one).")
            return
        target = Path(settings.CAMERA_FILE_ROOTS[0]) / SAMPLE_VIDEO.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(SAMPLE_VIDEO, target)
        camera = camera_create(by=admin, name="Walkway (file)", source_url=str(target), record_mode=DEMO_RECORD_MODE)
        camera_start(camera=camera, by=admin)
        self.stdout.write(f"Created and started a file camera (id {camera.pk}, {target}, recording around its events).")


def _keep_password(path: Path, password: str) -> None:
    """The administrator's password in DATA_DIR, readable by this user only (created so, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    path.chmod(0o600)
