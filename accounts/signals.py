"""What the accounts app announces to the apps above it (docs/architecture.md: it may not call them).

``signin_lockouts_cleared``: an administrator cleared a user's sign-in pauses
(``services.signin_lockouts_clear``). Arguments: ``user`` (whose pauses), ``by`` (the administrator,
or None), ``address`` (the one client address cleared, or "" for all of them), ``cleared`` (how
many pauses were in force). The audit log records it.
"""

from django.dispatch import Signal

signin_lockouts_cleared = Signal()
