from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .models import AlertItem, AlertRule, Delivery, NotificationChannel
from .services import alert_channel_test, alert_delivery_retry, alert_rule_check_targets


class NotificationChannelForm(forms.ModelForm):
    secret = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing key (at least 16 characters). Leave empty to keep the current one.")

    class Meta:
        model = NotificationChannel
        fields = "__all__"

    def clean_secret(self):
        return self.cleaned_data.get("secret") or (self.instance.secret if self.instance.pk else "")


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ("name", "kind", "owner", "group", "enabled", "updated_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "email", "url", "owner__username", "group__name")
    list_select_related = ("owner", "group")
    actions = ["send_test_alert"]

    @admin.action(description="Send a test alert")
    def send_test_alert(self, request, queryset):
        for channel in queryset:
            delivery = alert_channel_test(channel=channel, by=request.user)
            if delivery.status == Delivery.Status.SENT:
                self.message_user(request, f"Test alert sent through '{channel.name}'.", messages.SUCCESS)
            else:
                self.message_user(request, f"Test alert through '{channel.name}' failed: {delivery.error}",
                                  messages.ERROR)


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = "__all__"

    def clean(self):
        data = super().clean()
        rule = AlertRule(owner=data.get("owner"), group=data.get("group"), all_cameras=data.get("all_cameras", True))
        try:
            alert_rule_check_targets(rule, list(data.get("cameras") or []), list(data.get("channels") or []))
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field, errors)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = ("name", "owner", "group", "enabled", "min_severity", "all_cameras", "quiet_start", "quiet_end")
    list_filter = ("enabled", "min_severity")
    search_fields = ("name", "owner__username", "group__name")
    filter_horizontal = ("cameras", "channels")
    list_select_related = ("owner", "group")


class AlertItemInline(admin.TabularInline):
    model = AlertItem
    fk_name = "delivery"
    extra = 0
    can_delete = False
    fields = ("event", "camera", "kind", "severity", "state", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "mode", "medium", "channel", "recipient", "recipient_group", "status",
                    "attempts", "suppressed_count", "sent_at", "short_error")
    list_filter = ("status", "mode", "medium")
    search_fields = ("subject", "error", "recipient__username", "channel__name")
    list_select_related = ("channel", "recipient", "recipient_group")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AlertItemInline]
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="error")
    def short_error(self, delivery):
        return delivery.error[:80]

    @admin.action(description="Retry the selected failed deliveries")
    def retry_failed(self, request, queryset):
        retried = sum(alert_delivery_retry(delivery=d).status == Delivery.Status.PENDING
                      for d in queryset.filter(status=Delivery.Status.FAILED))
        self.message_user(request, f"{retried} failed deliveries queued again.")


@admin.register(AlertItem)
class AlertItemAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "channel", "recipient", "recipient_group", "severity", "kind", "state",
                    "delivery", "original", "reported_in")
    list_filter = ("state", "severity")
    list_select_related = ("channel", "recipient", "recipient_group")
    readonly_fields = [f.name for f in AlertItem._meta.fields]

    def has_add_permission(self, request):
        return False
