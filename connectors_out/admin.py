"""Admin: webhook endpoints of PIMS clients (the signing secret is shown once, when made), and
read-only views of destinations, deliveries and webhook deliveries with their attempts.

Credentials and secrets are never displayed after creation: they are stored encrypted.
"""

from __future__ import annotations

from django.contrib import admin, messages

from restitution.admin import ReadOnlyAdmin

from . import webhooks
from .models import Delivery, DeliveryAttempt, Destination, WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("client", "url", "enabled", "created_at")
    fields = ("client", "url", "enabled")
    actions = ["new_secret"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            endpoint, secret = webhooks.register_endpoint(client=obj.client, url=obj.url)
            obj.pk, obj.secret = endpoint.pk, endpoint.secret
            self._show(request, endpoint, secret)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Make a new signing secret (the old one stops working)")
    def new_secret(self, request, queryset) -> None:
        for endpoint in queryset.select_related("client"):
            _, secret = webhooks.register_endpoint(client=endpoint.client, url=endpoint.url)
            self._show(request, endpoint, secret)

    def _show(self, request, endpoint: WebhookEndpoint, secret: str) -> None:
        self.message_user(request, f"Signing secret of {endpoint.client} — give it to the client now, it will not "
                                   f"be shown again: {secret}", messages.WARNING)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "duration_ms", "status_code", "error")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "event", "endpoint", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event")
    readonly_fields = ("endpoint", "event_id", "event", "payload", "status", "attempts", "created_at", "finished_at",
                       "last_status_code", "error")
    inlines = [WebhookAttemptInline]


def attention_items(now) -> list[dict]:
    """What the operator console lists for this app: destinations whose deliveries are blocked."""
    from django.urls import reverse
    from django.utils.translation import gettext_lazy as _

    blocked = Destination.objects.filter(blocked_at__isnull=False, revoked_at__isnull=True, expires_at__gt=now)
    return [{"key": "blocked-deliveries", "label": _("Destinations with blocked deliveries"),
             "count": blocked.count(),
             "url": reverse("admin:connectors_out_destination_changelist") + "?blocked_at__isnull=False"}]


@admin.register(Destination)
class DestinationAdmin(ReadOnlyAdmin):
    list_display = ("customer", "kind", "label", "created_at", "expires_at", "revoked_at", "blocked_at",
                    "delivered_seq")
    list_filter = ("kind", "blocked_at")  # "Has date": the blocked ones (the operator console links there)
    exclude = ("credentials",)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "duration_ms", "outcome", "status_code", "error")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "destination", "status", "trigger", "written", "removed", "files", "attempts", "queued_at")
    list_filter = ("status", "destination__kind")
    inlines = [DeliveryAttemptInline]
