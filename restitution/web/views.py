"""Customer pages: the dashboard (my data, connected clouds, access history), revoke, receipts.

Every query here is filtered by the logged-in customer; another customer's grant is a 404.
Views are thin: they call consent.py and runs.py and render.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import consent, store
from .. import runs as run_requests
from ..models import AccessEvent, Customer, Dataset, Grant
from .customers import signed_in_customer
from .data import latest_download


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


def _my_data(customer: Customer, language: str) -> list[dict]:
    counts = store.live_counts(customer_id=customer.pk)
    freshness = run_requests.customer_freshness(customer=customer)
    french = language.startswith("fr")
    return [
        {"slug": dataset.slug, "title": dataset.title_fr if french else dataset.title_en,
         "description": dataset.description_fr if french else dataset.description_en,
         "count": counts.get(dataset.slug, 0), "extracted_at": freshness.get(dataset.slug)}
        for dataset in Dataset.objects.filter(is_published=True).order_by("slug")
        # Only datasets this holder keeps something of for this customer.
        if dataset.slug in counts or freshness.get(dataset.slug) is not None
    ]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    customer = signed_in_customer(request)
    language = get_language() or "en"
    grants = list(Grant.objects.filter(customer=customer).select_related("client")
                  .prefetch_related("datasets").annotate(last_access=Max("access_events__created_at")))
    for grant in grants:
        grant.current_status = grant.status()
    runs, progress = run_requests.runs_in_progress(customer=customer)
    return render(request, "restitution/dashboard.html", {
        "customer": customer,
        "datasets": _my_data(customer, language),
        "active_grants": [g for g in grants if g.current_status == "active"],
        "past_grants": [g for g in grants if g.current_status != "active"],
        "events": AccessEvent.objects.filter(customer=customer)
        .select_related("client", "dataset", "grant")[:200],
        "runs": runs,
        "progress": int(100 * progress) if runs else None,
        "language": language,
        "download": latest_download(customer=customer),
    })


@login_required
@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    customer = signed_in_customer(request)
    try:
        runs = run_requests.request_customer_refresh(customer=customer)
    except run_requests.RefreshTooSoon as wait:
        minutes = max(1, round(wait.seconds / 60))
        messages.info(request, ngettext(
            "Your data was updated a moment ago; you can ask again in %(n)d minute.",
            "Your data was updated a moment ago; you can ask again in %(n)d minutes.", minutes) % {"n": minutes})
        return redirect("dashboard")
    messages.info(request, _("Updating your data from %(n)d system(s)…") % {"n": len(runs)})
    return redirect("dashboard")


@login_required
def refresh_status(request: HttpRequest) -> JsonResponse:
    """Progress of the customer's running extractions, for the dashboard's progress bar."""
    runs, progress = run_requests.runs_in_progress(customer=signed_in_customer(request))
    return JsonResponse({"active": len(runs), "progress": round(progress, 3)})


@login_required
@require_POST
def revoke(request: HttpRequest, receipt_id) -> HttpResponse:
    grant = get_object_or_404(Grant, receipt_id=receipt_id, customer=signed_in_customer(request))
    consent.revoke_grant(grant=grant, request=request)
    messages.success(request, _("Access revoked: %(client)s can no longer read your data.")
                     % {"client": grant.client.name})
    return redirect("dashboard")


@login_required
def receipt(request: HttpRequest, receipt_id) -> HttpResponse:
    grant = get_object_or_404(Grant, receipt_id=receipt_id, customer=signed_in_customer(request))
    response = HttpResponse(json.dumps(grant.receipt, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{grant.receipt_id}.json"'
    return response
