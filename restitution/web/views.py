"""Customer pages: the dashboard (my data, connected clouds, access history), revoke, receipts.

Every query here is filtered by the logged-in customer; another customer's grant is a 404.
Views are thin: they call consent.py and runs.py and render.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import audit, consent, crypto, history, processing, quarantine, store
from .. import runs as run_requests
from ..models import Customer, Dataset, Grant, PimsClient
from .customers import signed_in_customer
from .data import latest_download


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


def _my_data(customer: Customer, language: str) -> list[dict]:
    counts = store.live_counts(customer_id=customer.pk)
    freshness = run_requests.customer_freshness(customer=customer)
    withheld = quarantine.withheld(customer)
    french = language.startswith("fr")
    return [
        {"slug": dataset.slug, "title": dataset.title_fr if french else dataset.title_en,
         "description": dataset.description_fr if french else dataset.description_en,
         "count": counts.get(dataset.slug, 0), "extracted_at": freshness.get(dataset.slug),
         "withheld": withheld.get(dataset.slug, 0)}
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
    _link_replacements(grants)
    runs, progress = run_requests.runs_in_progress(customer=customer)
    datasets = _my_data(customer, language)
    return render(request, "restitution/dashboard.html", {
        "customer": customer,
        "datasets": datasets,
        "withheld_total": sum(row["withheld"] for row in datasets),
        "active_grants": [g for g in grants if g.current_status == "active"],
        "past_grants": [g for g in grants if g.current_status != "active"],
        "history_days": history.page(customer, number=1, language=language, size=10)[1],
        "runs": runs,
        # Said by the page from the runs still under way when it is drawn (never a flash
        # message, which would outlive runs that ended before the page loaded).
        "updating": _("Updating your data from %(n)d system(s)…") % {"n": len({r.source_id for r in runs})}
        if runs else "",
        "progress": int(100 * progress) if runs else None,
        "language": language,
        "download": latest_download(customer=customer),
    })


def _link_replacements(grants: list[Grant]) -> None:
    """A consent replaced by a new one to the same client is "replaced", not "revoked", and
    names the consent that replaced it (`grant.replaced_by`)."""
    for grant in grants:
        grant.replaced_by = None
        if grant.current_status == "revoked" and "replaced" in grant.revoked_reason:
            later = [g for g in grants if g.client_id == grant.client_id and g.created_at >= grant.created_at
                     and g.pk != grant.pk]
            grant.replaced_by = min(later, key=lambda g: g.created_at, default=None)
            if grant.replaced_by is not None:
                grant.current_status = "replaced"


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
    if not runs:
        messages.info(request, _("None of our systems knows you yet: there is nothing to update."))
    # Otherwise the dashboard says "Updating your data from N system(s)…" while the runs are under
    # way, from the runs themselves: nothing is left to say once they ended.
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
    return _json_download(grant.receipt, f"consent-receipt-{grant.receipt_id}.json", indent=2)


def _json_download(body, filename: str, *, indent: int) -> HttpResponse:
    response = HttpResponse(json.dumps(body, indent=indent, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def history_json(request: HttpRequest) -> HttpResponse:
    """The customer's whole access history, hash-chained and signed (docs/history.md)."""
    customer = signed_in_customer(request)
    return _json_download(audit.signed_history(customer), f"access-history-{customer.reference}.json", indent=1)


def history_keys(request: HttpRequest) -> HttpResponse:
    """The public keys that verify a downloaded history's head_token (a JWK Set, RFC 7517)."""
    response = HttpResponse(json.dumps(crypto.history_jwks()), content_type="application/jwk-set+json")
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@login_required
def history_page(request: HttpRequest) -> HttpResponse:
    """The whole access history in sentences, by day, paged, filterable by who and dataset."""
    customer = signed_in_customer(request)
    language = get_language() or "en"
    who = request.GET.get("who", "")
    slug = request.GET.get("dataset", "")
    choices = history.who_choices(customer)
    datasets = Dataset.objects.filter(is_published=True).order_by("slug")
    if (who and who not in dict(choices)) or (slug and not datasets.filter(slug=slug).exists()):
        return render(request, "restitution/history.html", {"bad_filter": True, "choices": choices,
                                                            "datasets": datasets, "language": language}, status=400)
    current, days = history.page(customer, number=request.GET.get("page"), who=who, dataset=slug,
                                 language=language)
    query = "&".join(f"{k}={v}" for k, v in (("who", who), ("dataset", slug)) if v)
    return render(request, "restitution/history.html", {
        "page": current, "days": days, "choices": choices, "datasets": datasets, "who": who,
        "dataset": slug, "query": query, "language": language,
    })


class GatewayLoginView(auth_views.LoginView):
    """The login page; reached from a client's authorization request, it names the app asking."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["asking_client"] = asking_client(self.get_redirect_url() or self.request.GET.get("next", ""))
        return context


def asking_client(next_url: str) -> PimsClient | None:
    """The approved client of an authorization request the login will go back to, if any."""
    parts = urlsplit(next_url or "")
    if parts.scheme or parts.netloc or parts.path != reverse("oauth2_provider:authorize"):
        return None
    client_id = parse_qs(parts.query).get("client_id", [""])[0]
    if not client_id:
        return None
    return PimsClient.objects.filter(client_id=client_id, approval=PimsClient.Approval.APPROVED).first()


def _receipt_datasets(grant: Grant, language: str) -> list[dict]:
    """The consent's datasets with the processing facts its receipt kept (receipts before
    version 1.1 kept none: those show the titles only)."""
    french = language.startswith("fr")
    kept = {c.get("dataset"): c.get("processing") for c in grant.receipt.get("data_categories", [])}
    return [{"title": d.title_fr if french else d.title_en, "scope": d.scope, "slug": d.slug,
             "processing": processing.in_language(kept[d.slug], language) if kept.get(d.slug) else None}
            for d in grant.datasets.order_by("slug")]


@login_required
def receipt_page(request: HttpRequest, receipt_id) -> HttpResponse:
    """The consent receipt as a page the customer can read (FR/EN), next to its JSON."""
    customer = signed_in_customer(request)
    grant = get_object_or_404(Grant.objects.select_related("client"), receipt_id=receipt_id, customer=customer)
    grants = list(Grant.objects.filter(customer=customer, client=grant.client).select_related("client"))
    for each in grants:
        each.current_status = each.status()
    _link_replacements(grants)
    grant = next(g for g in grants if g.pk == grant.pk)
    language = get_language() or "en"
    return render(request, "restitution/receipt.html", {
        "grant": grant, "receipt": grant.receipt, "language": language,
        "datasets": _receipt_datasets(grant, language),
    })
