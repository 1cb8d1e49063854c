"""Operator metrics modelled on Australia's CDR "Get Metrics": availability, performance per
tier per hour, invocations, response times, TPS, errors, rejections, customers, clients and
authorisations (active, new, revoked, amended, expired, abandoned consent flows by stage).

Reads ApiCall, ConsentFlow, Grant and AccessEvent rows; never reads records or tokens.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db.models import Avg, Count, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import TruncHour, TruncSecond
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .client_address import client_ip
from .models import AccessEvent, ApiCall, ConsentFlow, Customer, Grant, PimsClient
from .portability import BadParameter

TIER_ORDER = ("unauthenticated", "authentication", "high-priority", "large-payload")
REPLACED = "replaced by a new consent"  # consent.create_grant's reason when a grant is amended

#: CDR's names for the stage at which a consent flow was abandoned.
ABANDONED_STAGES = {
    ConsentFlow.Stage.AUTHENTICATION: "pre-authentication",
    ConsentFlow.Stage.CONSENT: "pre-authorisation",
    ConsentFlow.Stage.REJECTED: "rejected",
    ConsentFlow.Stage.TOKEN_EXCHANGE: "failed-token-exchange",
}


def tier_threshold_ms(tier: str) -> int:
    """The response time a call of this tier must beat to count as performing (CDR NFRs)."""
    return settings.GATEWAY_TIER_THRESHOLDS_MS.get(tier, 1500)


def new_api_call(*, tier: str, endpoint: str, status: int, duration_ms: int,
                 client_id: int | None = None, at: datetime | None = None) -> ApiCall:
    """One ApiCall row, not saved yet (the API call recorder may have it written with the
    request's access events, in their statement)."""
    return ApiCall(at=at or timezone.now(), tier=tier, endpoint=endpoint[:64], status=status,
                   duration_ms=max(0, duration_ms), client_id=client_id)


def record_api_call(*, tier: str, endpoint: str, status: int, duration_ms: int,
                    client_id: int | None = None, at: datetime | None = None) -> ApiCall:
    """One ApiCall row, saved."""
    call = new_api_call(tier=tier, endpoint=endpoint, status=status, duration_ms=duration_ms,
                        client_id=client_id, at=at)
    call.save()
    return call


# --- Consent flows ---------------------------------------------------------------------------

_SESSION_KEY = "gateway_consent_flows"
ANONYMOUS_BUDGET_SECONDS = 3600


def anonymous_budget_key(ip: str) -> str:
    return f"consent-flows:{ip}"


def _anonymous_flow_allowed(request: HttpRequest) -> bool:
    """One more flow (a row and a session) for this anonymous visitor's address this hour?

    Counted in the shared rate-limit cache; while it is unreachable, nothing is written.
    """
    budget = settings.GATEWAY_CONSENT_FLOWS_PER_IP_HOUR
    if budget <= 0:
        return False
    key = anonymous_budget_key(client_ip(request) or "unknown")
    cache = caches["throttle"]
    try:
        cache.add(key, 0, timeout=ANONYMOUS_BUDGET_SECONDS)
        return cache.incr(key) <= budget
    except Exception:  # noqa: BLE001 - a cache outage must not break the login redirect
        return False


def consent_flow_step(*, request: HttpRequest, client_id: str, state: str, stage: str,
                      customer: Customer | None = None, grant: Grant | None = None) -> ConsentFlow | None:
    """Start or advance the flow of this browser for (client, state); a flow never goes back."""
    if not client_id or not state or not hasattr(request, "session"):
        return None
    flows: dict[str, int] = request.session.get(_SESSION_KEY, {})
    key = f"{client_id}:{state}"[:200]
    flow = ConsentFlow.objects.filter(pk=flows.get(key)).first() if key in flows else None
    now = timezone.now()
    if flow is None:
        # Only approved clients' flows are followed: an anonymous request for an unknown or
        # unapproved client writes nothing.
        client = PimsClient.objects.filter(client_id=client_id, approval=PimsClient.Approval.APPROVED).first()
        if client is None:
            return None
        # Anonymous visitors start flows within a budget per address: without it, each request
        # for the authorization endpoint would write a row and a session, unbounded.
        if not request.user.is_authenticated and not _anonymous_flow_allowed(request):
            return None
        flow = ConsentFlow.objects.create(client=client, stage=stage, customer=customer, grant=grant,
                                          started_at=now, updated_at=now)
        # Keep the session small: the last few flows of this browser are enough.
        flows = dict(list(flows.items())[-9:])
        flows[key] = flow.pk
        request.session[_SESSION_KEY] = flows
        return flow
    order = list(ConsentFlow.Stage.values)
    if order.index(stage) >= order.index(flow.stage):
        flow.stage, flow.updated_at = stage, now
        flow.customer = customer or flow.customer
        flow.grant = grant or flow.grant
        flow.save(update_fields=["stage", "updated_at", "customer", "grant"])
    return flow


def abandoned_consent_flows(*, start: datetime, end: datetime, now: datetime) -> dict[str, int]:
    """Flows started in [start, end) that ended before a token, by the stage they stopped at.

    A flow still in progress counts once it has been idle GATEWAY_CONSENT_FLOW_TIMEOUT seconds; a
    flow at `token-exchange` is complete if a token was issued under its grant.
    """
    idle_before = now - timedelta(seconds=settings.GATEWAY_CONSENT_FLOW_TIMEOUT)
    token_issued = AccessEvent.objects.filter(grant_id=OuterRef("grant_id"), kind=AccessEvent.Kind.TOKEN_ISSUED)
    flows = (ConsentFlow.objects.filter(started_at__gte=start, started_at__lt=end)
             .exclude(stage=ConsentFlow.Stage.COMPLETED)
             .annotate(exchanged=Exists(token_issued))
             .filter(Q(stage=ConsentFlow.Stage.REJECTED) | Q(updated_at__lt=idle_before))
             .exclude(stage=ConsentFlow.Stage.TOKEN_EXCHANGE, exchanged=True))
    counts = {name: 0 for name in ABANDONED_STAGES.values()}
    for row in flows.values("stage").annotate(n=Count("id")):
        counts[ABANDONED_STAGES[row["stage"]]] += row["n"]
    return counts


# --- Grants ----------------------------------------------------------------------------------

def _active_at(moment: datetime) -> Q:
    return (Q(created_at__lte=moment, expires_at__gt=moment)
            & (Q(revoked_at__isnull=True) | Q(revoked_at__gt=moment))
            & (Q(ended_at__isnull=True) | Q(ended_at__gt=moment)))


def grant_counts(*, now: datetime | None = None) -> dict[str, int]:
    """Grants by current status: active, revoked, expired, used (one-time, used up)."""
    now = now or timezone.now()
    return Grant.objects.aggregate(
        active=Count("id", filter=_active_at(now)),
        revoked=Count("id", filter=Q(revoked_at__isnull=False)),
        used=Count("id", filter=Q(revoked_at__isnull=True, ended_at__isnull=False)),
        expired=Count("id", filter=Q(revoked_at__isnull=True, ended_at__isnull=True, expires_at__lte=now)),
    )


def authorisations(*, start: datetime, end: datetime, now: datetime) -> tuple[dict[str, Any], QuerySet[Grant]]:
    """Authorisation figures for the period, and the grants active at its end (or now)."""
    grants = Grant.objects.all()
    new = grants.filter(created_at__gte=start, created_at__lt=end)
    revoked = grants.filter(revoked_at__gte=start, revoked_at__lt=end)
    expired = grants.filter(expires_at__gte=start, expires_at__lt=min(end, now)).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gte=end)).filter(Q(ended_at__isnull=True) | Q(ended_at__gte=end))
    moment = min(end, now)
    active = grants.filter(_active_at(moment))
    return {
        "active": active.count(),
        "new": {"one_time": new.filter(duration=Grant.Duration.ONE_TIME).count(),
                "ongoing": new.exclude(duration=Grant.Duration.ONE_TIME).count()},
        "revoked": revoked.exclude(revoked_reason=REPLACED).count(),
        "amended": revoked.filter(revoked_reason=REPLACED).count(),
        "expired": expired.count(),
        "abandoned_consent_flows": abandoned_consent_flows(start=start, end=end, now=now),
    }, active


# --- The report ------------------------------------------------------------------------------

def operator_metrics(*, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Every figure for calls made and consents given in [start, end)."""
    now = now or timezone.now()
    if end <= start:
        raise ValueError("the end of the period must be after its start")
    calls = ApiCall.objects.filter(at__gte=start, at__lt=end)
    by_tier = {row["tier"]: row for row in calls.values("tier").annotate(n=Count("id"), avg=Avg("duration_ms"))}
    total = sum(row["n"] for row in by_tier.values())
    server_errors = calls.filter(status__gte=500).count()
    peak = (calls.annotate(second=TruncSecond("at")).values("second").annotate(n=Count("id"))
            .aggregate(peak=Max("n"))["peak"]) or 0
    seconds = (min(end, now) - start).total_seconds() if min(end, now) > start else (end - start).total_seconds()
    performance: dict[str, list[dict[str, Any]]] = {}
    for tier in TIER_ORDER:
        threshold = tier_threshold_ms(tier)
        hours = (calls.filter(tier=tier).annotate(hour=TruncHour("at")).values("hour")
                 .annotate(n=Count("id"), ok=Count("id", filter=Q(duration_ms__lte=threshold))).order_by("hour"))
        performance[tier] = [{"hour": h["hour"].isoformat(), "calls": h["n"], "within_threshold": h["ok"],
                              "share": round(h["ok"] / h["n"], 4)} for h in hours]
    errors = {str(row["status"]): row["n"] for row in calls.filter(status__gte=400).exclude(status=429)
              .values("status").annotate(n=Count("id")).order_by("status")}
    authz, active = authorisations(start=start, end=end, now=now)
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "availability": round(1 - server_errors / total, 6) if total else 1.0,
        "performance": performance,
        "thresholds_ms": {tier: tier_threshold_ms(tier) for tier in TIER_ORDER},
        "invocations": {tier: by_tier[tier]["n"] if tier in by_tier else 0 for tier in TIER_ORDER},
        "average_response_ms": {tier: round(by_tier[tier]["avg"], 1) if tier in by_tier else None
                                for tier in TIER_ORDER},
        "average_tps": round(total / seconds, 6) if seconds > 0 else 0.0,
        "peak_tps": peak,
        "errors": errors,
        "rejections": calls.filter(status=429).count(),
        "active_customers": active.values("customer_id").distinct().count(),
        "active_clients": active.values("client_id").distinct().count(),
        "authorisations": authz,
    }


# --- Who may read them, and for which period (the operator API and the admin page) ---------------

def is_operator(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm("restitution.view_apicall"))


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
