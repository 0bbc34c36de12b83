import os
import subprocess
import sys

from tests.conftest import ROOT


def _run_settings(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT, env=dict(env, DJANGO_SETTINGS_MODULE="surveillance.settings"),
        capture_output=True, text=True, timeout=60,
    )


def test_refuses_default_secret_key_when_debug_is_off():
    result = _run_settings({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "Refusing to start" in result.stderr


def test_starts_with_a_real_secret_key_when_debug_is_off():
    result = _run_settings({"DEBUG": "0", "SECRET_KEY": "x" * 50})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("False")


def test_embedded_defaults_when_nothing_is_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "import redis; r = redis.Redis.from_url(settings.REDIS_URL); r.ping();"
        "print(settings.DATABASES['default']['ENGINE'], settings.REDIS_URL.split(':')[0], settings.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(env, DJANGO_SETTINGS_MODULE="surveillance.settings", DATA_DIR=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["django.db.backends.sqlite3", "unix", "True"]


# The production settings the README's deployment section lists.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "a-real-production-secret-" + "k3y" * 20,
    "ALLOWED_HOSTS": "cams.example.com",
}


def test_check_deploy_passes_with_the_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(PRODUCTION_ENV, DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="surveillance.settings")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_debug_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(DEBUG="1", DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="surveillance.settings")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on in deployment
