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
