"""Archives: one customer's data as a ZIP (NDJSON + CSV + JSON Schema per dataset, a manifest
with SHA-256 of every file), built by a worker from one snapshot of the record store.

Records are streamed from the database into the archive and the archive into Django's storage,
so memory stays flat whatever the size. This module never renders HTTP; every archive made
and every download is an AccessEvent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils import timezone

from . import audit, consent, events, greenbutton, outbox, portability, processing
from .catalogue import espi_kind, field_descriptions, field_order, has_day_blocks
from .items import document_url, utc_text
from .models import AccessEvent, Customer, Dataset, Document, ExportJob, Grant, Record

log = logging.getLogger(__name__)

FETCH_SIZE = 2000  # rows per round trip of the server-side cursor
PROGRESS_EVERY = 5000  # records between two progress writes (each also checks for cancellation)
COPY_CHUNK = 1 << 20
STALE_AFTER = timedelta(minutes=5)
LINK_SALT = "restitution.exports.download-link"
ARCHIVE_FORMAT = "restitution-archive/1.0"


class ExportBusy(Exception):
    """An export is already queued or running for this consent (or this customer's download)."""

    def __init__(self, job: ExportJob | None) -> None:
        super().__init__("an export is already in progress")
        self.job = job


class ExportCancelled(Exception):
    """The job was cancelled (DELETE) while it ran."""


# --- Asking for an archive ---------------------------------------------------------------------

def request_export(*, customer: Customer, datasets: list[Dataset], window: portability.Window,
                   grant: Grant | None = None, language: str = "en",
                   request: HttpRequest | None = None) -> ExportJob:
    """Queue an archive. With a grant, a client asked (its datasets and window were checked by the
    caller); without, the customer asked for everything (the archive adds a README and documents).

    Raises ExportBusy when one is already queued or running for the same grant or customer.
    """
    job = ExportJob(public_id=uuid.uuid4(), customer=customer, grant=grant,
                    datasets=sorted(d.slug for d in datasets), window_start=window.start,
                    window_end=window.end, for_customer=grant is None,
                    language="fr" if language.startswith("fr") else "en")
    try:
        with transaction.atomic():
            job.save()
            # Committed with the job, published after commit (or by the relay if the broker is down).
            outbox.enqueue(task="restitution.tasks.build_export", args=[job.pk])
    except IntegrityError:
        raise ExportBusy(active_export(customer=customer, grant=grant)) from None
    return job


def active_export(*, customer: Customer, grant: Grant | None) -> ExportJob | None:
    jobs = ExportJob.objects.filter(status__in=ExportJob.ACTIVE)
    jobs = jobs.filter(grant=grant) if grant is not None else jobs.filter(customer=customer, for_customer=True)
    return jobs.first()


def customer_datasets(*, customer: Customer) -> list[Dataset]:
    """What "download all my data" contains: every published dataset the customer has records in."""
    from .store import live_counts

    slugs = set(live_counts(customer_id=customer.pk))
    return [d for d in Dataset.objects.filter(is_published=True).order_by("slug") if d.slug in slugs]


def cancel_export(*, job: ExportJob) -> bool:
    """Cancel a queued or running job, or delete a finished archive. False when nothing is left."""
    if job.status in ExportJob.ACTIVE:
        changed = ExportJob.objects.filter(pk=job.pk, status__in=ExportJob.ACTIVE).update(
            status=ExportJob.Status.CANCELLED, finished_at=timezone.now())
        if changed:
            return True
        job.refresh_from_db()
    if job.status == ExportJob.Status.SUCCEEDED:
        _delete_file(job)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.CANCELLED)
        return True
    return False


# --- Signed download links ---------------------------------------------------------------------

def download_token(*, job: ExportJob) -> str:
    """An opaque, signed, timestamped token naming the archive; checked by archive_for_token()."""
    return signing.TimestampSigner(salt=LINK_SALT).sign(str(job.public_id))


def link_expires_at(*, job: ExportJob, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    expiry = now + timedelta(seconds=settings.GATEWAY_EXPORT_LINK_SECONDS)
    return min(expiry, job.expires_at) if job.expires_at else expiry


class LinkExpired(Exception):
    """A genuine link, too old (or its archive already deleted)."""


class ConsentEnded(LinkExpired):
    """A genuine link to a client's archive whose consent was revoked, replaced or expired."""


def consent_still_covers(*, job: ExportJob, now: datetime | None = None) -> bool:
    """Whether the consent a client's archive was made under still lets it be fetched.

    A revoked (or replaced) grant, or one past its expiry, ends its archives' links at once, as
    it ends its tokens (RFC 7009 §2.2 spirit: what the grant gave out dies with it). A one-time
    grant used up by this very export keeps its link alive until the link expires. The
    customer's own archives (no grant) are not concerned."""
    grant = job.grant
    if grant is None:
        return True
    now = now or timezone.now()
    return grant.revoked_at is None and grant.expires_at > now


def archive_for_token(token: str) -> ExportJob | None:
    """The archive a download token names, or None for a forged one. Raises LinkExpired (and
    ConsentEnded when the client's consent is over)."""
    signer = signing.TimestampSigner(salt=LINK_SALT)
    try:
        public_id = signer.unsign(token, max_age=timedelta(seconds=settings.GATEWAY_EXPORT_LINK_SECONDS))
    except signing.SignatureExpired:
        raise LinkExpired from None
    except signing.BadSignature:
        return None
    job = ExportJob.objects.filter(public_id=public_id).select_related("customer", "grant__client").first()
    if job is None:
        return None
    if job.status != ExportJob.Status.SUCCEEDED or (job.expires_at and job.expires_at <= timezone.now()):
        raise LinkExpired
    if not consent_still_covers(job=job):
        raise ConsentEnded
    return job


def open_archive(*, job: ExportJob, request: HttpRequest | None = None) -> IO[bytes]:
    """The archive's bytes, logged as a download in the customer's history before they leave."""
    handle = storages["exports"].open(job.file_name, "rb")
    audit.record_event(kind=AccessEvent.Kind.EXPORT_DOWNLOADED, customer=job.customer, grant=job.grant,
                       record_count=job.records_total, request=request,
                       detail={"export": str(job.public_id), "size": job.size})
    return handle


def deliver_manifest(*, job: ExportJob) -> None:
    """The client now has the manifest and its links: a one-time consent is used up (the links
    need no token, so the archive can still be fetched until they expire)."""
    if job.manifest_delivered_at is None:
        ExportJob.objects.filter(pk=job.pk).update(manifest_delivered_at=timezone.now())
    if job.grant is not None and job.grant.is_one_time:
        consent.end_one_time_grant(grant=job.grant)


# --- Building an archive (the worker side) -----------------------------------------------------

def execute_export(*, job_id: int) -> str:
    """Claim the job (queued, or running with a dead worker) and build its archive."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(_claimable(now), pk=job_id).update(
        status=ExportJob.Status.RUNNING, started_at=now, heartbeat_at=now, error="")
    if not claimed:
        return "skipped"
    job = ExportJob.objects.select_related("customer", "grant__client").get(pk=job_id)
    try:
        build_archive(job=job)
    except ExportCancelled:
        log.info("export %s cancelled", job.pk)
        return ExportJob.Status.CANCELLED
    except Exception as exc:  # recorded on the row, never swallowed silently
        log.exception("export %s failed", job.pk)
        ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(), error=type(exc).__name__)
        return ExportJob.Status.FAILED
    return ExportJob.Status.SUCCEEDED


def _claimable(now: datetime) -> Q:
    return Q(status=ExportJob.Status.QUEUED) | Q(status=ExportJob.Status.RUNNING,
                                                 heartbeat_at__lt=now - STALE_AFTER)


class _HashingWriter:
    """Writes to a file-like object while counting and hashing, in buffered chunks."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0
        self._parts: list[bytes] = []
        self._pending = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        if self._pending >= 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            chunk = b"".join(self._parts)
            self.target.write(chunk)
            self.digest.update(chunk)
            self.size += len(chunk)
            self._parts, self._pending = [], 0


class _Progress:
    def __init__(self, job: ExportJob) -> None:
        self.job = job
        self.done = 0
        self._last_write = 0

    def add(self, count: int = 1, *, force: bool = False) -> None:
        self.done += count
        if force or self.done - self._last_write >= PROGRESS_EVERY:
            self._last_write = self.done
            total = max(self.job.records_total, 1)
            progress = min(self.done / total, 0.99)
            # One write that also notices a cancellation: it only touches a running job.
            if not ExportJob.objects.filter(pk=self.job.pk, status=ExportJob.Status.RUNNING).update(
                    records_done=self.done, progress=progress, heartbeat_at=timezone.now()):
                raise ExportCancelled


@contextmanager
def _snapshot() -> Iterator[Any]:
    """A connection that sees the whole store as of one instant.

    PostgreSQL: a private read-only REPEATABLE READ transaction, so records changed by an
    extraction while the archive is written are archived as they were when it started (progress
    is written on the ordinary connection meanwhile). Elsewhere (SQLite, embedded, one process):
    the ordinary connection.
    """
    if connection.vendor != "postgresql":
        yield None
        return
    private = connections.create_connection("default")
    try:
        private.ensure_connection()
        raw = private.connection
        raw.autocommit = False
        raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield raw
        raw.rollback()
    finally:
        private.close()


def _transaction_time(snapshot: Any) -> datetime:
    if snapshot is None:
        return timezone.now()
    return snapshot.execute("SELECT now()").fetchone()[0].astimezone(UTC)


def _rows(snapshot: Any, queryset, fields: tuple[str, ...]) -> Iterator[tuple]:
    """The queryset's rows, streamed: a named (server-side) cursor in the snapshot, or Django's
    chunked iterator."""
    values = queryset.values_list(*fields)
    if snapshot is None:
        yield from values.iterator(chunk_size=FETCH_SIZE)
        return
    sql, params = values.query.sql_with_params()
    with snapshot.cursor(name=f"export_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = FETCH_SIZE
        cursor.execute(sql, params)
        yield from cursor


def _record_rows(snapshot: Any, records, day_zone: str) -> Iterator[tuple[int, str, str | None, str, str]]:
    """(seq, key, date, extracted_at, data as JSON text) of each record, moments as UTC texts and
    the date as the items print it (items.date_text() for the dataset's `day_zone`)."""
    text = Cast("data", TextField())
    if snapshot is None:
        for seq, key, record_at, extracted_at, data in _rows(
                None, records.annotate(text=text), ("seq", "key", "record_at", "extracted_at", "text")):
            yield seq, key, portability.date_text(record_at, day_zone), _iso(extracted_at), data
        return
    yield from _rows(snapshot, records.annotate(text=text, date=portability.DateText("record_at", day_zone),
                                                extracted=portability.UtcText("extracted_at")),
                     ("seq", "key", "date", "extracted", "text"))


def _count(snapshot: Any, queryset) -> int:
    if snapshot is None:
        return queryset.count()
    sql, params = queryset.values("pk").query.sql_with_params()
    return snapshot.execute(f"SELECT count(*) FROM ({sql}) AS archived", params).fetchone()[0]  # noqa: S608


def _records(job: ExportJob, dataset: Dataset):
    window = portability.Window(job.window_start, job.window_end)
    return window.filter(Record.objects.filter(customer_id=job.customer_id, dataset=dataset, deleted=False))


def _documents(job: ExportJob, dataset: Dataset):
    live = _records(job, dataset).filter(key=OuterRef("record_key"))
    return (Document.objects.filter(customer_id=job.customer_id, dataset=dataset)
            .filter(Exists(live)).order_by("record_key", "pk"))


def build_archive(*, job: ExportJob) -> None:
    """Write the job's archive to storage and mark it ready (or raise ExportCancelled)."""
    datasets = list(Dataset.objects.filter(slug__in=job.datasets).order_by("slug"))
    storage = storages["exports"]
    with tempfile.TemporaryFile(prefix="export-") as spool, _snapshot() as snapshot:
        transaction_time = job.transaction_time = _transaction_time(snapshot)
        counts = {d.slug: _count(snapshot, _records(job, d)) for d in datasets}
        job.records_total = sum(counts.values())
        ExportJob.objects.filter(pk=job.pk).update(records_total=job.records_total,
                                                   transaction_time=transaction_time)
        progress = _Progress(job)
        files: list[dict[str, Any]] = []
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for dataset in datasets:
                files += _write_dataset(archive, snapshot, job, dataset, progress)
                if espi_kind(dataset.slug):
                    files.append(_write_espi(archive, snapshot, job, dataset))
                if job.for_customer:
                    files += _write_documents(archive, job, dataset)
            if job.for_customer:
                files.append(_write_bytes(archive, "README.txt", readme(job=job, datasets=datasets,
                                                                        counts=counts).encode("utf-8"),
                                          kind="readme", content_type="text/plain; charset=utf-8"))
            manifest = _manifest(job, datasets, counts, files, transaction_time)
            _write_bytes(archive, "manifest.json",
                         json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"),
                         kind="manifest", content_type="application/json")
        progress.add(0, force=True)  # last cancellation check before the upload
        spool.seek(0)
        digest = hashlib.file_digest(spool, "sha256").hexdigest()
        size = spool.tell()
        spool.seek(0)
        name = storage.save(f"exports/{job.public_id}.zip", File(spool))
    _finish(job, name=name, size=size, digest=digest, manifest=manifest)


def _finish(job: ExportJob, *, name: str, size: int, digest: str, manifest: dict[str, Any]) -> None:
    now = timezone.now()
    expires_at = now + timedelta(days=settings.GATEWAY_EXPORT_RETENTION_DAYS)
    with transaction.atomic():
        finished = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.SUCCEEDED, progress=1.0, records_done=job.records_total, file_name=name,
            size=size, sha256=digest, manifest=manifest, finished_at=now, expires_at=expires_at)
        if not finished:
            storages["exports"].delete(name)
            raise ExportCancelled
        audit.record_event(kind=AccessEvent.Kind.EXPORT, customer=job.customer, grant=job.grant,
                           record_count=job.records_total,
                           detail={"export": str(job.public_id), "datasets": job.datasets,
                                   "size": size, "for_customer": job.for_customer})
        events.publish(events.ARCHIVE_READY, subject_id=job.pk)
    job.refresh_from_db()


def _write_dataset(archive: zipfile.ZipFile, snapshot: Any, job: ExportJob, dataset: Dataset,
                   progress: _Progress) -> list[dict[str, Any]]:
    """NDJSON (the API's items) and CSV (the API's columns) of one dataset, in one pass over the
    rows; the CSV is spooled to a temporary file meanwhile (one ZIP entry is written at a time)."""
    fields = field_order(dataset)
    blocks = has_day_blocks(dataset.schema)  # spreadsheets get one row per reading
    head = portability.record_line_head(dataset.slug)
    base = f"{dataset.slug}/"
    rows = _record_rows(snapshot, _records(job, dataset).order_by("seq"), dataset.day_zone)
    count = 0
    with tempfile.TemporaryFile(prefix="export-csv-") as csv_spool:
        csv_out = _HashingWriter(csv_spool)
        text = io.TextIOWrapper(_Sink(csv_out), encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(portability.block_csv_header(fields) if blocks else portability.csv_header(fields))
        with archive.open(base + "records.ndjson", "w", force_zip64=True) as entry:
            ndjson = _HashingWriter(entry)
            for seq, key, date, extracted_at, data in rows:
                parsed = json.loads(data)
                ndjson.write(portability.record_line_text(head, seq, key, date, extracted_at, data,
                                                          document_url(dataset.slug, parsed)).encode("utf-8") + b"\n")
                if blocks:
                    writer.writerows(portability.block_csv_rows(dataset.slug, key, seq, date, parsed, fields))
                else:
                    writer.writerow(portability.csv_row(dataset.slug, key, seq, date, False, parsed, fields))
                count += 1
                progress.add()
            ndjson.flush()
        text.flush()
        csv_out.flush()
        csv_spool.seek(0)
        with archive.open(base + "records.csv", "w", force_zip64=True) as entry:
            while chunk := csv_spool.read(COPY_CHUNK):
                entry.write(chunk)
    schema = json.dumps(dataset.schema, ensure_ascii=False, indent=2).encode("utf-8")
    return [
        _file(base + "records.ndjson", ndjson, kind="records", dataset=dataset.slug, records=count,
              content_type="application/x-ndjson"),
        _file(base + "records.csv", csv_out, kind="records", dataset=dataset.slug, records=count,
              content_type="text/csv; charset=utf-8"),
        _write_bytes(archive, base + "schema.json", schema, kind="schema", dataset=dataset.slug,
                     content_type="application/schema+json"),
    ]


#: The audience of a customer's own archive, for the pairwise subject in Green Button identifiers.
CUSTOMER_AUDIENCE = "customer-archive"


def espi_entry(dataset: Dataset) -> str:
    return f"{entry_part(dataset.slug)}.espi.xml"


def _write_espi(archive: zipfile.ZipFile, snapshot: Any, job: ExportJob, dataset: Dataset) -> dict[str, Any]:
    """The dataset's records again, as one Green Button ESPI feed (restitution/greenbutton.py)."""
    audience = job.grant.client.client_id if job.grant is not None else CUSTOMER_AUDIENCE
    context = greenbutton.FeedContext(
        holder=settings.GATEWAY_HOLDER_NAME, time_zone=settings.GATEWAY_CUSTOMER_TIME_ZONE,
        updated=job.transaction_time or timezone.now(),
        subject=consent.pairwise_subject(customer_reference=job.customer.reference, client_id=audience))
    rows = (json.loads(data) if isinstance(data, str) else data  # the snapshot's connection leaves JSON as text
            for (data,) in _rows(snapshot, portability.espi_order(_records(job, dataset)), ("data",)))
    path = espi_entry(dataset)
    with archive.open(path, "w", force_zip64=True) as entry:
        out = _HashingWriter(entry)
        for chunk in greenbutton.feed_bytes(espi_kind(dataset.slug) or "", rows, context):
            out.write(chunk)
        out.flush()
    return _file(path, out, kind="espi", dataset=dataset.slug, content_type=greenbutton.MEDIA_TYPE)


class _Sink(io.RawIOBase):
    """Lets a TextIOWrapper write into a _HashingWriter."""

    def __init__(self, out: _HashingWriter) -> None:
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.out.write(bytes(data))
        return len(data)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DOTS = re.compile(r"\.{2,}")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")
ENTRY_PART_LENGTH = 80


def entry_part(value: str, *, keep_extension: bool = False) -> str:
    """One segment of a ZIP entry name made from a legacy value (a record key, a file name).

    Only letters, digits, `.`, `_` and `-` are kept (anything else becomes `_`), runs of dots
    become one, leading dots are dropped and the length is capped, so no `..`, separator, leading `/`, drive letter or
    control character reaches the entry name (zip slip, CWE-22; APPNOTE 4.4.17: relative
    names with forward slashes only). A value that had to change gets a short hash of the raw
    value, so two values never meet on one name and the same value always gives the same name.
    """
    extension = ""
    stem = value
    if keep_extension and (match := _EXTENSION.search(value)):
        stem, extension = value[:match.start()], match.group()
    safe = _DOTS.sub(".", _UNSAFE.sub("_", stem))[:ENTRY_PART_LENGTH].lstrip(".")
    if safe + extension == value and ".." not in value and value:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe or '_'}-{digest}{extension}"


def document_entry(*, dataset_slug: str, record_key: str, filename: str) -> str:
    """The archive path of a record's document: documents/<dataset>/<key>/<file>, every part safe."""
    return (f"documents/{entry_part(dataset_slug)}/{entry_part(record_key)}/"
            f"{entry_part(filename, keep_extension=True)}")


def _write_documents(archive: zipfile.ZipFile, job: ExportJob, dataset: Dataset) -> list[dict[str, Any]]:
    """The files attached to the archived records (invoice PDFs), each checked against its SHA-256."""
    files = []
    for document in _documents(job, dataset).iterator(chunk_size=200):
        path = document_entry(dataset_slug=dataset.slug, record_key=document.record_key,
                              filename=document.filename)
        with document.file.open("rb") as source, archive.open(path, "w", force_zip64=True) as entry:
            out = _HashingWriter(entry)
            while chunk := source.read(COPY_CHUNK):
                out.write(chunk)
            out.flush()
        if out.digest.hexdigest() != document.sha256:
            raise ValueError(f"document {document.pk} does not match its checksum")
        files.append(_file(path, out, kind="document", dataset=dataset.slug, record_key=document.record_key,
                           content_type=document.content_type))
    return files


def _write_bytes(archive: zipfile.ZipFile, path: str, content: bytes, **meta) -> dict[str, Any]:
    archive.writestr(path, content)
    return {"path": path, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(), **meta}


def _file(path: str, out: _HashingWriter, **meta) -> dict[str, Any]:
    return {"path": path, "size": out.size, "sha256": out.digest.hexdigest(), **meta}


def _iso(moment: datetime | None) -> str | None:
    return utc_text(moment) if moment else None


def _manifest(job: ExportJob, datasets: list[Dataset], counts: dict[str, int], files: list[dict[str, Any]],
              transaction_time: datetime) -> dict[str, Any]:
    grant = job.grant
    return {
        "format": ARCHIVE_FORMAT,
        "export_id": str(job.public_id),
        "transaction_time": _iso(transaction_time),
        "request": {"datasets": job.datasets, "from": _iso(job.window_start), "to": _iso(job.window_end)},
        "holder": settings.GATEWAY_HOLDER_NAME,
        "grant": None if grant is None else {
            "receipt_id": str(grant.receipt_id), "client_id": grant.client.client_id,
            "client_name": grant.client.name, "duration": grant.duration,
            "expires_at": _iso(grant.expires_at)},
        "requested_by": "client" if grant is not None else "customer",
        "datasets": [{"slug": d.slug, "title": {"en": d.title_en, "fr": d.title_fr},
                      "schema_version": d.schema_version, "records": counts[d.slug]} for d in datasets],
        "record_count": sum(counts.values()),
        "files": files,
        "note": "manifest.json itself is not listed; every other file of the archive is, with its SHA-256.",
    }


def readme(*, job: ExportJob, datasets: list[Dataset], counts: dict[str, int]) -> str:
    """The archive's README: what each file is and what each field means, in French and English."""
    parts = [_readme_part("fr", job, datasets, counts), _readme_part("en", job, datasets, counts)]
    if job.language != "fr":
        parts.reverse()
    return ("\n" + "=" * 72 + "\n\n").join(parts)


_README_TEXT = {
    "en": {
        "title": "Your data from {holder}",
        "intro": "This archive holds the data {holder} keeps about you, as of {time} (UTC). Each dataset is "
                 "a folder with the same records twice: records.ndjson (one JSON object per line, for "
                 "programs) and records.csv (a table, for spreadsheets), plus schema.json, the JSON Schema "
                 "describing one record. manifest.json lists every file with its SHA-256 checksum.",
        "records": "{n} record(s)",
        "fields": "Fields:",
        "columns": "Every row also has: dataset, key (the record's identifier), seq (change number), date "
                   "(the date the record describes: a day as the day itself, in your time zone; a moment in UTC), "
                   "deleted.",
        "csv": "In records.csv, a text that a spreadsheet would take for a formula (starting with =, +, -, "
               "@, a tab or a carriage return) is written after a single quote ('), so that opening the "
               "file never runs anything; records.ndjson holds the exact text.",
        "blocks": "In records.csv of {slug}, where a record is a day of readings, each row is one "
                  "interval of the day: reading_start (UTC), value, quality (when the source gives one), "
                  "and missing=true with an empty value where the meter sent no reading.",
        "documents": "documents/: the files attached to your records (e.g. invoice PDFs), by record. A "
                     "record key or file name that is not a plain name is shortened to a safe one followed "
                     "by a short code; manifest.json gives each file's record key as it is.",
        "espi": "{file}: the same records as Green Button XML (ESPI \"Download My Data\"), for energy "
                "apps and services; one block per meter and day, energy in thousandths of a Wh.",
        "rights": "You may give this archive to any service you choose (GDPR Art. 20).",
        "processing": ("How we process it (GDPR Art. 15):", "Purposes", "Legal basis", "Recipients", "Retention",
                       "Source systems", "Automated decisions", "yes", "no"),
    },
    "fr": {
        "title": "Vos données chez {holder}",
        "intro": "Cette archive contient les données que {holder} conserve sur vous, à la date du {time} "
                 "(UTC). Chaque jeu de données est un dossier avec les mêmes enregistrements deux fois : "
                 "records.ndjson (un objet JSON par ligne, pour les logiciels) et records.csv (un tableau, "
                 "pour un tableur), ainsi que schema.json, le schéma JSON d'un enregistrement. "
                 "manifest.json liste chaque fichier avec son empreinte SHA-256.",
        "records": "{n} enregistrement(s)",
        "fields": "Champs :",
        "columns": "Chaque ligne a aussi : dataset (le jeu de données), key (l'identifiant de "
                   "l'enregistrement), seq (numéro de modification), date (la date que décrit "
                   "l'enregistrement : un jour tel quel, dans votre fuseau horaire ; un instant en UTC), "
                   "deleted (supprimé).",
        "csv": "Dans records.csv, un texte qu'un tableur prendrait pour une formule (commençant par =, +, "
               "-, @, une tabulation ou un retour chariot) est écrit après une apostrophe ('), pour "
               "qu'ouvrir le fichier n'exécute jamais rien ; records.ndjson contient le texte exact.",
        "blocks": "Dans records.csv de {slug}, où un enregistrement est une journée de relevés, chaque "
                  "ligne est un intervalle de la journée : reading_start (début, UTC), value (valeur), "
                  "quality (qualité, si la source la donne), et missing=true avec une valeur vide là où "
                  "le compteur n'a rien envoyé.",
        "documents": "documents/ : les fichiers joints à vos enregistrements (factures PDF…), par "
                     "enregistrement. Un identifiant ou un nom de fichier qui n'est pas un nom simple est "
                     "raccourci en un nom sûr suivi d'un court code ; manifest.json donne l'identifiant "
                     "exact de chaque fichier.",
        "espi": "{file} : les mêmes enregistrements au format Green Button (XML ESPI, « Download My Data »), "
                "pour les applications et services d'énergie ; un bloc par compteur et par jour, l'énergie en "
                "millièmes de Wh.",
        "rights": "Vous pouvez confier cette archive au service de votre choix (RGPD, art. 20).",
        "processing": ("Comment nous les traitons (RGPD, art. 15) :", "Finalités", "Base légale", "Destinataires",
                       "Durée de conservation", "Systèmes sources", "Décisions automatisées", "oui", "non"),
    },
}


def _readme_part(language: str, job: ExportJob, datasets: list[Dataset], counts: dict[str, int]) -> str:
    text = _README_TEXT[language]
    holder = settings.GATEWAY_HOLDER_NAME
    when = job.transaction_time or timezone.now()
    lines = [text["title"].format(holder=holder), "",
             text["intro"].format(holder=holder, time=when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")), "",
             text["columns"], "", text["csv"], ""]
    for dataset in datasets:
        title = dataset.title_fr if language == "fr" else dataset.title_en
        description = dataset.description_fr if language == "fr" else dataset.description_en
        lines += [f"{dataset.slug}/ — {title} ({text['records'].format(n=counts[dataset.slug])})",
                  f"  {description}"]
        if espi_kind(dataset.slug):
            lines.append("  " + text["espi"].format(file=espi_entry(dataset)))
        lines.append(f"  {text['fields']}")
        lines += [f"    - {field['name']} ({field['label']}): {field['help']}"
                  for field in field_descriptions(dataset, language)]
        if has_day_blocks(dataset.schema):
            lines.append("  " + text["blocks"].format(slug=dataset.slug))
        lines += _processing_lines(text["processing"], processing.in_language(processing.facts(dataset), language))
        lines.append("")
    lines += [text["documents"], "", text["rights"], ""]
    return "\n".join(lines)


def _processing_lines(labels: tuple[str, ...], facts: dict) -> list[str]:
    heading, purposes, basis, recipients, retention, sources, automated, yes, no = labels
    return [f"  {heading}", f"    - {purposes}: {facts['purposes']}", f"    - {basis}: {facts['legal_basis']}",
            f"    - {recipients}: {'; '.join(facts['recipients'])}", f"    - {retention}: {facts['retention']}",
            f"    - {sources}: {', '.join(facts['sources']) or '—'}",
            f"    - {automated}: {yes if facts['automated_decisions'] else no}"]


# --- Retention ---------------------------------------------------------------------------------

def _delete_file(job: ExportJob) -> None:
    if job.file_name:
        storages["exports"].delete(job.file_name)


def purge_expired_exports(*, now: datetime | None = None) -> int:
    """Scheduled: delete archives past their retention; the job rows stay as history."""
    now = now or timezone.now()
    purged = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, expires_at__lte=now):
        _delete_file(job)
        purged += ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.SUCCEEDED).update(
            status=ExportJob.Status.EXPIRED)
    return purged


def requeue_stalled_exports(*, now: datetime | None = None) -> list[int]:
    """Scheduled: jobs whose worker died (no heartbeat) are sent again; the claim takes them back."""
    now = now or timezone.now()
    stalled = list(ExportJob.objects.filter(_claimable(now) & ~_queued_recently(now))
                   .values_list("pk", flat=True))
    for job_id in stalled:
        outbox.enqueue(task="restitution.tasks.build_export", args=[job_id])
    return stalled


def _queued_recently(now: datetime) -> Q:
    return Q(status=ExportJob.Status.QUEUED, requested_at__gt=now - STALE_AFTER)
