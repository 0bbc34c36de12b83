"""Run the whole system under one command: daphne, a Celery inference worker and Celery beat.

Each runs as its own process; all share this process's environment, so with no REDIS_URL
set they all use the embedded Redis this process started. Ctrl-C stops them all.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start daphne, a Celery worker (inference and default queues) and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.getenv("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.getenv("WORKER_CONCURRENCY", "8")))
        parser.add_argument("--no-setup", action="store_true", help="Skip migrate and setup_system.")
        parser.add_argument("--reset-password", action="store_true",
                            help="Give the administrator a new password and print it (setup_system --reset-password).")

    def handle(self, *args, host, port, concurrency, no_setup=False, reset_password=False, **options):
        if not no_setup:
            # In this process, so that all of it uses the one embedded Redis started here.
            call_command("migrate", interactive=False, verbosity=0)
            # Prints the login on the first run (or with --reset-password) only.
            call_command("setup_system", stdout=self.stdout, reset_password=reset_password)
        py = sys.executable
        env = dict(os.environ, REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")
        commands = {
            "web": [py, "-m", "daphne", "-b", host, "-p", str(port), "surveillance.asgi:application"],
            "worker": [py, "-m", "celery", "-A", "surveillance", "worker", "-Q", "inference,default",
                       "-P", "threads", "-c", str(concurrency), "-n", "inference@%h", "--loglevel", "INFO"],
            "beat": [py, "-m", "celery", "-A", "surveillance", "beat", "--loglevel", "INFO"],
        }
        procs = {name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"\nOpen http://{host}:{port}/  (admin: http://{host}:{port}/admin/)"))
        self.stdout.write("Press Ctrl-C to stop web, worker and beat.\n")

        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            if stopping:
                return
            stopping = True
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        code = 0
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others.")
                        code = proc.returncode or 1
                        stop()
                        break
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
            stop()
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(code)
