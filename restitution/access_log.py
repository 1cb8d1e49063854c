"""The customer's access log around each request: the access events a view records are written
before its response leaves — one round trip, together with any row handed over to go with them.

Owns those writes whatever else follows the request: operator metrics (observability.py) may add
their ApiCall row to the statement, and the events are written with metrics off, absent or failing.
"""

from __future__ import annotations

from django.db import DatabaseError

from . import audit
from .observability import database_unavailable


class AccessLogMiddleware:
    """Sets `request.access_log` (an audit.PendingAccess) and writes what it holds after the view.
    If the events cannot be written the response does not leave (an access that succeeded is never
    missing from the customer's history): a 503 instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        pending = audit.PendingAccess()
        setattr(request, audit.PENDING_ATTRIBUTE, pending)
        response = self.get_response(request)
        try:
            audit.write_pending(pending)
        except DatabaseError as exc:
            response.close()
            return database_unavailable(request, exc)
        return response
