"""Observability: the request id carried into every log line and Celery task, log redaction, and
the gateway's own Prometheus metrics.

Never logs or exports a token, a secret, a query string or personal data: metrics carry
source slugs, queue names, tiers and statuses only.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import time
from contextvars import ContextVar
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

_request_id: ContextVar[str] = ContextVar("gateway_request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


def bind_request_id(value: str):
    """Bind the id for the current request or task; returns the token to reset it with."""
    return _request_id.set(value)


def unbind_request_id(token) -> None:
    _request_id.reset(token)


# --- Logs --------------------------------------------------------------------------------------

# `name=value` or `"name": "value"` where name says it is a credential; and bearer headers.
_SECRET_PAIR = re.compile(
    r"""(?P<name>\b(?:access_token|refresh_token|id_token|client_secret|code_verifier|password|passwd|"""
    r"""secret|token|code|authorization)\b["']?\s*[=:]\s*["']?)(?P<value>[^\s&"',;}]+)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide credentials a message may carry by mistake (query strings, headers, URLs)."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(0) if m.group("value") in {"Bearer", "Basic", "[redacted]"}
                            else f"{m.group('name')}[redacted]", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}[redacted]@", text)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record and redacts credentials from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a request's error responses after the middleware is done: take its id then.
        record.request_id = current_request_id() or getattr(getattr(record, "request", None), "request_id", "")
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call must not lose the line
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line. Drops Django's `request` extra (its repr carries the query
    string) and redacts credentials from every other string field. `time` is RFC 3339 in UTC
    with its offset (section 5.6), to the millisecond."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds")

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.pop("request", None)
        for key, value in list(log_record.items()):
            if isinstance(value, str) and key != "message":
                log_record[key] = redact(value)


# --- Celery: the request id travels in the task's message headers ----------------------------

@before_task_publish.connect(dispatch_uid="gateway-request-id-publish")
def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


@task_prerun.connect(dispatch_uid="gateway-request-id-prerun")
def _bind_task_request_id(task=None, **kwargs: Any) -> None:
    if task is None:
        return
    request_id = getattr(task.request, "request_id", None) or (getattr(task.request, "headers", None)
                                                                or {}).get("request_id") or ""
    task.request.gateway_request_id_token = bind_request_id(str(request_id)[:64])


@task_postrun.connect(dispatch_uid="gateway-request-id-postrun")
def _unbind_task_request_id(task=None, **kwargs: Any) -> None:
    token = getattr(getattr(task, "request", None), "gateway_request_id_token", None)
    if token is not None:
        try:
            unbind_request_id(token)
        except ValueError:  # bound in another context (eager tasks inside a request)
            pass


# --- Prometheus: API latency per tier, and a collector over the database -----------------------

API_LATENCY = Histogram(
    "gateway_api_request_duration_seconds", "API and OAuth2 endpoint latency, by CDR-style tier.",
    ["tier"], buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0),
)
API_RESPONSES = Counter("gateway_api_responses_total", "API and OAuth2 responses by tier and status class.",
                        ["tier", "status_class"])


#: Which tier an endpoint belongs to (URL names), after the CDR's performance tiers.
TIERS: dict[str, str] = {
    "oauth-server-metadata": "unauthenticated",
    "oauth-server-metadata-issuer": "unauthenticated",
    "oauth-resource-metadata": "unauthenticated",
    "oauth-resource-metadata-path": "unauthenticated",
    "api-schema": "unauthenticated",
    "token": "authentication",
    "revoke-token": "authentication",
    "introspect": "authentication",
    "dcr-register": "authentication",
    "dcr-register-management": "authentication",
    "api-me": "high-priority",
    "api-datasets": "high-priority",
    "api-dataset-schema": "high-priority",
    "api-refresh": "high-priority",
    "api-extraction": "high-priority",
    "api-records": "large-payload",
    "api-changes": "large-payload",
    "api-document": "large-payload",
}


def endpoint_of(path: str) -> tuple[str, str] | None:
    """(URL name, tier) of a path the metrics follow, or None for pages that are not API calls."""
    if not (path.startswith("/api/") or path.startswith("/o/") or path.startswith("/.well-known/")):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None  # scanners' guesses: neither an endpoint nor worth a database write
    tier = TIERS.get(match.url_name or "")
    return (match.url_name, tier) if tier else None


class ApiMetricsMiddleware:
    """Times every API/OAuth2 call: a Prometheus observation and one ApiCall row (no content).

    It observes the customer's access log, never owns it: when the request's access events are
    still to be written (`request.access_log`, set by access_log.AccessLogMiddleware, which sits
    outside this one), the row goes into their statement; otherwise it is saved on its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = endpoint_of(request.path_info)
        if endpoint is None:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        name, tier = endpoint
        API_LATENCY.labels(tier=tier).observe(elapsed)
        API_RESPONSES.labels(tier=tier, status_class=f"{response.status_code // 100}xx").inc()
        if settings.GATEWAY_RECORD_API_CALLS:
            self.record(request, response, name=name, tier=tier, elapsed=elapsed)
        return response

    @staticmethod
    def record(request, response, *, name: str, tier: str, elapsed: float) -> None:
        """The ApiCall row: with the access events when there are some to go with, alone otherwise.
        A failure is logged: the answer matters more than its statistics."""
        from django.db import DatabaseError

        from .metrics import new_api_call

        token = getattr(request, "auth", None)
        call = new_api_call(tier=tier, endpoint=name, status=response.status_code,
                            duration_ms=round(elapsed * 1000), client_id=getattr(token, "application_id", None))
        access_log = getattr(request, "access_log", None)
        if access_log is not None and access_log.write_along(call):
            return
        try:
            call.save()
        except DatabaseError:
            logging.getLogger(__name__).warning("could not record an API call for the operator metrics")


#: How long a client should wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable(request, exception: Exception) -> HttpResponse:
    """The 503 problem (with Retry-After) answered while the database cannot be used."""
    logging.getLogger(__name__).warning("database unavailable (%s) for request %s", type(exception).__name__,
                                        getattr(request, "request_id", "-"))
    body = {"type": "https://restitution-gateway.org/problems/service_unavailable",
            "title": "Service unavailable", "status": 503, "code": "service_unavailable",
            "detail": "The service is briefly unavailable; retry after the delay given."}
    response = HttpResponse(json.dumps(body), status=503, content_type="application/problem+json")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class GatewayCollector(Collector):
    """Figures read from the database and the broker at scrape time (one query per family)."""

    def describe(self):
        # Registering must not query the database (the app registry is not ready then).
        return [CounterMetricFamily("gateway_extraction_runs", ""), CounterMetricFamily("gateway_extraction_rows", ""),
                GaugeMetricFamily("gateway_grants", ""), CounterMetricFamily("gateway_grants_created", ""),
                GaugeMetricFamily("gateway_queue_depth", "")]

    def collect(self):
        from django.db.models import Count, Sum

        from .models import ExtractionRun, Grant

        runs = CounterMetricFamily("gateway_extraction_runs", "Extraction runs by source and status.",
                                   labels=["source", "status"])
        records = CounterMetricFamily("gateway_extraction_rows", "Legacy rows handled by extraction, by "
                                      "source and outcome.", labels=["source", "outcome"])
        outcomes = ("read", "created", "updated", "unchanged", "deleted", "rejected")
        by_source = (ExtractionRun.objects.values("source__slug", "status")
                     .annotate(n=Count("id"), **{f"s_{o}": Sum(o) for o in outcomes}))
        totals: dict[tuple[str, str], int] = {}
        for row in by_source:
            runs.add_metric([row["source__slug"], row["status"]], row["n"])
            for outcome in outcomes:
                key = (row["source__slug"], outcome)
                totals[key] = totals.get(key, 0) + (row[f"s_{outcome}"] or 0)
        for (source, outcome), value in sorted(totals.items()):
            records.add_metric([source, outcome], value)
        yield runs
        yield records

        from .metrics import grant_counts

        grants = GaugeMetricFamily("gateway_grants", "Grants by status (active, revoked, expired, used).",
                                   labels=["status"])
        for status, value in grant_counts().items():
            grants.add_metric([status], value)
        yield grants
        created = CounterMetricFamily("gateway_grants_created", "Grants ever given, one-time or ongoing.",
                                      labels=["duration"])
        for row in Grant.objects.values("duration").annotate(n=Count("id")):
            created.add_metric(["one-time" if row["duration"] == Grant.Duration.ONE_TIME else "ongoing"], row["n"])
        yield created

        depth = GaugeMetricFamily("gateway_queue_depth", "Messages waiting in each Celery queue.",
                                  labels=["queue"])
        for queue, value in queue_depths().items():
            depth.add_metric([queue], value)
        yield depth


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue on a Redis broker (kombu keeps each queue as a list)."""
    url = settings.CELERY_BROKER_URL
    if not url or not url.startswith(("redis://", "rediss://")) or settings.CELERY_TASK_ALWAYS_EAGER:
        return {}
    import redis

    queues = {settings.CELERY_TASK_DEFAULT_QUEUE, *(r["queue"] for r in settings.CELERY_TASK_ROUTES.values())}
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        # kombu's priority steps live in sibling lists named "<queue>\x06\x16<n>".
        return {q: sum(client.llen(key) for key in [q, *(f"{q}\x06\x16{n}" for n in (3, 6, 9))])
                for q in sorted(queues)}
    except redis.RedisError:
        return {}
    finally:
        client.close()


_collector_registered = False


def register_collector() -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(GatewayCollector())
        _collector_registered = True
