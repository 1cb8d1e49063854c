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
    fields = field_descriptions(dataset, language, time_zone=settings.GATEWAY_CUSTOMER_TIME_ZONE)
    table = charts.record_table(customer=customer, dataset=dataset, language=language)
    # Each cell carries its column's label: on a phone the rows become cards (label: value).
    labels = [field["label"] for field in fields]
    table["cells"] = [list(zip(labels, row, strict=False)) for row in table["rows"]]
    return render(request, "restitution/dataset.html", {
        "dataset": dataset,
        "title": dataset.title_fr if language == "fr" else dataset.title_en,
        "description": dataset.description_fr if language == "fr" else dataset.description_en,
        "chart": chart if chart and chart["x"] else None,
        "fields": fields,
        "table": table,
        "time_zone": settings.GATEWAY_CUSTOMER_TIME_ZONE,
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


@login_required
def dataset_spreadsheet(request: HttpRequest, slug: str) -> HttpResponse:
    """The customer's records of one dataset as a CSV a spreadsheet opens as it is: UTF-8 with a
    byte-order mark, columns named in the reader's language, enumerated values in words,
    date-times in the gateway's time zone, and in French `;` between cells and a decimal comma
    (what French spreadsheets expect). Cells that would start a formula are neutralised. A dataset
    of day blocks (the load curve) has one row per interval: the block's fields, then the
    interval's start, value, quality and whether it is missing."""
    import csv
    import io

    from django.http import StreamingHttpResponse

    from ..catalogue import field_label, field_order, has_day_blocks, value_label
    from ..models import Record

    customer = signed_in_customer(request)
    dataset = Dataset.objects.filter(slug=slug, is_published=True).first()
    if dataset is None:
        raise Http404("no such dataset")
    language = _language()
    french = language == "fr"
    fields = field_order(dataset)
    # Day blocks of readings: one row per interval of the day (a missing one says so).
    blocks = has_day_blocks(dataset.schema)
    if blocks:
        fields = [name for name in fields if name not in portability.BLOCK_ONLY_FIELDS]

    def cell(name: str, value):
        value = value_label(name, value, language)
        if isinstance(value, float) and french:
            return str(value).replace(".", ",")
        if isinstance(value, bool):
            return ("oui" if value else "non") if french else ("yes" if value else "no")
        if isinstance(value, int | float):
            return value
        return portability.csv_cell(charts.display_value(value))

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";" if french else ",", lineterminator="\r\n")
        columns = fields + list(portability.READING_COLUMNS) if blocks else fields
        writer.writerow([field_label(name, language) for name in columns])
        yield "\ufeff" + buffer.getvalue()
        records = (Record.objects.filter(customer=customer, dataset=dataset, deleted=False)
                   .order_by("-record_at", "key").values_list("data", flat=True))
        for data in records.iterator(chunk_size=2000 if not blocks else 200):
            buffer.seek(0)
            buffer.truncate()
            row = [cell(name, data.get(name)) for name in fields]
            if not blocks:
                writer.writerow(row)
            for start, reading in portability.block_intervals(data) if blocks else ():
                writer.writerow(row + [cell("reading_start", start),
                                       cell("value", reading.get("value") if reading else None),
                                       cell("quality", reading.get("quality") if reading else None),
                                       cell("missing", reading is None)])
            yield buffer.getvalue()

    response = StreamingHttpResponse((part.encode("utf-8") for part in rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{dataset.slug}-{language}.csv"'
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
def dataset_document(request: HttpRequest, slug: str, sha256: str) -> HttpResponse:
    """A document of one of the customer's own records (an invoice PDF), as an attachment."""
    from django.http import FileResponse

    from ..models import Document, Record

    customer = signed_in_customer(request)
    dataset = Dataset.objects.filter(slug=slug, is_published=True).first()
    document = (Document.objects.filter(customer=customer, dataset=dataset, sha256=sha256).first()
                if dataset is not None else None)
    if document is None or not Record.objects.filter(customer=customer, dataset=dataset, key=document.record_key,
                                                     deleted=False).exists():
        raise Http404("no such document")
    response = FileResponse(document.file.open("rb"), content_type=document.content_type, as_attachment=True,
                            filename=document.filename)
    response["Content-Length"] = str(document.size)
    response["Cache-Control"] = "no-store, private"
    return response
