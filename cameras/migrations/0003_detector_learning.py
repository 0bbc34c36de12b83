# Detector versions and learning jobs (issue 5: learn what is normal per camera).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cameras', '0002_camera_zones'),
        ('events', '0002_event_clip'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DetectorVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('detector', models.CharField(max_length=50)),
                ('params', models.JSONField(blank=True, default=dict, help_text="The camera's detector parameters when learned.")),
                ('state_path', models.CharField(help_text='The state file, relative to DATA_DIR.', max_length=500)),
                ('source', models.CharField(choices=[('learn-live', "Learned from the camera's footage"), ('upload', 'Learned from uploaded clips'), ('feedback', 'Operator feedback (false alarm)'), ('restore', 'Restored')], max_length=16)),
                ('frames', models.PositiveIntegerField(default=0, help_text='Analysis frames learned from.')),
                ('note', models.CharField(blank=True, default='', max_length=500)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('based_on', models.ForeignKey(blank=True, help_text='The version this one refined or restored.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='cameras.detectorversion')),
                ('camera', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='detector_versions', to='cameras.camera')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['camera', '-number'],
            },
        ),
        migrations.AddField(
            model_name='camera',
            name='active_detector_version',
            field=models.ForeignKey(blank=True, editable=False, help_text='The learned detector state the camera runs with (set by learning and restore).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='cameras.detectorversion'),
        ),
        migrations.CreateModel(
            name='LearningJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('live', 'Live footage'), ('upload', 'Uploaded clips'), ('feedback', 'False-alarm feedback')], max_length=16)),
                ('mode', models.CharField(choices=[('fresh', 'Learn afresh'), ('refit', 'Refine the active version')], default='fresh', max_length=8)),
                ('minutes', models.FloatField(blank=True, help_text="Live: minutes of the camera's footage.", null=True)),
                ('clips', models.JSONField(blank=True, default=list, help_text='Uploads: clip files, relative to DATA_DIR.')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=8)),
                ('progress', models.FloatField(default=0.0)),
                ('message', models.CharField(blank=True, default='', max_length=500)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('camera', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='learning_jobs', to='cameras.camera')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('event', models.ForeignKey(blank=True, help_text='Feedback: the event marked false alarm.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='events.anomalyevent')),
                ('version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='cameras.detectorversion')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='detectorversion',
            constraint=models.UniqueConstraint(fields=('camera', 'number'), name='detector_version_number_per_camera'),
        ),
        migrations.AddIndex(
            model_name='learningjob',
            index=models.Index(fields=['camera', 'status'], name='cameras_lea_camera__a84e7a_idx'),
        ),
    ]
