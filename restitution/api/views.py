"""Portability API views (v1). Thin: authenticate, find the grant, call portability.py, render.

Every data access writes an AccessEvent before the response leaves, so an access that
succeeded is never missing from the customer's history.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAcceptable, NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import audit, catalogue, consent, greenbutton, portability, processing, quarantine
from .. import runs as run_requests
from ..models import AccessEvent, Dataset, Document, ExtractionRun, Grant, Record
from .authentication import BearerAuthentication, InsufficientScope
from .problems import problem
from .renderers import CSVRenderer, DocumentRenderer, ESPIRenderer, NDJSONRenderer
from .throttling import (
    PerClientDocumentThrottle,
    PerClientThrottle,
    PerCustomerDocumentThrottle,
    PerCustomerThrottle,
    claim_refresh_slot,
    count_all,
    ratelimit_headers,
)

PROBLEM = OpenApiResponse(description="An RFC 9457 problem (application/problem+json) with a stable `code`.")
ERRORS = {400: PROBLEM, 401: PROBLEM, 404: PROBLEM, 429: PROBLEM}
REFRESH_INTERVAL_SECONDS = 300


class GrantedTokenView(APIView):
    """Bearer token → the grant in force (the validator already refused tokens without one)."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [PerCustomerThrottle, PerClientThrottle]

    def check_throttles(self, request: Request) -> None:
        """Both limits in one Redis round trip (DRF would ask the cache twice per throttle); their
        state after this request goes out as the IETF RateLimit headers (finalize_response)."""
        quotas = count_all(self.get_throttles(), request, self)
        request._ratelimit_quotas = quotas
        waits = [q.reset for q in quotas if not q.allowed]
        if waits:
            self.throttled(request, max(waits))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in ratelimit_headers(getattr(request, "_ratelimit_quotas", [])).items():
            response[name] = value
        return response

    def grant(self, request: Request) -> Grant:
        grant = getattr(request.auth, "consent_grant", None) or consent.active_grant(
            customer=consent.customer_of(request.auth.user), client=request.auth.application)
        if grant is None:
            raise NotFound()
        return grant

    def dataset(self, request: Request, grant: Grant, slug: str) -> Dataset:
        """A dataset both granted and in the token's scopes. Not granted: a 404 (no leak). Granted
        but not in this token's scopes (a narrower token, RFC 6749 §6): 403 insufficient_scope."""
        dataset = portability.granted_dataset(grant, slug)
        if dataset is None:
            raise NotFound(f"No dataset {slug!r} here.")
        if dataset.scope not in set(request.auth.scope.split()):
            raise InsufficientScope(dataset.scope)
        return dataset

    @staticmethod
    def scopes(request: Request) -> set[str]:
        """The token's own scopes: fewer than the grant's when narrowed on refresh (RFC 6749 §6)."""
        return set(request.auth.scope.split())

    def datasets(self, request: Request, grant: Grant) -> list[Dataset]:
        """The datasets this token may read: granted and in its scopes."""
        return portability.readable_datasets(grant, self.scopes(request))

    def log(self, request: Request, grant: Grant, *, dataset: Dataset | None, count: int | None,
            kind: str = AccessEvent.Kind.DATA_READ, **detail) -> None:
        audit.record_access(request._request, kind=kind, grant=grant, dataset=dataset, record_count=count,
                            detail=detail)


def _url(request: Request, path: str, **query) -> str:
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return request.build_absolute_uri(path + ("?" + urlencode(query) if query else ""))


class MeView(GrantedTokenView):
    @extend_schema(
        summary="Who the token speaks for",
        description="A pairwise subject identifier (different for every client, never the holder's "
        "internal id) and the consent the token was issued under: its id, period and datasets.",
        responses={200: inline_serializer("Me", {
            "sub": serializers.CharField(),
            "datasets": serializers.ListField(child=serializers.CharField(), help_text="What this token reads."),
            "expires_at": serializers.DateTimeField(),
            "one_time": serializers.BooleanField(),
            "holder": inline_serializer("MeHolder", {
                "name": serializers.CharField(help_text="The data holder (e.g. a bill's vendor)."),
                "contact": serializers.CharField(help_text="Its privacy contact.")}),
            "grant": inline_serializer("MeGrant", {
                "id": serializers.UUIDField(help_text="The consent's id (its receipt's); a new consent, a new id."),
                "created_at": serializers.DateTimeField(), "expires_at": serializers.DateTimeField(),
                "period": inline_serializer("MePeriod", {
                    "from": serializers.DateField(allow_null=True), "to": serializers.DateField(allow_null=True)}),
                "datasets": serializers.ListField(child=serializers.CharField(),
                                                 help_text="Every dataset of the consent."),
            }),
        }), 401: PROBLEM},
    )
    def get(self, request: Request) -> Response:
        grant = self.grant(request)
        return Response({
            "sub": consent.pairwise_subject(customer_reference=grant.customer.reference,
                                    client_id=request.auth.application.client_id),
            "datasets": [d.slug for d in self.datasets(request, grant)],
            "expires_at": grant.expires_at,
            "one_time": grant.is_one_time,
            "holder": {"name": settings.GATEWAY_HOLDER_NAME, "contact": settings.GATEWAY_HOLDER_CONTACT},
            "grant": {"id": grant.receipt_id, "created_at": grant.created_at, "expires_at": grant.expires_at,
                      "period": {"from": grant.window_start, "to": grant.window_end},
                      "datasets": sorted(d.slug for d in portability.granted_datasets(grant))},
        })


DATASET_FIELDS = {
    "slug": serializers.CharField(), "title": serializers.DictField(child=serializers.CharField()),
    "description": serializers.DictField(child=serializers.CharField()),
    "schema_version": serializers.CharField(), "record_count": serializers.IntegerField(),
    "date_field": serializers.CharField(help_text="The field of `data` that gives a record's `date`."),
    "date_time_zone": serializers.CharField(allow_null=True, help_text="For a dataset whose dates are days "
                                            "(the date field has format `date`): the time zone (IANA name) whose "
                                            "local days they are, and items' `date` is that day (`2025-01-31`); "
                                            "null when its dates are instants (items' `date` in UTC). Since API "
                                            "version 1.3.0."),
    "date_range": serializers.DictField(child=serializers.CharField(allow_null=True), help_text="`from` and "
                                        "`to`: the first and last `date` of the records in the consent's period, "
                                        "as items print them (null when there is none)."),
    "extracted_at": serializers.DateTimeField(allow_null=True), "schema_url": serializers.URLField(),
    "records_url": serializers.URLField(),
    "formats": serializers.ListField(child=serializers.CharField(), help_text="The `format` values its records "
                                     "are served in: `json`, `ndjson`, `csv`, and `espi` (Green Button ESPI XML) "
                                     "for the energy datasets that offer it."),
    "processing": inline_serializer("Processing", {
        "purposes": serializers.DictField(child=serializers.CharField(), help_text="{en, fr}"),
        "legal_basis": serializers.DictField(child=serializers.CharField(), help_text="{en, fr}"),
        "recipients": serializers.ListField(child=serializers.DictField(child=serializers.CharField()),
                                            help_text="Recipients or categories of recipients, each {en, fr}."),
        "retention": serializers.DictField(child=serializers.CharField(), help_text="{en, fr}"),
        "sources": serializers.ListField(child=serializers.CharField(), help_text="The holder's source systems."),
        "automated_decisions": serializers.BooleanField(),
        "last_extraction": serializers.DateTimeField(allow_null=True),
    }, help_text="GDPR Art. 15(1) facts about how the holder processes this dataset."),
    "withheld": inline_serializer("Withheld", {
        "count": serializers.IntegerField(help_text="The token's customer's records of this dataset that "
                                          "could not be restituted (kept aside by the holder)."),
        "last_checked": serializers.DateTimeField(allow_null=True, help_text="The last extraction that "
                                                  "read this dataset for the customer."),
    }),
}


class DatasetListView(GrantedTokenView):
    @extend_schema(summary="The datasets this token may read",
                   description="Each granted dataset with its titles and descriptions (en, fr), how many "
                   "records fall in the consent's period, their date range, and how fresh they are.",
                   responses={200: inline_serializer(
                       "DatasetList", {"items": inline_serializer("Dataset", DATASET_FIELDS, many=True)}), **ERRORS})
    def get(self, request: Request) -> Response:
        grant = self.grant(request)
        window = portability.request_window(grant, since_date=None, until_date=None)
        items = []
        withheld = quarantine.withheld(grant.customer)
        checked = run_requests.customer_freshness(customer=grant.customer)
        for dataset in self.datasets(request, grant):
            summary = portability.dataset_summary(grant, dataset, window)
            items.append({
                "slug": dataset.slug,
                "title": {"en": dataset.title_en, "fr": dataset.title_fr},
                "description": {"en": dataset.description_en, "fr": dataset.description_fr},
                "schema_version": dataset.schema_version,
                "record_count": summary["count"],
                "date_field": dataset.date_field,
                "date_time_zone": dataset.day_zone or None,
                "date_range": {"from": portability.date_text(summary["first"], dataset.day_zone),
                               "to": portability.date_text(summary["last"], dataset.day_zone)},
                "extracted_at": summary["extracted_at"],
                "schema_url": _url(request, f"/api/v1/datasets/{dataset.slug}/schema"),
                "records_url": _url(request, f"/api/v1/datasets/{dataset.slug}/records"),
                "formats": ["json", "ndjson", "csv"] + (["espi"] if catalogue.espi_kind(dataset.slug) else []),
                "processing": processing.facts(dataset),
                "withheld": {"count": withheld.get(dataset.slug, 0), "last_checked": checked.get(dataset.slug)},
            })
        return Response({"items": items})


class DatasetSchemaView(GrantedTokenView):
    @extend_schema(summary="A dataset's JSON Schema (draft 2020-12, versioned)",
                   description="The shape of the dataset's records' `data`, with its version in "
                   "`X-Schema-Version` (a new major version is a breaking change).",
                   responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        dataset = self.dataset(request, self.grant(request), slug)
        return Response(dataset.schema, headers={"X-Schema-Version": dataset.schema_version})


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from the previous page's `next`."),
    OpenApiParameter("page_size", int, description=f"Items per page (default {portability.DEFAULT_PAGE_SIZE}, "
                     f"at most {portability.MAX_PAGE_SIZE})."),
    OpenApiParameter("format", str, enum=["json", "ndjson", "csv"], description="Overrides the Accept header."),
]
RECORD_PAGE_PARAMETERS = [
    *PAGE_PARAMETERS[:2],
    OpenApiParameter("format", str, enum=["json", "ndjson", "csv", "espi"],
                     description="Overrides the Accept header. `espi`: Green Button ESPI XML "
                     "(`application/atom+xml`), only for the energy datasets that offer it."),
]
WINDOW_PARAMETERS = [
    OpenApiParameter("from", str, description="Oldest record date: YYYY-MM-DD (a local day of the customers' "
                     "time zone, as consent periods) or an RFC 3339 date-time with offset; clipped to the consent."),
    OpenApiParameter("to", str, description="Newest record date: YYYY-MM-DD (a local day, included) or an RFC 3339 "
                     "date-time with offset (excluded); clipped to the consent."),
]
RECORD_FIELDS = {
    "dataset": serializers.CharField(), "key": serializers.CharField(), "seq": serializers.IntegerField(),
    "deleted": serializers.BooleanField(required=False), "date": serializers.CharField(allow_null=True),
    "extracted_at": serializers.DateTimeField(required=False), "data": serializers.DictField(required=False),
}
PAGE = inline_serializer("RecordPage", {"items": inline_serializer("Record", RECORD_FIELDS, many=True),
                                        "next": serializers.URLField(allow_null=True),
                                        "last_seq": serializers.IntegerField()})


class _PagedView(GrantedTokenView):
    renderer_classes = [JSONRenderer, NDJSONRenderer, CSVRenderer]

    @staticmethod
    def next_url(request: Request, next_after: int | None, path: str, **query) -> str | None:
        if next_after is None:
            return None
        return _url(request, path, cursor=portability.encode_cursor(next_after), **query)

    def paged(self, request: Request, page: portability.Page, path: str, **query) -> Response:
        next_url = self.next_url(request, page.next_after, path, **query)
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
        if not page.items and request.accepted_renderer.format == "ndjson":
            # An empty NDJSON page is an empty body; DRF would drop its Content-Type.
            return HttpResponse(b"", content_type="application/x-ndjson; charset=utf-8", headers=headers)
        return Response({"items": page.items, "next": next_url, "last_seq": page.last_seq}, headers=headers)

    @staticmethod
    def separator(request: Request) -> str:
        """Between two printed items: a line break in NDJSON, a comma and a line break in JSON."""
        return "\n" if request.accepted_renderer.format == "ndjson" else ",\n"

    def raw_paged(self, request: Request, raw: portability.RawPage, path: str, **query) -> HttpResponse:
        """A page printed by PostgreSQL, as JSON or NDJSON, with the same envelope as paged()."""
        next_url = self.next_url(request, raw.next_after, path, **query)
        if request.accepted_renderer.format == "ndjson":
            body = raw.text + "\n" if raw.count else ""
            response = HttpResponse(body.encode(), content_type="application/x-ndjson; charset=utf-8")
        else:
            body = ('{"items":[' + raw.text + '],"next":' + json.dumps(next_url) + ',"last_seq":' + str(raw.last_seq)
                    + "}")
            response = HttpResponse(body.encode(), content_type="application/json")
        if next_url:
            response["Link"] = f'<{next_url}>; rel="next"'
        response["Vary"] = "Accept, Authorization"
        # A strong validator of the exact body (ConditionalGetMiddleware answers If-None-Match with
        # it); SHA-256 because it hashes the megabytes of a large page about three times faster
        # than the middleware's own MD5 on current processors.
        response["ETag"] = f'"{hashlib.sha256(response.content).hexdigest()[:32]}"'
        return response


def effective_since(grant: Grant, since: int | None) -> int | None:
    """A `since` that may come from an earlier consent of this customer to this client (below this
    consent's first sequence, with an earlier consent there): read as a full read from the start,
    so records that entered the window (a wider period, another dataset) are sent again rather
    than missed. Upserts are idempotent, so a client only gets some items twice."""
    if not since or grant.first_seq is None or since >= grant.first_seq:
        return since
    earlier = Grant.objects.filter(customer_id=grant.customer_id, client_id=grant.client_id,
                                   created_at__lt=grant.created_at).exists()
    return 0 if earlier else since


def _floor(page, grant: Grant):
    """On the last page, `last_seq` is at least the consent's first sequence (so the next `since`
    is accepted even when nothing has changed since the consent)."""
    if page.next_after is None and grant.first_seq is not None:
        page.last_seq = max(page.last_seq, grant.first_seq)
    return page


class RecordListView(_PagedView):
    renderer_classes = [*_PagedView.renderer_classes, ESPIRenderer]

    @extend_schema(summary="A dataset's records",
                   description="Records in change-sequence order, cursor-paginated (stable under concurrent "
                   "writes). `from`/`to` filter on the record's date, always within the consent's period. "
                   "`since=<seq>` returns only what changed after that sequence, deletions included "
                   "(`deleted: true`), to keep a mirror exact. JSON, NDJSON or CSV; the energy datasets "
                   "also as Green Button ESPI XML (`application/atom+xml` or `format=espi`): one Atom feed "
                   "of every record in the period (no paging, no `since`), one IntervalBlock per local day; "
                   "406 (Accept) or 400 (`format=espi`) for a dataset that does not offer it.",
                   parameters=[*RECORD_PAGE_PARAMETERS, *WINDOW_PARAMETERS,
                               OpenApiParameter("since", int, description="Change sequence already synced.")],
                   responses={200: PAGE, 304: OpenApiResponse(description="Not modified (If-None-Match)."),
                              **ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        grant = self.grant(request)
        dataset = self.dataset(request, grant, slug)
        params = request.query_params
        if request.accepted_renderer.format == "espi":
            return self.espi_feed(request, grant, dataset)
        window = portability.request_window(grant, since_date=params.get("from"), until_date=params.get("to"))
        size = portability.parse_int("page_size", params.get("page_size"), default=portability.DEFAULT_PAGE_SIZE,
                                     minimum=1, maximum=portability.MAX_PAGE_SIZE)
        since = effective_since(grant, portability.parse_int("since", params.get("since")))
        after = portability.decode_cursor(params.get("cursor"))
        query = {"page_size": params.get("page_size"), "since": params.get("since"), "from": params.get("from"),
                 "to": params.get("to"), "format": params.get("format")}
        path = f"/api/v1/datasets/{slug}/records"
        if request.accepted_renderer.format in ("json", "ndjson"):
            # Hot path: the page as PostgreSQL prints it (no parse, no serializer, no row in Python).
            raw = _floor(portability.record_page_text(grant, dataset, window, after=after, since=since, size=size,
                                                      separator=self.separator(request)), grant)
            self.log(request, grant, dataset=dataset, count=raw.count)
            return self.raw_paged(request, raw, path, **query)
        page = _floor(portability.record_page(grant, dataset, window, after=after, since=since, size=size), grant)
        self.log(request, grant, dataset=dataset, count=len(page.items))
        self.csv_fields = list(dataset.schema.get("properties", {}))  # CSV columns in schema order
        return self.paged(request, page, path, **query)

    def get_renderer_context(self):
        return {**super().get_renderer_context(), "csv_fields": getattr(self, "csv_fields", [])}

    def espi_feed(self, request: Request, grant: Grant, dataset: Dataset) -> StreamingHttpResponse:
        """Every record of the period as one Green Button feed, streamed from the database."""
        params = request.query_params
        kind = catalogue.espi_kind(dataset.slug)
        if kind is None:
            if params.get("format") == "espi":
                raise portability.BadParameter("format", f"{dataset.slug!r} is not offered as Green Button ESPI "
                                               "XML; ask json, ndjson or csv")
            raise NotAcceptable(f"{dataset.slug!r} is not offered as Green Button ESPI XML (application/atom+xml);"
                                " ask application/json, application/x-ndjson or text/csv.")
        for name in ("cursor", "since", "page_size"):
            if params.get(name):
                raise portability.BadParameter(name, "not with Green Button ESPI XML: one feed holds every "
                                               "record of the period")
        window = portability.request_window(grant, since_date=params.get("from"), until_date=params.get("to"))
        records = portability.espi_records(grant, dataset, window)
        self.log(request, grant, dataset=dataset, count=records.count(), format="espi")
        context = greenbutton.FeedContext(
            holder=settings.GATEWAY_HOLDER_NAME, time_zone=settings.GATEWAY_CUSTOMER_TIME_ZONE, updated=timezone.now(),
            subject=consent.pairwise_subject(customer_reference=grant.customer.reference,
                                             client_id=request.auth.application.client_id))
        rows = records.values_list("data", flat=True).iterator(chunk_size=500)
        response = StreamingHttpResponse(greenbutton.feed_bytes(kind, rows, context),
                                         content_type=f"{greenbutton.MEDIA_TYPE}; charset=utf-8")
        response["Vary"] = "Accept, Authorization"
        return response


class ChangeFeedView(_PagedView):
    @extend_schema(summary="Changes across the granted datasets",
                   description="Creations, updates and deletions after `since` (or the cursor), in order. "
                   "Reading it to the end completes a one-time consent.",
                   parameters=[*PAGE_PARAMETERS, OpenApiParameter("since", int, description="Last sequence seen.")],
                   responses={200: PAGE, **ERRORS})
    def get(self, request: Request) -> Response:
        grant = self.grant(request)
        params = request.query_params
        size = portability.parse_int("page_size", params.get("page_size"), default=portability.DEFAULT_PAGE_SIZE,
                                     minimum=1, maximum=portability.MAX_PAGE_SIZE)
        since = effective_since(grant, portability.parse_int("since", params.get("since"), default=0))
        after = max(since, portability.decode_cursor(params.get("cursor")))
        window = portability.request_window(grant, since_date=None, until_date=None)
        datasets = self.datasets(request, grant)
        printed = request.accepted_renderer.format in ("json", "ndjson")  # else CSV, through the ORM
        if printed:
            raw, counts = portability.change_page_text(grant, window, after=after, size=size,
                                                       separator=self.separator(request), datasets=datasets)
            _floor(raw, grant)
            count, next_after = raw.count, raw.next_after
        else:
            page = _floor(portability.change_page(grant, window, after=after, size=size, datasets=datasets), grant)
            counts = portability.dataset_counts(page.items)
            count, next_after = len(page.items), page.next_after
        self.log(request, grant, dataset=None, count=count, datasets=counts)
        if next_after is None and grant.is_one_time:
            consent.end_one_time_grant(grant=grant)  # the first complete sync uses it up
        query = {"page_size": params.get("page_size"), "format": params.get("format")}
        if printed:
            return self.raw_paged(request, raw, "/api/v1/changes", **query)
        return self.paged(request, page, "/api/v1/changes", **query)


class DocumentView(GrantedTokenView):
    renderer_classes = [JSONRenderer, DocumentRenderer]  # `Accept: application/pdf` is not a 406
    # Their own budget: paging records never leaves a client a 429 body in place of a PDF.
    throttle_classes = [PerCustomerDocumentThrottle, PerClientDocumentThrottle]

    @extend_schema(summary="A record's document (e.g. an invoice PDF)",
                   description="Streamed with its content type and length. `sha256` is the one in the record.",
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request: Request, slug: str, sha256: str):
        grant = self.grant(request)
        dataset = self.dataset(request, grant, slug)
        document = Document.objects.filter(customer=grant.customer, dataset=dataset, sha256=sha256).first()
        window = portability.request_window(grant, since_date=None, until_date=None)
        if document is None or not window.filter(Record.objects.filter(
                customer=grant.customer, dataset=dataset, key=document.record_key, deleted=False)).exists():
            raise NotFound("No such document.")
        self.log(request, grant, dataset=dataset, count=1, document=sha256)
        response = FileResponse(document.file.open("rb"), content_type=document.content_type,
                                as_attachment=True, filename=document.filename)
        response["Content-Length"] = str(document.size)
        return response


EXTRACTION_FIELDS = {
    "id": serializers.IntegerField(), "source": serializers.CharField(), "status": serializers.CharField(),
    "progress": serializers.FloatField(), "finished_at": serializers.DateTimeField(allow_null=True),
    "url": serializers.URLField()}
EXTRACTION = inline_serializer("Extraction", EXTRACTION_FIELDS)


def _run_json(request: Request, run: ExtractionRun) -> dict:
    return {"id": run.pk, "source": run.source.slug, "status": run.status, "progress": run.progress,
            "finished_at": run.finished_at, "url": _url(request, f"/api/v1/extractions/{run.pk}")}


class RefreshView(GrantedTokenView):
    @extend_schema(summary="Ask for fresh data",
                   description=f"Queues an extraction of the customer's data; at most one request every "
                   f"{REFRESH_INTERVAL_SECONDS // 60} minutes per consent, and one new run of each source every "
                   f"{int(run_requests.CUSTOMER_REFRESH_COOLDOWN.total_seconds()) // 60} minutes per customer "
                   "(429 with Retry-After otherwise).",
                   request=None, responses={202: inline_serializer("ExtractionList", {"items": inline_serializer(
                       "ExtractionItem", EXTRACTION_FIELDS, many=True)}), **ERRORS})
    def post(self, request: Request) -> Response:
        grant = self.grant(request)
        if not claim_refresh_slot(grant_id=grant.pk, interval=REFRESH_INTERVAL_SECONDS):
            response = problem(status_code=429, code="rate_limited", title="Too many requests",
                               detail=f"One refresh every {REFRESH_INTERVAL_SECONDS // 60} minutes.")
            response["Retry-After"] = str(REFRESH_INTERVAL_SECONDS)
            return response
        try:
            runs = run_requests.request_customer_refresh(customer=grant.customer)
        except run_requests.RefreshTooSoon as wait:
            # Per customer, whichever client or page asked: the legacy systems pay for each run.
            response = problem(status_code=429, code="rate_limited", title="Too many requests",
                               detail="Fresh data was asked for a moment ago; ask again later.")
            response["Retry-After"] = str(wait.seconds)
            return response
        body = {"items": [_run_json(request, run) for run in runs]}
        headers = {"Location": body["items"][0]["url"]} if runs else {}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


class ExtractionStatusView(GrantedTokenView):
    @extend_schema(summary="Where an extraction stands",
                   description="One run of a legacy source for this customer: `status` and `progress` (0 to 1).",
                   responses={200: EXTRACTION, **ERRORS})
    def get(self, request: Request, run_id: int) -> Response:
        grant = self.grant(request)
        run = ExtractionRun.objects.filter(pk=run_id, customer=grant.customer).select_related("source").first()
        if run is None:
            raise NotFound("No such extraction.")
        return Response(_run_json(request, run))
