"""Admin: what each mode lets alert, the hand-set modes of cameras and areas, the weekly schedules, and the held
alerts (docs/alerts.md, "Arming"). Every change is audited; a hand-set mode is switched through
``services.arming_set`` (audited with the old and the new mode, pushed live)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from events.kinds import EVENT_KINDS

from .models import WEEKDAYS, ArmingMode, ArmingPeriod, ArmingSchedule, ArmingState, HeldAlert
from .services import arming_config_audit, arming_set


class ArmingModeForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=[(k, _(label)) for k, label in EVENT_KINDS.items()], required=False,
        widget=forms.CheckboxSelectMultiple, label=_("kinds that alert"),
        help_text=_("The event kinds that still alert in this mode; none ticked: nothing alerts."))

    class Meta:
        model = ArmingMode
        fields = ("kinds", "min_severity", "description")


@admin.register(ArmingMode)
class ArmingModeAdmin(admin.ModelAdmin):
    form = ArmingModeForm
    list_display = ("__str__", "kinds_shown", "min_severity", "description", "updated_at")

    @admin.display(description=_("kinds that alert"))
    def kinds_shown(self, mode):
        return ", ".join(str(_(EVENT_KINDS[k])) for k in mode.kinds if k in EVENT_KINDS) or _("none")

    def has_add_permission(self, request):
        return False  # the four modes are made by the migration

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        arming_config_audit(target=obj, action="arming.mode_update", by=request.user, changes=form.changed_data)


class ArmingStateForm(forms.ModelForm):
    class Meta:
        model = ArmingState
        fields = ("camera", "area", "mode")


@admin.register(ArmingState)
class ArmingStateAdmin(admin.ModelAdmin):
    form = ArmingStateForm
    list_display = ("__str__", "camera", "area", "mode", "set_by", "set_at")
    list_filter = ("mode",)

    def get_readonly_fields(self, request, obj=None):
        return ("camera", "area") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        state = arming_set(camera=obj.camera, area=obj.area if obj.camera is None else None, mode=obj.mode,
                           by=request.user)
        if state is not None:
            obj.pk = state.pk

    def delete_model(self, request, obj):
        arming_set(camera=obj.camera, area=obj.area if obj.camera is None else None, mode=None, by=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ArmingPeriodForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        choices=list(enumerate(WEEKDAYS)), coerce=int, widget=forms.CheckboxSelectMultiple, label=_("days"),
        help_text=_("The days the period starts on."))

    class Meta:
        model = ArmingPeriod
        fields = ("days", "start", "end", "mode")


class ArmingPeriodInline(admin.TabularInline):
    model = ArmingPeriod
    form = ArmingPeriodForm
    extra = 1


@admin.register(ArmingSchedule)
class ArmingScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "camera", "area", "time_zone", "updated_at")
    list_filter = ("enabled",)
    inlines = [ArmingPeriodInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        arming_config_audit(target=obj, action="arming.schedule_update" if change else "arming.schedule_create",
                            by=request.user, changes=form.changed_data)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.has_changed():
            arming_config_audit(target=form.instance, action="arming.schedule_update", by=request.user,
                                changes=["periods"])

    def delete_model(self, request, obj):
        arming_config_audit(target=obj, action="arming.schedule_delete", by=request.user, changes=[])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(HeldAlert)
class HeldAlertAdmin(admin.ModelAdmin):
    list_display = ("event", "camera", "mode", "source", "severity", "kind", "held_at")
    list_filter = ("mode", "source", "kind")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
