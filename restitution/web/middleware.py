"""A request id on every request: taken from X-Request-ID when sane, else made; echoed back."""

from __future__ import annotations

import re
import uuid

from ..observability import bind_request_id, unbind_request_id

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
