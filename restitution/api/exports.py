"""Export API views (FHIR Bulk Data style): ask for an archive, poll it, cancel it, download it.

Thin: parse, call exports.py, render. Jobs are looked up through the token's grant, so another
client's or another customer's job is a 404.
"""

from __future__ import annotations

import base64

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import exports, portability
from ..models import ExportJob
from .problems import problem
from .views import ERRORS, PROBLEM, GrantedTokenView, _url

RETRY_AFTER_SECONDS = 2
BUSY_RETRY_AFTER_SECONDS = 10

EXPORT_REQUEST = inline_serializer("ExportRequest", {
    "datasets": serializers.ListField(child=serializers.CharField(), required=False,
                                      help_text="Dataset slugs (default: every dataset of the consent)."),
    "from": serializers.DateField(required=False, help_text="Oldest record date (inclusive)."),
    "to": serializers.DateField(required=False, help_text="Newest record date (inclusive)."),
})
EXPORT_ACCEPTED = inline_serializer("ExportAccepted", {
    "id": serializers.UUIDField(), "status": serializers.CharField(), "url": serializers.URLField()})
EXPORT_PROGRESS = inline_serializer("ExportProgress", {
    "id": serializers.UUIDField(), "status": serializers.CharField(),
    "progress": serializers.IntegerField(help_text="Percentage."), "records_done": serializers.IntegerField(),
    "records_total": serializers.IntegerField(), "requested_at": serializers.DateTimeField()})
MANIFEST_FILE_FIELDS = {
    "path": serializers.CharField(), "kind": serializers.CharField(), "dataset": serializers.CharField(),
    "records": serializers.IntegerField(required=False), "size": serializers.IntegerField(),
    "sha256": serializers.CharField(), "content_type": serializers.CharField()}
EXPORT_DONE = inline_serializer("ExportDone", {
    "id": serializers.UUIDField(), "status": serializers.CharField(),
    "transaction_time": serializers.DateTimeField(),
    "archive": inline_serializer("ExportArchive", {
        "url": serializers.URLField(help_text="Signed link; no token needed until `link_expires_at`."),
        "link_expires_at": serializers.DateTimeField(), "deleted_at": serializers.DateTimeField(),
        "size": serializers.IntegerField(), "sha256": serializers.CharField()}),
    "manifest": inline_serializer("ExportManifest", {
        "format": serializers.CharField(), "transaction_time": serializers.DateTimeField(),
        "request": serializers.DictField(), "grant": serializers.DictField(),
        "datasets": serializers.ListField(child=serializers.DictField()),
        "record_count": serializers.IntegerField(),
        "files": inline_serializer("ExportFile", MANIFEST_FILE_FIELDS, many=True)}),
})


def _job_url(request: Request, job: ExportJob) -> str:
    return _url(request, f"/api/v1/exports/{job.public_id}")


def _busy(job: ExportJob | None, request: Request) -> Response:
    response = problem(status_code=429, code="export_in_progress", title="Too many requests",
                       detail="An export is already in progress for this consent; wait for it or cancel it.",
                       **({"export": _job_url(request, job)} if job else {}))
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


class ExportListView(GrantedTokenView):
    @extend_schema(summary="Ask for an archive of the consented data",
                   description="Queues a ZIP archive (per dataset: NDJSON, CSV and JSON Schema; a manifest "
                   "with the SHA-256 of every file). Answers 202 with `Content-Location`, the job to poll. "
                   "One export at a time per consent: a second one gets 429 with `Retry-After`. Datasets "
                   "outside the consent are 404; `from`/`to` are clipped to the consent's period.",
                   request=EXPORT_REQUEST, responses={202: EXPORT_ACCEPTED, **ERRORS})
    def post(self, request: Request) -> Response:
        grant = self.grant(request)
        body = request.data
        if not isinstance(body, dict):
            raise portability.BadParameter("body", "must be a JSON object (or empty)")
        slugs = body.get("datasets")
        if slugs is None:
            datasets = self.datasets(request, grant)
        else:
            if not isinstance(slugs, list) or not slugs or not all(isinstance(s, str) for s in slugs):
                raise portability.BadParameter("datasets", "must be a non-empty list of dataset slugs")
            datasets = [self.dataset(request, grant, slug) for slug in dict.fromkeys(slugs)]
        for name in ("from", "to"):
            if body.get(name) is not None and not isinstance(body.get(name), str):
                raise portability.BadParameter(name, "must be a date (YYYY-MM-DD) or an RFC 3339 date-time")
        window = portability.request_window(grant, since_date=body.get("from"), until_date=body.get("to"))
        try:
            job = exports.request_export(customer=grant.customer, grant=grant, datasets=datasets, window=window,
                                         request=request._request)
        except exports.ExportBusy as busy:
            return _busy(busy.job, request)
        url = _job_url(request, job)
        return Response({"id": job.public_id, "status": job.status, "url": url},
                        status=status.HTTP_202_ACCEPTED, headers={"Content-Location": url})


class ExportDetailView(GrantedTokenView):
    def job(self, request: Request, export_id) -> ExportJob:
        grant = self.grant(request)
        job = ExportJob.objects.filter(public_id=export_id, grant=grant).select_related("grant__client").first()
        if job is None or job.status == ExportJob.Status.CANCELLED:
            raise NotFound("No such export.")
        if not set(job.datasets) <= {d.slug for d in self.datasets(request, grant)}:
            raise NotFound("No such export.")  # asked by a token with more scopes than this one
        return job

    @extend_schema(summary="Where an export stands",
                   description="202 with `X-Progress` and `Retry-After` while it runs; 200 with the manifest "
                   "and a signed download link once done (a one-time consent is then used up: the link still "
                   "works until it expires). A failed export is 200 with `status: failed`; an archive past "
                   "its retention is 410.",
                   responses={200: EXPORT_DONE, 202: EXPORT_PROGRESS, 410: PROBLEM, **ERRORS})
    def get(self, request: Request, export_id) -> Response:
        job = self.job(request, export_id)
        if job.status in ExportJob.ACTIVE:
            percent = int(job.progress * 100)
            return Response({"id": job.public_id, "status": job.status, "progress": percent,
                             "records_done": job.records_done, "records_total": job.records_total,
                             "requested_at": job.requested_at}, status=status.HTTP_202_ACCEPTED,
                            headers={"X-Progress": f"{percent}%", "Retry-After": str(RETRY_AFTER_SECONDS)})
        if job.status == ExportJob.Status.EXPIRED:
            return problem(status_code=410, code="export_expired", title="Gone",
                           detail="This archive was deleted at the end of its retention period.")
        if job.status == ExportJob.Status.FAILED:
            return Response({"id": job.public_id, "status": job.status,
                             "error": "The archive could not be built; ask for a new one."})
        body = completed_export(request, job)
        exports.deliver_manifest(job=job)
        return Response(body)

    @extend_schema(summary="Cancel an export, or delete its archive",
                   description="A running export is cancelled; a finished one has its archive deleted at once.",
                   responses={202: OpenApiResponse(description="Cancelled or deleted."), **ERRORS})
    def delete(self, request: Request, export_id) -> Response:
        job = self.job(request, export_id)
        if not exports.cancel_export(job=job):
            raise NotFound("No such export.")
        return Response(status=status.HTTP_202_ACCEPTED)


def completed_export(request: Request, job: ExportJob) -> dict:
    token = exports.download_token(job=job)
    return {
        "id": job.public_id, "status": job.status, "transaction_time": job.transaction_time,
        "archive": {"url": _url(request, f"/api/v1/exports/{job.public_id}/archive", token=token),
                    "link_expires_at": exports.link_expires_at(job=job), "deleted_at": job.expires_at,
                    "size": job.size, "sha256": job.sha256},
        "manifest": job.manifest,
    }


class ExportArchiveView(APIView):
    """The archive behind a signed link: no token (the link is the credential, like a presigned URL)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Download an archive (signed link)", auth=[],
                   description="No OAuth token: the signed link is the credential, until `link_expires_at`. "
                   "`Repr-Digest` carries the archive's SHA-256 (RFC 9530).",
                   parameters=[OpenApiParameter("token", str, required=True,
                                                description="From the job's `archive.url`.")],
                   responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: PROBLEM,
                              410: OpenApiResponse(description="The link or the archive has expired, or the "
                                                   "consent it was made under has ended.")})
    def get(self, request: Request, export_id):
        try:
            job = exports.archive_for_token(request.query_params.get("token", ""))
        except exports.ConsentEnded:
            return problem(status_code=410, code="consent_ended", title="Gone",
                           detail="The consent this archive was made under has ended (revoked, replaced "
                           "or expired).")
        except exports.LinkExpired:
            return problem(status_code=410, code="link_expired", title="Gone",
                           detail="This download link has expired; poll the export for a new one.")
        if job is None or str(job.public_id) != str(export_id):
            raise NotFound("No such archive.")
        response = FileResponse(exports.open_archive(job=job, request=request._request),
                                content_type="application/zip", as_attachment=True,
                                filename=f"data-{job.finished_at:%Y%m%d-%H%M%S}.zip")
        response["Content-Length"] = str(job.size)
        # RFC 9530: the client can check what it received.
        response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(job.sha256)).decode()}:"
        response["Cache-Control"] = "private, no-store"
        return response
