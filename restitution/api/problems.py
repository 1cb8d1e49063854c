"""RFC 9457 problem details for every API error, with stable error codes.

Clients branch on `code` (stable) and show `detail` (human). Never a stack trace, never a 500
for a bad parameter.
"""

from __future__ import annotations

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..portability import BadParameter
from .authentication import InsufficientScope
from .parsers import BodyTooLarge

PROBLEM_TYPE_BASE = "https://restitution-gateway.org/problems/"
CONTENT_TYPE = "application/problem+json"

# DRF exception → (stable code, title).
_CODES: list[tuple[type[Exception], str, str]] = [
    (exceptions.NotAuthenticated, "authentication_required", "Authentication required"),
    (exceptions.AuthenticationFailed, "invalid_token", "Invalid token"),
    (exceptions.PermissionDenied, "insufficient_scope", "Not allowed"),
    (exceptions.NotFound, "not_found", "Not found"),
    (exceptions.MethodNotAllowed, "method_not_allowed", "Method not allowed"),
    (exceptions.NotAcceptable, "not_acceptable", "No acceptable representation"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", "Unsupported media type"),
    (exceptions.Throttled, "rate_limited", "Too many requests"),
    (exceptions.ParseError, "invalid_body", "Malformed request body"),
    (BodyTooLarge, "body_too_large", "Request body too large"),
    (exceptions.ValidationError, "invalid_parameter", "Invalid parameter"),
]


def problem(*, status_code: int, code: str, title: str, detail: str, **extra) -> Response:
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status_code, "detail": detail,
            "code": code, **extra}
    return Response(body, status=status_code, content_type=CONTENT_TYPE)


def exception_handler(exc, context):
    if isinstance(exc, BadParameter):
        return problem(status_code=status.HTTP_400_BAD_REQUEST, code="invalid_parameter",
                       title="Invalid parameter", detail=str(exc), parameter=exc.parameter)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler, logged
    code, title = "error", "Error"
    for klass, known_code, known_title in _CODES:
        if isinstance(exc, klass):
            code, title = known_code, known_title
            break
    detail = exc.detail if isinstance(getattr(exc, "detail", None), str) else None
    if detail is None:
        detail = str(getattr(exc, "detail", "")) or title
    result = problem(status_code=response.status_code, code=code, title=title, detail=str(detail))
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            result[header] = response[header]
    if isinstance(exc, InsufficientScope):
        result["WWW-Authenticate"] = exc.challenge  # RFC 6750 §3
    return result


def _django_problem(request, status_code: int, code: str, title: str, detail: str, fallback):
    """Errors Django raises before DRF is reached (a malformed query string, an unknown URL):
    problem+json under /api/, Django's own pages elsewhere."""
    if not request.path.startswith("/api/"):
        return fallback()
    from django.http import JsonResponse

    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status_code, "detail": detail,
            "code": code}
    return JsonResponse(body, status=status_code, content_type=CONTENT_TYPE)


def bad_request(request, exception=None):
    from django.views import defaults

    return _django_problem(request, 400, "invalid_request", "Bad request",
                           "The request could not be understood (e.g. a malformed query string).",
                           lambda: defaults.bad_request(request, exception))


def page_not_found(request, exception=None):
    from django.views import defaults

    return _django_problem(request, 404, "not_found", "Not found", "No such endpoint.",
                           lambda: defaults.page_not_found(request, exception))


def server_error(request):
    from django.views import defaults

    return _django_problem(request, 500, "server_error", "Server error",
                           "Something went wrong on our side; it has been logged.",
                           lambda: defaults.server_error(request))
