"""GET /healthz: whether this web process can reach its database (the container health check)."""

from django.db import connection
from django.http import JsonResponse


def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure makes the process unhealthy
        return JsonResponse({"database": f"unreachable: {type(exc).__name__}"}, status=503)
    return JsonResponse({"database": "ok"})
