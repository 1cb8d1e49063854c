"""The operator metrics page in the admin: the same figures as the operator metrics API."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .. import metrics
from ..portability import BadParameter


def operator_metrics_page(request: HttpRequest) -> HttpResponse:
    if not metrics.is_operator(request.user):
        raise PermissionDenied
    error = ""
    try:
        start, end = metrics.period_of(request.GET)
    except BadParameter as exc:
        error = str(exc)
        start, end = metrics.period_of({})
    report = metrics.operator_metrics(start=start, end=end)
    context = {**admin.site.each_context(request), "title": "Operator metrics", "report": report,
               "error": error, "tiers": metrics.TIER_ORDER,
               "rows": [{"tier": tier, "invocations": report["invocations"][tier],
                         "average": report["average_response_ms"][tier],
                         "threshold": report["thresholds_ms"][tier],
                         "hours": report["performance"][tier]} for tier in metrics.TIER_ORDER]}
    return render(request, "admin/restitution/operator_metrics.html", context)
