"""Events: storing the worker's records, score history, the event API and the pages that show events.

Announces stored events and false alarms (signals.py) to the apps that act on them.
"""
