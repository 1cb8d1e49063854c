"""The operator metrics page in the admin: the same figures as the operator metrics API, in words
and percentages, each next to the threshold it is judged against."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import metrics
from ..portability import BadParameter

# Availability below this share of calls without a server error is shown as a problem (the
# Australian CDR's non-functional requirement for data holders is 99.5 % a month).
AVAILABILITY_TARGET = 0.995

TIER_LABELS = {
    "unauthenticated": gettext_noop("Unauthenticated (metadata, discovery)"),
    "authentication": gettext_noop("Authentication (token, consent)"),
    "high-priority": gettext_noop("High priority (customer data, one page)"),
    "large-payload": gettext_noop("Large payload (archives, bulk pages)"),
}


def percent(share: float | None) -> str:
    if share is None:
        return "—"
    return f"{formats.number_format(share * 100, 2)} %"


def rate(per_second: float) -> str:
    """Calls per second, read in the unit that gives a readable number."""
    if per_second >= 1:
        return _("%(n)s calls per second") % {"n": formats.number_format(per_second, 1)}
    if per_second * 60 >= 1:
        return _("%(n)s calls per minute") % {"n": formats.number_format(per_second * 60, 1)}
    return _("%(n)s calls per hour") % {"n": formats.number_format(per_second * 3600, 1)}


def _moment(iso: str) -> str:
    return formats.date_format(timezone.localtime(datetime.fromisoformat(iso)), "SHORT_DATETIME_FORMAT")


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
    rows = []
    for tier in metrics.TIER_ORDER:
        hours = report["performance"][tier]
        calls = sum(hour["calls"] for hour in hours)
        within = sum(hour["within_threshold"] for hour in hours)
        average, threshold = report["average_response_ms"][tier], report["thresholds_ms"][tier]
        rows.append({"tier": tier, "label": _(TIER_LABELS.get(tier, tier)),
                     "invocations": report["invocations"][tier], "average": average, "threshold": threshold,
                     "over": average is not None and average > threshold,
                     "within": percent(within / calls if calls else None),
                     "hours": [{"hour": _moment(hour["hour"]), "calls": hour["calls"],
                                "within": hour["within_threshold"], "share": percent(hour["share"])}
                               for hour in hours]})
    context = {**admin.site.each_context(request), "title": _("Operator metrics"), "report": report,
               "error": error, "tiers": metrics.TIER_ORDER, "rows": rows,
               "availability": percent(report["availability"]), "availability_target": percent(AVAILABILITY_TARGET),
               "availability_low": report["availability"] < AVAILABILITY_TARGET,
               "average_rate": rate(report["average_tps"]),
               "peak_rate": _("%(n)s calls in one second") % {"n": report["peak_tps"]},
               "period_start": _moment(report["period"]["start"]), "period_end": _moment(report["period"]["end"]),
               "time_zone": timezone.get_current_timezone_name()}
    return render(request, "admin/restitution/operator_metrics.html", context)
