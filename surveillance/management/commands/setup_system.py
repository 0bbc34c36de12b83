"""Prepare a fresh installation: admin user, demo camera, beat schedules. Safe to run again."""

import os
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from cameras.models import Camera
from cameras.services import camera_create, camera_start
from surveillance.schedules import ensure_beat_schedules

DEMO_SOURCE = "demo://"
#: Real footage for a second, file camera where this machine has it (the developers' and CI's do).
SAMPLE_VIDEO = Path(os.getenv("SAMPLE_VIDEO", settings.BASE_DIR.parent / "shared" / "datasets" / "pets-walkway"
                              / "vtest.avi"))


class Command(BaseCommand):
    help = "Create the admin user (printing its login), a demo camera if none exists, and beat schedules."

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="Do not create the demo camera.")

    def handle(self, *args, no_demo=False, **options):
        User = get_user_model()
        username = os.getenv("ADMIN_USERNAME", "admin")
        password_file = settings.DATA_DIR / "admin-password.txt"
        admin = User.objects.filter(username=username).first()
        if admin is None:
            password = os.getenv("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username=username, email="", password=password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            self.stdout.write(f"Created the administrator '{username}'.")
        password = password_file.read_text().strip() if password_file.exists() else "(as you set it)"
        self.stdout.write(self.style.SUCCESS(f"Login: username '{username}', password '{password}'"))

        if not no_demo and not Camera.objects.exists():
            camera = camera_create(by=admin, name="Demo camera", source_url=DEMO_SOURCE)
            camera_start(camera=camera, by=admin)
            self.stdout.write(f"Created and started the demo camera (id {camera.pk}, {DEMO_SOURCE}).")
            self._file_camera(admin)
        created = ensure_beat_schedules()
        if created:
            self.stdout.write(f"Beat schedules created: {', '.join(created)}")

    def _file_camera(self, admin) -> None:
        """A camera playing real footage in a loop (copied under the first CAMERA_FILE_ROOTS folder)."""
        if not SAMPLE_VIDEO.is_file() or not settings.CAMERA_FILE_ROOTS:
            self.stdout.write(f"No sample footage at {SAMPLE_VIDEO}: only the demo camera (set SAMPLE_VIDEO to add one).")
            return
        target = Path(settings.CAMERA_FILE_ROOTS[0]) / SAMPLE_VIDEO.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(SAMPLE_VIDEO, target)
        camera = camera_create(by=admin, name="Walkway (file)", source_url=str(target))
        camera_start(camera=camera, by=admin)
        self.stdout.write(f"Created and started a file camera (id {camera.pk}, {target}).")
