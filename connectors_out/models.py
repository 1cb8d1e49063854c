"""Destinations a customer connected, deliveries and their attempts, webhook endpoints and
their deliveries. Behaviour lives in delivery.py and webhooks.py, never in save() or signals.

Credentials and secrets are stored encrypted (restitution.crypto), never in clear.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from restitution.models import Customer, Dataset, Grant, PimsClient


class Destination(models.Model):
    """A personal cloud a customer connected: a grant like any other — datasets, a period of
    data, a duration, revocable — whose recipient is a store the gateway writes to.

    Its field names (customer, datasets, window_start, window_end) are those of Grant, so the
    portability module's page queries serve it unchanged.
    """

    receipt_id = models.UUIDField(unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="destinations")
    kind = models.CharField(max_length=20, help_text="A name of connectors_out.registry (checked when connecting).")
    label = models.CharField(max_length=200, help_text="Shown to the customer, e.g. the server's address.")
    settings = models.JSONField(default=dict, blank=True,
                                help_text="Where to write (server, user, folder): nothing secret.")
    credentials = models.TextField(blank=True, help_text="Encrypted (restitution.crypto); emptied on revocation.")
    datasets = models.ManyToManyField(Dataset, related_name="destinations")
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    duration = models.CharField(max_length=10, choices=Grant.Duration.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    pending_authorization = models.BooleanField(
        default=False, help_text="Waiting for the customer to authorize the gateway at the destination.")
    delivered_seq = models.BigIntegerField(
        default=0, help_text="Every change up to this change sequence is at the destination.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    blocked_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A delivery failed permanently: nothing more is queued until the customer acts.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind_label} {self.label} ({self.customer})"

    @property
    def kind_label(self) -> str:
        from .registry import label

        return label(self.kind)

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.pending_authorization:
            return "pending"
        return "active"

    def is_active(self, now=None) -> bool:
        return self.status(now) == "active"


class Delivery(models.Model):
    """One push of the changes since `from_seq` to one destination; written before it is tried."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("delivered")
        FAILED = "failed", _("failed")

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=20, default="extraction")
    from_seq = models.BigIntegerField(default=0, help_text="Changes after this sequence are sent.")
    to_seq = models.BigIntegerField(null=True, blank=True, help_text="Last sequence delivered so far.")
    written = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(
        null=True, blank=True,
        help_text="After a transient failure: no attempt before this time (the backoff step), in any shape.")
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    advice = models.TextField(blank=True, help_text="What the customer can do about a failure.")

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["destination", "status"], name="delivery_lookup")]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.destination_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try of a delivery: how long, how it ended, the HTTP status and error if any."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        TRANSIENT = "transient", _("temporary failure")
        PERMANENT = "permanent", _("failure")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome or 'running'}"


class WebhookEndpoint(models.Model):
    """Where a PIMS client wants to be told of new data and revoked grants (one per client)."""

    client = models.OneToOneField(PimsClient, on_delete=models.CASCADE, related_name="webhook")
    url = models.URLField(max_length=500)
    secret = models.TextField(editable=False, help_text="Signing secret, encrypted at rest.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook of {self.client}"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to an endpoint: the delivery log a client can be shown."""

    class Event(models.TextChoices):
        NEW_DATA = "new-data"
        GRANT_REVOKED = "grant-revoked"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64, unique=True, help_text="webhook-id header; stable across retries.")
    event = models.CharField(max_length=20, choices=Event.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(
        null=True, blank=True,
        help_text="After a transient failure: no attempt before this time (the backoff step), in any shape.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.event_id} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
