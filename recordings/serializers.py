from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
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
    has_motion = serializers.BooleanField()
    has_event = serializers.BooleanField()
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
