from zoneinfo import available_timezones

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from events.kinds import EVENT_KINDS

from .models import AlertItem, AlertRule, Delivery, Escalation, EscalationStep, NotificationChannel, PushSubscription
from .services import (
    CHANNEL_FIELDS,
    RULE_FIELDS,
    alert_channel_test,
    alert_delivery_retry,
    alert_escalation_steps_changed,
    alert_rule_check_escalation,
    alert_rule_check_targets,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    notification_channel_create,
    notification_channel_delete,
    notification_channel_update,
)


def _owners_changed(obj, form) -> None:
    """Owner and group are the admin's to change; the services keep the rest (and audit it)."""
    for name in ("owner", "group"):
        if name in form.changed_data:
            setattr(obj, name, form.cleaned_data[name])


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

    def save_model(self, request, obj, form, change):
        """Through the services, like the API: validated the same way and written to the audit log."""
        data = {name: form.cleaned_data[name] for name in CHANNEL_FIELDS if name in form.cleaned_data}
        if change:
            channel = NotificationChannel.objects.get(pk=obj.pk)
            _owners_changed(channel, form)
            channel = notification_channel_update(
                channel=channel, by=request.user, **{k: v for k, v in data.items() if k in form.changed_data})
        else:
            channel = notification_channel_create(owner=form.cleaned_data.get("owner"),
                                                  group=form.cleaned_data.get("group"), by=request.user, **data)
        obj.pk = channel.pk

    def delete_model(self, request, obj):
        notification_channel_delete(channel=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            notification_channel_delete(channel=channel, by=request.user)

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
    time_zone = forms.ChoiceField(
        choices=(), required=False,
        help_text=_("Time zone of the quiet hours (empty: the owner's, or UTC)."))
    kinds = forms.MultipleChoiceField(
        choices=[(k, _(label)) for k, label in EVENT_KINDS.items()], required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Which kinds of events the rule takes; none ticked: every kind."))

    class Meta:
        model = AlertRule
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", _("The owner's time zone"))] + [
            (tz, tz) for tz in sorted(available_timezones())]

    def clean(self):
        data = super().clean()
        rule = AlertRule(owner=data.get("owner"), group=data.get("group"), all_cameras=data.get("all_cameras", True))
        try:
            alert_rule_check_targets(rule, list(data.get("cameras") or []), list(data.get("channels") or []))
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field, errors)
        return data


class EscalationStepFormSet(forms.BaseInlineFormSet):
    """The steps are checked as the API checks them (alerts.services.alert_rule_check_escalation)."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        orders = [f.cleaned_data.get("order") for f in kept]
        if len(set(orders)) != len(orders):
            raise ValidationError("Give each step its own order (1, 2, 3, ...).")
        steps = [{"after_minutes": f.cleaned_data.get("after_minutes"),
                  "channels": [c.pk for c in f.cleaned_data.get("channels") or []],
                  "users": [u.pk for u in f.cleaned_data.get("users") or []],
                  "group": f.cleaned_data["group"].pk if f.cleaned_data.get("group") else None}
                 for f in sorted(kept, key=lambda f: f.cleaned_data.get("order") or 0)]
        try:
            alert_rule_check_escalation(self.instance, steps)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("escalation_steps") or exc.messages) from None


class EscalationStepInline(admin.StackedInline):
    """Critical and high events nobody acknowledged go to each step's recipients in turn (docs/alerts.md)."""

    model = EscalationStep
    formset = EscalationStepFormSet
    extra = 0
    fields = ("order", "after_minutes", "channels", "users", "group")
    filter_horizontal = ("channels", "users")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    inlines = [EscalationStepInline]
    list_display = ("name", "owner", "group", "enabled", "min_severity", "kinds_shown", "all_cameras", "quiet_start",
                    "quiet_end")
    list_filter = ("enabled", "min_severity")
    search_fields = ("name", "owner__username", "group__name")
    filter_horizontal = ("cameras", "channels")
    list_select_related = ("owner", "group")

    @admin.display(description=_("kinds"))
    def kinds_shown(self, rule):
        return ", ".join(str(_(EVENT_KINDS[k])) for k in rule.kinds if k in EVENT_KINDS) or _("every kind")

    def save_model(self, request, obj, form, change):
        """Through the services (validation, audit log); they also set the rule's cameras and channels."""
        data = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        cameras = [c.pk for c in form.cleaned_data.get("cameras") or []]
        channels = [c.pk for c in form.cleaned_data.get("channels") or []]
        if change:
            rule = AlertRule.objects.get(pk=obj.pk)
            _owners_changed(rule, form)
            rule = alert_rule_update(rule=rule, cameras=cameras, channels=channels, by=request.user,
                                     **{k: v for k, v in data.items() if k in form.changed_data})
        else:
            rule = alert_rule_create(owner=form.cleaned_data.get("owner"), group=form.cleaned_data.get("group"),
                                     cameras=cameras, channels=channels, by=request.user, **data)
        obj.pk = rule.pk

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # the cameras and channels were set by the service
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        changed = formset.has_changed()
        super().save_formset(request, form, formset, change)
        if formset.model is EscalationStep and changed:
            alert_escalation_steps_changed(rule=form.instance, by=request.user)

    def delete_model(self, request, obj):
        alert_rule_delete(rule=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            alert_rule_delete(rule=rule, by=request.user)


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


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    """Which escalation step fired for which event, and when (read-only: the deliveries are under Deliveries)."""

    list_display = ("fired_at", "event", "rule", "order", "after_minutes", "unacknowledged_minutes")
    list_select_related = ("rule",)
    readonly_fields = [f.name for f in Escalation._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertItem)
class AlertItemAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "channel", "recipient", "recipient_group", "severity", "kind", "state",
                    "delivery", "original", "reported_in")
    list_filter = ("state", "severity")
    list_select_related = ("channel", "recipient", "recipient_group")
    readonly_fields = [f.name for f in AlertItem._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Browsers subscribed to Web Push (docs/alerts.md "Web Push"): made by the browsers themselves; an
    administrator may only look and delete. The keys are not shown (the endpoint's address is its secret too)."""

    list_display = ("id", "user", "service", "user_agent", "created_at", "last_success_at", "last_failure_at",
                    "failures")
    list_filter = ("created_at", "last_failure_at")
    search_fields = ("user__username", "user_agent")
    fields = ("user", "service", "user_agent", "created_at", "last_success_at", "last_failure_at", "last_error",
              "failures")
    readonly_fields = fields

    @admin.display(description=_("push service"))
    def service(self, obj):
        from urllib.parse import urlsplit

        return urlsplit(obj.endpoint).hostname or "?"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
