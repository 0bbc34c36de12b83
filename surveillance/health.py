"""GET /health/: the state of the database, Redis and the live inference workers."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cameras.live import client as redis_client
from cameras.live import live_workers


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
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)
