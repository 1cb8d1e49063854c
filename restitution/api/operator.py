"""The operator's metrics API (after CDR "Get Metrics") and the Prometheus scrape endpoint.

Both are for the data holder's operations team only: a staff account with the
`restitution.view_apicall` permission, or the bearer token in GATEWAY_METRICS_TOKEN. Neither
returns a customer's identity or data.
"""

from __future__ import annotations

import hmac
from datetime import datetime, time, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import metrics
from ..portability import BadParameter


def has_metrics_token(request: HttpRequest) -> bool:
    """True when the request carries `Authorization: Bearer <GATEWAY_METRICS_TOKEN>` (compared in
    constant time); always False when no token is configured."""
    expected = settings.GATEWAY_METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[len("Bearer "):].encode(), expected.encode())


def is_operator(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm("restitution.view_apicall"))


class IsOperator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_operator(request.user) or has_metrics_token(request._request)


def parse_moment(value: str | None, *, parameter: str, default: datetime) -> datetime:
    """An ISO 8601 date-time (naive = the gateway's time zone) or a date (its midnight)."""
    if not value:
        return default
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is None:
                raise ValueError
            moment = datetime.combine(day, time.min)
    except ValueError:
        raise BadParameter(parameter, f"{parameter} must be an ISO 8601 date or date-time") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def period_of(params) -> tuple[datetime, datetime]:
    """The reporting period: `start` (default: today's midnight) to `end` (default: now)."""
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    start = parse_moment(params.get("start"), parameter="start", default=midnight)
    end = parse_moment(params.get("end"), parameter="end", default=now)
    if end <= start:
        raise BadParameter("end", "end must be after start")
    if end - start > timedelta(days=366):
        raise BadParameter("end", "the period may span one year at most")
    return start, end


class OperatorMetricsView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsOperator]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        start, end = period_of(request.query_params)
        return Response(metrics.operator_metrics(start=start, end=end))


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """django-prometheus's and the gateway's metrics (Prometheus text format), for the metrics
    token or an operator's session."""
    if not (has_metrics_token(request) or is_operator(getattr(request, "user", None))):
        response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    import os

    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    from ..observability import GatewayCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: add up their files, plus the database figures once.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(GatewayCollector())
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
