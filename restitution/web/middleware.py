"""A request id on every request: taken from X-Request-ID when sane, else made; echoed back.
A 503 (not a 500) while the database is unreachable."""

from __future__ import annotations

import json
import logging
import re
import uuid

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from ..observability import bind_request_id, unbind_request_id

log = logging.getLogger(__name__)

_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = given if _SANE.match(given) else uuid.uuid4().hex
        # Bound for the request's log lines and for the Celery tasks it queues (observability.py).
        token = bind_request_id(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            unbind_request_id(token)
        response["X-Request-ID"] = request.request_id
        return response


class DatabaseUnavailableMiddleware:
    """While the database cannot be reached (a restart, a failover), answer 503 with Retry-After
    instead of 500: clients retry later and monitors see an outage, not a bug. Only the
    database's operational errors are caught here; the connection is reopened on the next
    request (CONN_HEALTH_CHECKS)."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return self.unavailable(request, exception)

    @classmethod
    def unavailable(cls, request, exception: Exception) -> HttpResponse:
        """The 503 problem answered while the database cannot be used."""
        log.warning("database unavailable (%s) for request %s", type(exception).__name__,
                    getattr(request, "request_id", "-"))
        body = {"type": "https://restitution-gateway.org/problems/service_unavailable",
                "title": "Service unavailable", "status": 503, "code": "service_unavailable",
                "detail": "The service is briefly unavailable; retry after the delay given."}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/problem+json")
        response["Retry-After"] = str(cls.RETRY_AFTER_SECONDS)
        return response
