"""The camera page's zone editor: who may use it, and the zones as the editor reads them."""

from django import template

from cameras.widgets import kind_labels_json, zones_json

register = template.Library()


@register.simple_tag
def zone_kind_labels() -> str:
    return kind_labels_json()


@register.filter
def as_zones_json(zones) -> str:
    return zones_json(zones)
