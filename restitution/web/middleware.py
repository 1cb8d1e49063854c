"""A request id on every request: taken from X-Request-ID when sane, else made; echoed back.
A 503 (not a 500) while the database is unreachable. No shared or browser cache keeps a
response that carries personal data."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils.cache import patch_cache_control

from ..observability import DATABASE_RETRY_AFTER_SECONDS, bind_request_id, database_unavailable, unbind_request_id

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

    RETRY_AFTER_SECONDS = DATABASE_RETRY_AFTER_SECONDS

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable(request, exception)


class PersonalDataNoStoreMiddleware:
    """`Cache-Control: private, no-store` on every response that may carry personal data (RFC 9111
    §5.2.2.5): whatever answers a bearer token or a logged-in customer, and every page of the
    portability API, the consent page and the customer's account pages. A browser's disk cache, a
    shared proxy or the back button then keep no copy of someone's data.

    Validators are untouched: an API client still revalidates with If-None-Match and gets a 304.
    Public responses (metadata, the OpenAPI document, static files) keep their own caching.
    """

    PERSONAL_PREFIXES = ("/api/v1/", "/o/authorize/", "/account/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.is_personal(request):
            patch_cache_control(response, private=True, no_store=True)
        return response

    @classmethod
    def is_personal(cls, request) -> bool:
        if request.path.startswith(cls.PERSONAL_PREFIXES) or "HTTP_AUTHORIZATION" in request.META:
            return True
        # Only a request with a session cookie can be a logged-in one: others never load a session
        # here (which would add `Vary: Cookie` to public responses).
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return False
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated)
