"""Template filters for what the worker wrote about an event, in the reader's language (events/reasons.py)."""

from django import template

from events import reasons

register = template.Library()


@register.filter
def reason_text(text, terms=None):
    """``{{ reason|reason_text:object_terms }}``"""
    return reasons.reason_text(text, terms)


@register.filter
def action_name(action):
    return reasons.action_name(str(action))


@register.filter
def action_names(actions):
    return ", ".join(reasons.action_name(str(a)) for a in actions or ())


@register.filter
def policy_name(policy):
    return reasons.policy_name(str(policy))


@register.filter
def input_name(name):
    return reasons.input_name(str(name))


@register.filter
def term_text(term):
    return reasons.term_text(term) if isinstance(term, dict) else ""


@register.filter
def event_description(event):
    return reasons.event_description(event)
