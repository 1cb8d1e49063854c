"""The gateway's domain tables. Behaviour lives in the domain modules, not here.

Never put business logic in save() or signals: extraction.py, store.py and consent.py own it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Customer(models.Model):
    """A person the holder keeps data about, who may log in to the gateway."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="customer",
    )
    reference = models.CharField(max_length=64, unique=True, help_text="The gateway's own id.")
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.display_name or self.reference


class LegacyIdentity(models.Model):
    """How one legacy system names a customer (member number, delivery point, account id)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    system = models.SlugField(max_length=64, help_text="Matches Source.identity_system.")
    value = models.CharField(max_length=128)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "value"], name="legacy_identity_unique"),
        ]
        verbose_name_plural = "legacy identities"

    def __str__(self) -> str:
        return f"{self.system}:{self.value}"


class Dataset(models.Model):
    """A published dataset: what the holder restitutes, its schema, its key and its scope."""

    slug = models.SlugField(max_length=64, unique=True)
    title_en = models.CharField(max_length=200)
    title_fr = models.CharField(max_length=200)
    description_en = models.TextField()
    description_fr = models.TextField()
    schema = models.JSONField(help_text="JSON Schema (draft 2020-12) of one record.")
    schema_version = models.CharField(max_length=20, default="1.0.0")
    natural_key = models.JSONField(help_text="List of fields that identify a record.")
    date_field = models.CharField(max_length=64, help_text="Field giving the date a record describes.")
    day_zone = models.CharField(
        max_length=64, blank=True, default="", editable=False,
        help_text="When the date field is a day (format `date`): the time zone whose local days they are "
                  "(a record's date is stored as that day's local midnight, and its items print the day); "
                  "empty when its dates are instants. Set once, by catalogue.day_zone().")
    field_help = models.JSONField(default=dict, blank=True,
                                  help_text="Plain-language description of each field, {field: {en, fr}}.")
    is_published = models.BooleanField(default=True)
    processing = models.JSONField(
        default=dict, blank=True,
        help_text="GDPR Art. 15 facts, edited by the operator: {\"purposes\": {\"en\": …, \"fr\": …}, "
                  "\"legal_basis\": {\"en\": …, \"fr\": …}, \"recipients\": [{\"en\": …, \"fr\": …}], "
                  "\"retention\": {\"en\": …, \"fr\": …}, \"automated_decisions\": false}; a key left out "
                  "takes the gateway's default (restitution/processing.py).")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def scope(self) -> str:
        """The OAuth2 scope that reads this dataset."""
        return f"dataset:{self.slug}"


class Source(models.Model):
    """One legacy system feeding one or more datasets."""

    class Kind(models.TextChoices):
        SQL = "sql", "SQL database"
        CSV = "csv", "CSV files"
        FIXED_WIDTH = "fixed-width", "Fixed-width files"
        HTTP_JSON = "http-json", "HTTP JSON API"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    connection_env = models.CharField(
        max_length=100,
        help_text="Name of the environment variable holding the connection (URL, DSN or "
        "directory). The connection itself is never stored in the database.",
    )
    identity_system = models.SlugField(
        max_length=64, help_text="Which LegacyIdentity.system names customers in this source."
    )
    options = models.JSONField(
        default=dict, blank=True,
        help_text="Adapter options: {'datasets': {slug: {...how to read it...}}, ...}.",
    )
    mappings = models.JSONField(
        default=dict, blank=True, help_text="Declarative mapping per dataset: {slug: mapping}."
    )
    datasets = models.ManyToManyField(Dataset, related_name="sources", blank=True)
    max_concurrent_runs = models.PositiveIntegerField(
        default=2, help_text="Runs of this source at once, across all workers."
    )
    max_requests_per_second = models.FloatField(
        default=10.0, help_text="Requests (queries, HTTP calls, file opens) per second, across all "
        "workers; 0 for no cap."
    )
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.slug


class Record(models.Model):
    """The gateway's copy of one customer record of one dataset (deleted=True is a tombstone).

    On PostgreSQL the table also has a column `item`, not a field here: the record's API item
    printed by a trigger on every write (migration 0008_record_item), read by the API's pages.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="records")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="records")
    source = models.ForeignKey(Source, null=True, on_delete=models.SET_NULL, related_name="records")
    key = models.CharField(max_length=255)
    data = models.JSONField(null=True)
    content_hash = models.CharField(max_length=64)
    record_at = models.DateTimeField(null=True, db_index=False)
    extracted_at = models.DateTimeField()
    seq = models.BigIntegerField(unique=True, help_text="Global change sequence of the last change.")
    deleted = models.BooleanField(default=False)
    source_digest = models.BinaryField(
        null=True, editable=False,
        help_text="Digest of the legacy row this record was mapped from, with its mapping: a batch "
                  "run that reads the same row again knows the record is unchanged without mapping it.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "dataset", "key"], name="record_natural_key"),
        ]
        indexes = [
            models.Index(fields=["customer", "dataset", "record_at"], name="record_by_date"),
            models.Index(fields=["customer", "seq"], name="record_changes"),
            # A record page: one customer's dataset after a cursor, in sequence order (the API's hot path).
            models.Index(fields=["customer", "dataset", "seq"], name="record_pages"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id}/{self.customer_id}/{self.key}"


class ChangeCounter(models.Model):
    """Single-row counter for the change sequence on databases without sequences (SQLite)."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"change sequence at {self.value}"


class Document(models.Model):
    """A file attached to a record (an invoice PDF), stored through Django's storage API."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="documents")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT)
    record_key = models.CharField(max_length=255)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to="documents/%Y/%m/")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "dataset", "record_key", "sha256"],
                                    name="document_unique"),
        ]

    def __str__(self) -> str:
        return self.filename


class ExtractionRun(models.Model):
    """One run of one source, for one customer or for all of them (a batch)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"
        CONSENT = "consent"
        CUSTOMER = "customer"
        RETRY = "retry"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED,
                              db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    attempts = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="0..1")
    read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Rows of people who are not gateway customers.")
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    sharded = models.BooleanField(default=False, help_text="Split into shards (RunShard) that "
                                  "workers take independently; the run's counters are their sums.")

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["source", "customer", "status"], name="run_lookup")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.source_id} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class RunShard(models.Model):
    """One part of a sharded batch run: the customers whose legacy identity lies in
    (key_after, key_upto] (None: unbounded), in the gateway's own ordering of identity values;
    or, for a file source (`hash_of` set), the customers whose identity's hash modulo `hash_of`
    is `number - 1` (every shard reads every file and keeps its own customers' rows).

    A shard is claimed, performed, retried and recovered exactly like an unsharded run; it
    tombstones only records of its own customers. Its run's counters are the sums of its shards'.
    """

    Status = ExtractionRun.Status

    run = models.ForeignKey(ExtractionRun, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    key_after = models.TextField(null=True, blank=True,  # noqa: DJ001 - None is "no lower bound"
                                 help_text="Exclusive lower bound of the identity values (none: open).")
    key_upto = models.TextField(null=True, blank=True,  # noqa: DJ001 - None is "no upper bound"
                                help_text="Inclusive upper bound of the identity values (none: open).")
    hash_of = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Shards by identity hash: how many there are (none: a range of identities).")
    customers = models.PositiveIntegerField(default=0, help_text="Customers in range when planned.")
    status = models.CharField(max_length=20, choices=ExtractionRun.Status.choices,
                              default=ExtractionRun.Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="0..1")
    read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="run_shard_number")]

    def __str__(self) -> str:
        return f"shard {self.number} of run {self.run_id} ({self.status})"


class RejectedRow(models.Model):
    """A legacy row that failed reading, mapping or validation, with why and its raw values.

    One row per stable locator (`quarantine.py`): a later run that rejects the same legacy row
    updates it (its run, reason, values, last_seen_at) instead of adding another. The operator
    gives it a state and a note; the customer is told how many of theirs are withheld.
    """

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        FIXED = "fixed", _("Fixed at source")
        ACCEPTED = "accepted", _("Accepted as not restitutable")

    run = models.ForeignKey(ExtractionRun, on_delete=models.CASCADE, related_name="rejected_rows",
                            help_text="The last run that rejected it.")
    source = models.ForeignKey(Source, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL)
    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL)
    locator = models.CharField(max_length=500, help_text="Where the row is, stably: table and primary "
                               "key, file, line and content hash, or URL and id.")
    # Null for rows quarantined before fingerprints (unique, so not the empty string).
    fingerprint = models.CharField(max_length=64, unique=True, null=True, editable=False,  # noqa: DJ001
                                   help_text="SHA-256 of source, dataset and locator.")
    reason = models.TextField()
    raw = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, help_text="First rejected.")
    last_seen_at = models.DateTimeField(default=timezone.now, help_text="Last rejected.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN, db_index=True)
    note = models.TextField(blank=True, help_text="The operator's note (never shown with raw values).")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.locator}: {self.reason}"


# --- Consent ---------------------------------------------------------------------------------

from oauth2_provider.models import AbstractApplication  # noqa: E402 - after the core models


class PimsClient(AbstractApplication):
    """An OAuth2 client: a personal cloud or app that customers may connect (DOT's Application).

    Only an *approved* client can start an authorization flow or use its tokens. A change its
    registrant asks for to what customers are shown or where codes go waits in `proposed_changes`
    until the operator applies it (`restitution/clients.py`). A client is never deleted: it is
    deprovisioned, and its grants, receipts and access events keep naming it.
    """

    class Approval(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"
        DEPROVISIONED = "deprovisioned", "Deprovisioned (deleted by its registrant or the operator)"

    approval = models.CharField(max_length=20, choices=Approval.choices, default=Approval.PENDING,
                                db_index=True)
    logo_url = models.URLField(blank=True)
    homepage_url = models.URLField(blank=True)
    privacy_policy_url = models.URLField(blank=True)
    purpose_en = models.TextField(blank=True, help_text="Why it asks for data, shown on the consent page.")
    purpose_fr = models.TextField(blank=True)
    allowed_datasets = models.ManyToManyField(Dataset, blank=True, related_name="clients",
                                              help_text="Datasets this client may ask for.")
    terms_url = models.URLField(blank=True, help_text="Its terms of service (RFC 7591 tos_uri).")
    registered_dynamically = models.BooleanField(default=False)
    proposed_changes = models.JSONField(
        default=dict, blank=True,
        help_text="Values its registrant asked for (RFC 7592 update), not in force until the operator "
                  "applies them.")
    proposed_at = models.DateTimeField(null=True, blank=True)
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    pkce_optional = models.BooleanField(
        "PKCE optional", default=False,
        help_text="Confidential clients only: let this client exchange a code without PKCE (e.g. a "
                  "personal cloud whose OAuth flow sends none). Its secret then alone binds the code to "
                  "it; an intercepted code plus a leaked secret gives a token (docs/security.md). Public "
                  "clients always need PKCE.")

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "PIMS client"

    def clean(self):
        super().clean()
        if self.pkce_optional and self.client_type != self.CLIENT_CONFIDENTIAL:
            raise ValidationError({"pkce_optional": "A public client always needs PKCE (RFC 9700 §2.1.1)."})

    @property
    def needs_pkce(self) -> bool:
        """PKCE is required unless the operator relaxed it for this confidential client."""
        return not (self.pkce_optional and self.client_type == self.CLIENT_CONFIDENTIAL)

    def is_usable(self, request) -> bool:
        """DOT asks this before issuing or honouring a token: unapproved clients get nothing."""
        return self.approval == self.Approval.APPROVED and super().is_usable(request)

    def purpose(self, language: str) -> str:
        return (self.purpose_fr if language.startswith("fr") else self.purpose_en) or self.purpose_en


class Grant(models.Model):
    """A customer's consent to one client: which datasets, which period of data, until when."""

    class Duration(models.TextChoices):
        ONE_TIME = "one-time", "One time"
        MONTH_1 = "1m", "1 month"
        MONTHS_3 = "3m", "3 months"
        MONTHS_6 = "6m", "6 months"
        MONTHS_12 = "12m", "12 months"

    receipt_id = models.UUIDField(unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="grants")
    # PROTECT: a client is deprovisioned, never deleted with the consents given to it.
    client = models.ForeignKey(PimsClient, on_delete=models.PROTECT, related_name="grants")
    datasets = models.ManyToManyField(Dataset, related_name="grants")
    purpose = models.TextField(blank=True)
    window_start = models.DateField(null=True, blank=True, help_text="Oldest data shared (inclusive).")
    window_end = models.DateField(null=True, blank=True, help_text="Newest data shared (inclusive).")
    duration = models.CharField(max_length=10, choices=Duration.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True,
                                    help_text="When a one-time grant was used up.")
    receipt = models.JSONField(help_text="Machine-readable consent receipt.")
    first_seq = models.BigIntegerField(
        null=True, blank=True, editable=False,
        help_text="A change-sequence value taken when the consent was given: a `since` below it, from an "
                  "earlier consent of the same customer to the same client, is read from the start "
                  "(records that entered the window are sent again).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "client", "revoked_at"], name="grant_lookup")]

    def __str__(self) -> str:
        return f"grant {self.receipt_id} ({self.customer} → {self.client})"

    @property
    def is_one_time(self) -> bool:
        return self.duration == self.Duration.ONE_TIME

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.ended_at:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "active"

    def is_active(self, now=None) -> bool:
        return self.status(now) == "active"


class AccessEvent(models.Model):
    """Append-only log of every access and every consent event, shown to the customer."""

    class Kind(models.TextChoices):
        GRANT_CREATED = "grant-created", _("Access granted")
        GRANT_REVOKED = "grant-revoked", _("Access revoked")
        GRANT_EXPIRED = "grant-expired", _("Access expired")
        TOKEN_ISSUED = "token-issued", _("Connection established")
        TOKEN_REFRESHED = "token-refreshed", _("Connection renewed")
        TOKEN_REVOKED = "token-revoked", _("Connection closed")
        DATA_READ = "data-read", _("Data read")
        EXPORT = "export", _("Archive exported")
        EXPORT_DOWNLOADED = "export-downloaded", _("Archive downloaded")
        DELIVERY = "delivery", _("Data delivered")
        HISTORY_PURGED = "history-purged", _("Old history removed")
        STAFF_ACCESS = "staff-access", _("Viewed by the holder's staff")

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="access_events")
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="access_events")
    client = models.ForeignKey(PimsClient, null=True, blank=True, on_delete=models.PROTECT)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL)
    record_count = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The per-customer hash chain, set by a database trigger on insert (migration
    # 0012_access_event_chain; docs/history.md gives the algorithm), checked by verify_history.
    chain_seq = models.PositiveIntegerField(null=True, blank=True, editable=False,
                                            help_text="Position in the customer's chain, from 1.")
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="access_by_customer")]
        constraints = [models.UniqueConstraint(fields=["customer", "chain_seq"], name="access_chain_position")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind}"


# --- Operations ------------------------------------------------------------------------------


class ApiCall(models.Model):
    """One call to the API or the OAuth2 endpoints, for the operator's metrics (never its content).

    Holds no token, no query string and no customer: only when, which endpoint tier, the status
    and how long it took. Purged by retention after GATEWAY_API_CALL_RETENTION_DAYS.
    """

    at = models.DateTimeField(db_index=True)
    tier = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=64, help_text="The URL name, never the path.")
    status = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField()
    client = models.ForeignKey(PimsClient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["tier", "at"], name="api_call_by_tier")]
        verbose_name = "API call"
        verbose_name_plural = "operator metrics (API calls)"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.endpoint} {self.status}"


class ConsentFlow(models.Model):
    """One authorization flow, from the client's request to the token exchange, by stage.

    A flow that stops before `completed` is an abandoned consent flow in the operator's metrics.
    """

    class Stage(models.TextChoices):
        AUTHENTICATION = "authentication", "Waiting for the customer to log in"
        CONSENT = "consent", "Consent page shown"
        REJECTED = "rejected", "Declined by the customer"
        TOKEN_EXCHANGE = "token-exchange", "Consent given, code not yet exchanged"
        COMPLETED = "completed", "Token issued"

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    client = models.ForeignKey(PimsClient, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AUTHENTICATION)

    def __str__(self) -> str:
        return f"flow {self.pk} of {self.client_id} at {self.stage}"


class ExchangedCode(models.Model):
    """An authorization code already exchanged, kept to answer its replay (RFC 6749 §4.1.2).

    Only the code's SHA-256 is kept, with the refresh-token family its exchange started, so a
    second exchange can revoke every token that came from the first.
    """

    code_checksum = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(PimsClient, on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(null=True, blank=True)
    exchanged_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"code exchanged by {self.client_id} at {self.exchanged_at:%Y-%m-%d %H:%M}"


# --- Exports ---------------------------------------------------------------------------------

class ExportJob(models.Model):
    """One archive of a customer's data: asked by a client under a grant, or by the customer.

    The archive itself lives in Django's storage (`file_name`); the row stays after the file
    is purged, as the history of what left the gateway.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        EXPIRED = "expired"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    public_id = models.UUIDField(unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="exports")
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports",
                              help_text="The consent a client asked under; empty when the customer asked.")
    datasets = models.JSONField(help_text="Slugs of the datasets in the archive.")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    for_customer = models.BooleanField(default=False,
                                       help_text="A direct download: adds the README and the documents.")
    language = models.CharField(max_length=8, default="en")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    records_total = models.BigIntegerField(default=0)
    records_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True, help_text="The archive in the default storage.")
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(null=True, blank=True)
    transaction_time = models.DateTimeField(null=True, blank=True,
                                            help_text="The moment of the database snapshot archived.")
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the archive is deleted.")
    manifest_delivered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # One export at a time per consent (the API answers 429 to a second one).
            models.UniqueConstraint(fields=["grant"], condition=models.Q(status__in=["queued", "running"]),
                                    name="one_active_export_per_grant"),
            models.UniqueConstraint(fields=["customer"], condition=models.Q(status__in=["queued", "running"],
                                                                            for_customer=True),
                                    name="one_active_download_per_customer"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="export_retention")]

    def __str__(self) -> str:
        return f"export {self.public_id} ({self.status})"


# --- Transactional outbox --------------------------------------------------------------------

class OutboxMessage(models.Model):
    """A task message written in the same transaction as the row it is about, published to the
    broker after commit (or later by the relay when the broker was down): nothing requested is
    lost to a broker outage, and nothing is published for a transaction that rolled back."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)}"
