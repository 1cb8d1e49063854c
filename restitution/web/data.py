"""Customer pages for seeing and taking one's data: a page per dataset (chart, timeline, field
help) and "download all my data" (an archive job with a progress bar).

Every query is the logged-in customer's own; views are thin over charts.py and exports.py.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import charts, exports, portability, processing, quarantine
from ..catalogue import field_descriptions
from ..models import Dataset, ExportJob
from .customers import signed_in_customer


def _language() -> str:
    return "fr" if (get_language() or "en").startswith("fr") else "en"


@login_required
def dataset_page(request: HttpRequest, slug: str) -> HttpResponse:
    customer = signed_in_customer(request)
    dataset = Dataset.objects.filter(slug=slug, is_published=True).first()
    if dataset is None:
        raise Http404("no such dataset")
    language = _language()
    chart = charts.series(customer=customer, dataset=dataset, resolution=request.GET.get("by"),
                          language=language)
    return render(request, "restitution/dataset.html", {
        "dataset": dataset,
        "title": dataset.title_fr if language == "fr" else dataset.title_en,
        "description": dataset.description_fr if language == "fr" else dataset.description_en,
        "chart": chart if chart and chart["x"] else None,
        "fields": field_descriptions(dataset, language),
        "table": charts.record_table(customer=customer, dataset=dataset),
        "withheld": quarantine.withheld(customer).get(dataset.slug, 0),
        "processing": processing.in_language(processing.facts(dataset), language),
    })


def download_state(*, job: ExportJob | None) -> dict | None:
    """What the dashboard shows of the customer's latest archive (and the link, once ready)."""
    if job is None:
        return None
    state = {"id": str(job.public_id), "status": job.status, "progress": int(job.progress * 100),
             "records_done": job.records_done, "records_total": job.records_total,
             "size": job.size, "expires_at": job.expires_at,
             "link_hours": _plain(settings.GATEWAY_EXPORT_LINK_SECONDS / 3600),
             "retention_days": _plain(settings.GATEWAY_EXPORT_RETENTION_DAYS)}
    if job.status == ExportJob.Status.SUCCEEDED:
        token = exports.download_token(job=job)
        state["url"] = (reverse("api-export-archive", kwargs={"export_id": job.public_id})
                        + f"?token={token}")
    return state


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else f"{number:.1f}"


def latest_download(*, customer) -> dict | None:
    job = ExportJob.objects.filter(customer=customer, for_customer=True).exclude(
        status=ExportJob.Status.CANCELLED).first()
    return download_state(job=job)


@login_required
@require_POST
def download_all(request: HttpRequest) -> HttpResponse:
    customer = signed_in_customer(request)
    datasets = exports.customer_datasets(customer=customer)
    if not datasets:
        messages.info(request, _("There is nothing to download yet: press “Update my data”."))
        return redirect("dashboard")
    try:
        exports.request_export(customer=customer, datasets=datasets, window=portability.Window(None, None),
                               language=_language(), request=request)
    except exports.ExportBusy:
        messages.info(request, _("Your archive is already being prepared."))
    return redirect(reverse("dashboard") + "#download")


@login_required
def download_status(request: HttpRequest) -> JsonResponse:
    """Progress of the customer's latest archive, for the dashboard's progress bar."""
    state = latest_download(customer=signed_in_customer(request)) or {"status": "none"}
    state.pop("expires_at", None)
    return JsonResponse(state)
