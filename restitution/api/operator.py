"""The operator's metrics API (after CDR "Get Metrics") and the Prometheus scrape endpoint.

Both are for the data holder's operations team only: a staff account with the
`restitution.view_apicall` permission, or the bearer token in GATEWAY_METRICS_TOKEN. Neither
returns a customer's identity or data.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import metrics


def has_metrics_token(request: HttpRequest) -> bool:
    """True when the request carries `Authorization: Bearer <GATEWAY_METRICS_TOKEN>` (compared in
    constant time); always False when no token is configured."""
    expected = settings.GATEWAY_METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[len("Bearer "):].encode(), expected.encode())


class IsOperator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return metrics.is_operator(request.user) or has_metrics_token(request._request)


class OperatorMetricsView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsOperator]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        start, end = metrics.period_of(request.query_params)
        return Response(metrics.operator_metrics(start=start, end=end))


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """django-prometheus's and the gateway's metrics (Prometheus text format), for the metrics
    token or an operator's session."""
    if not (has_metrics_token(request) or metrics.is_operator(getattr(request, "user", None))):
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
