"""Alerts: notification channels, rules, routing of stored events, digests and deliveries.

Reacts to events.signals.events_stored; imports events, cameras, audit and the inference address checks.
"""
