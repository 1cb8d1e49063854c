"""Liveness probe answered before host validation and HTTPS redirection.

`/healthz` says the process serves requests; it never touches the database or the broker (a
load balancer must not restart web processes because PostgreSQL is slow).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class LivenessMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return HttpResponse("ok\n", content_type="text/plain")
        return self.get_response(request)


# --- Readiness: /readyz ----------------------------------------------------------------------
# Says whether this process can do its work: PostgreSQL answers, Redis (cache, rate limits,
# source leases) answers, the Celery broker accepts a connection, and file storage can write.
# A load balancer takes a process out of rotation on 500 here; it never restarts it for that.

import dataclasses  # noqa: E402
import datetime  # noqa: E402

from django.conf import settings  # noqa: E402
from health_check.base import HealthCheck  # noqa: E402
from health_check.checks import Database, Storage  # noqa: E402
from health_check.exceptions import ServiceUnavailable  # noqa: E402
from health_check.views import HealthCheckView  # noqa: E402


@dataclasses.dataclass
class RedisPing(HealthCheck):
    """PING the gateway's Redis (REDIS_URL), with a short connect timeout."""

    url: str = dataclasses.field(repr=False, default="")
    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unreachable ({type(exc).__name__})") from exc
        finally:
            client.close()


@dataclasses.dataclass
class Broker(HealthCheck):
    """Open (and close) a connection to the Celery broker, as a worker or a publisher would."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        from config.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # kombu raises transport-specific errors
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from exc


def readiness_checks() -> list[HealthCheck]:
    """The checks for this deployment's shape: no Redis or broker check in embedded mode."""
    checks: list[HealthCheck] = [Database(alias="default"), Storage(alias="default")]
    if settings.REDIS_URL:
        checks.append(RedisPing(url=settings.REDIS_URL))
    if settings.CELERY_BROKER_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
        checks.append(Broker())
    return checks


class ReadinessView(HealthCheckView):
    """django-health-check's view over readiness_checks(); JSON unless asked otherwise."""

    def get_checks(self):
        return readiness_checks()

    async def get(self, request, *args, **kwargs):
        if "format" not in request.GET and "text/html" not in request.headers.get("accept", ""):
            request.GET = request.GET.copy()
            request.GET["format"] = "json"
        return await super().get(request, *args, **kwargs)
