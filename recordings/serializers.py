from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from drf_spectacular.utils import extend_schema_field
from rest_framework.reverse import reverse


class RecordingsFilterSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text=_("Start (ISO 8601); default: 24 h before 'until'."))
    until = serializers.DateTimeField(required=False, help_text=_("End (ISO 8601), exclusive; default: now."))

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": _("Must be later than 'since'.")})
        return attrs


class SegmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    size = serializers.IntegerField(help_text=_("Bytes."))
    tier = serializers.CharField()
    has_motion = serializers.BooleanField(help_text=_("The detector saw motion in it."))
    has_objects = serializers.BooleanField(help_text=_("The object detector saw objects in it."))
    has_event = serializers.BooleanField(help_text=_("An event overlapped it when it was indexed."))
    url = serializers.SerializerMethodField(help_text=_(
        "The segment's MP4 (H.264): plays with the bearer token or the session, with HTTP range requests."))

    def get_url(self, segment) -> str:
        return reverse("recording-video", args=[segment.pk], request=self.context.get("request"))


class CameraRecordingsOutputSerializer(serializers.Serializer):
    camera = serializers.IntegerField()
    record_mode = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    truncated = serializers.BooleanField(help_text=_("More segments overlap the range than one answer lists "
                                                     "(RECORDING_API_MAX_SEGMENTS): ask again from the last 'end'."))
    segments = SegmentOutputSerializer(many=True)


class ExportInputSerializer(serializers.Serializer):
    cameras = serializers.ListField(child=serializers.IntegerField(min_value=1), help_text=_(
        "The cameras to export (ids), each one the user may view; at most RECORDING_EXPORT_MAX_CAMERAS."))
    since = serializers.DateTimeField(help_text=_("Start of the range (ISO 8601)."))
    until = serializers.DateTimeField(help_text=_(
        "End of the range (ISO 8601), at most RECORDING_EXPORT_MAX_HOURS after 'since'; a time after now is now."))

    def validate_cameras(self, value):
        from django.conf import settings

        from cameras.selectors import camera_ids_for_user

        ids = list(dict.fromkeys(value))
        if not ids:
            raise serializers.ValidationError(_("Name at least one camera."))
        if len(ids) > settings.RECORDING_EXPORT_MAX_CAMERAS:
            raise serializers.ValidationError(_("At most %(n)d cameras per export (RECORDING_EXPORT_MAX_CAMERAS).")
                                              % {"n": settings.RECORDING_EXPORT_MAX_CAMERAS})
        allowed = camera_ids_for_user(self.context["request"].user)
        refused = [i for i in ids if i not in allowed]
        if refused:
            raise serializers.ValidationError(
                _("No camera with the id(s) %(ids)s, or you may not view them.") % {"ids": ", ".join(map(str, refused))})
        return ids

    def validate(self, attrs):
        from django.conf import settings
        from django.utils import timezone

        now = timezone.now()
        attrs["until"] = min(attrs["until"], now)
        if attrs["since"] >= now:
            raise serializers.ValidationError({"since": _("Must be in the past: nothing is recorded yet.")})
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": _("Must be later than 'since'.")})
        hours = settings.RECORDING_EXPORT_MAX_HOURS
        if (attrs["until"] - attrs["since"]).total_seconds() > hours * 3600:
            raise serializers.ValidationError(
                {"until": _("At most %(hours)g hours after 'since' (RECORDING_EXPORT_MAX_HOURS).") % {"hours": hours}})
        return attrs


class ExportFileSerializer(serializers.Serializer):
    camera = serializers.IntegerField()
    name = serializers.CharField(help_text=_("The file's name."))
    size = serializers.IntegerField(help_text=_("Bytes."))
    duration = serializers.FloatField(help_text=_("Seconds of footage (gaps in the recording are left out)."))
    copied = serializers.BooleanField(help_text=_("Copied from the segments without re-encoding (else encoded)."))
    url = serializers.SerializerMethodField(help_text=_(
        "The MP4: for anyone who may view the camera, with the bearer token or the session, with byte ranges."))

    def get_url(self, entry) -> str:
        return reverse("recording-export-file", args=[self.context["export"].pk, entry["camera"]],
                       request=self.context.get("request"))


class ExportOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    cameras = serializers.SerializerMethodField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    status = serializers.CharField(help_text=_("queued, running, done or failed."))
    progress = serializers.FloatField(help_text=_("0 to 1."))
    message = serializers.CharField(help_text=_("Why it failed, or what was left out (cameras without footage)."))
    size = serializers.IntegerField(help_text=_("Bytes, all files together."))
    files = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True, help_text=_("When the files and this export are deleted."))
    created_at = serializers.DateTimeField()

    def get_cameras(self, export) -> list[int]:
        return sorted(export.cameras.values_list("id", flat=True))

    @extend_schema_field(ExportFileSerializer(many=True))
    def get_files(self, export):
        if export.status != "done":
            return []
        return ExportFileSerializer(export.files or [], many=True,
                                    context={**self.context, "export": export}).data
