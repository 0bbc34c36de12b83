"""The four modes with their default meaning (docs/alerts.md, "Arming"); the admin edits them afterwards."""

from django.db import migrations

DEFAULTS = {
    "armed": (["scene", "camera_health", "camera_offline"], "low", "Everything alerts, as without arming."),
    "away": (["scene", "camera_health", "camera_offline"], "low", "Nobody home: everything alerts."),
    "home": (["scene", "camera_health", "camera_offline"], "high", "People at home: only high and critical events "
                                                                    "alert."),
    "disarmed": (["camera_health", "camera_offline"], "low", "No scene alerts; the camera's own trouble (tamper, "
                                                              "offline) still alerts."),
}


def create(apps, schema_editor):
    ArmingMode = apps.get_model("arming", "ArmingMode")
    for key, (kinds, severity, description) in DEFAULTS.items():
        ArmingMode.objects.get_or_create(key=key, defaults={"kinds": kinds, "min_severity": severity,
                                                            "description": description})


class Migration(migrations.Migration):
    dependencies = [("arming", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
