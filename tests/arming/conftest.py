"""Arming tests reuse the alert tests' recorded delivery queue and builders."""

import importlib

import pytest
from django.apps import apps

from tests.alerts.conftest import alert_queue, route, run_queued  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def modes(request):
    """The four modes as the data migration makes them (a transactional test elsewhere may have flushed them)."""
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db")
        importlib.import_module("arming.migrations.0002_default_modes").create(apps, None)
