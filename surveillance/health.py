"""GET /health/: the state of the database, Redis and the live inference workers.

Anyone gets up or down: ``{"status": "ok"}`` with 200, or ``{"status": "error"}`` with 503. The
details (each check, the workers' names and cameras, errors) go only to those who may read /metrics
(``surveillance.metrics.metrics_allowed``: the ``METRICS_TOKEN`` bearer, a staff session, or, while no
token is set, a direct loopback request) and to staff with an API access token.
"""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.authentication import RevocableJWTAuthentication
from cameras.live import client as redis_client
from cameras.live import live_workers

from .metrics import metrics_allowed


def details_allowed(request) -> bool:
    """Who may see the checks' details: see the module's docstring. False when it cannot be told."""
    try:
        if metrics_allowed(request):
            return True
        found = RevocableJWTAuthentication().authenticate(request)
        user = found[0] if found else None
        return bool(user is not None and user.is_active and user.is_staff)
    except Exception:  # a bad or revoked token, or the database that holds sessions and users is down
        return False


@require_GET
@never_cache
def health(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": str(exc)[:200]}
    workers = {}
    try:
        client = redis_client()
        client.ping()
        checks["redis"] = {"ok": True}
        workers = live_workers(client)
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": str(exc)[:200]}
    checks["workers"] = {
        "ok": bool(workers),
        "count": len(workers),
        "cameras": sum(len(c) for c in workers.values()),
        "names": sorted(workers),
    }
    healthy = checks["database"]["ok"] and checks["redis"]["ok"]
    body = {"status": "ok" if healthy else "error"}
    if details_allowed(request):
        body.update(checks)
    return JsonResponse(body, status=200 if healthy else 503)
