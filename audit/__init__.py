"""The audit log: who did what to which object, written by the services of every app.
"""
