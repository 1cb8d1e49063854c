"""The operator console: the admin site whose home lists what needs the operator's attention.

Each item is a count and a link to the admin list that shows exactly those rows. An item with
nothing to do is still listed (0), so the operator sees that it was checked.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A registration access token (RFC 7592) expiring within this many days is listed: without it
# the registrant can no longer read or update its client and has to register again.
EXPIRING_SOON_DAYS = 7
# Failed extraction runs are listed for this long; a retry that succeeded does not hide one.
FAILED_RUNS_DAYS = 7


#: Items other apps add to the console (each a function `now -> list of items`), registered in
#: their AppConfig.ready: connectors_out lists its blocked destinations without the domain
#: importing it.
PROVIDERS: list = []


def register(provider) -> None:
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)


def attention_items(now=None) -> list[dict]:
    from oauth2_provider.models import get_access_token_model
    from oauth2_provider.settings import oauth2_settings

    from .models import ExtractionRun, PimsClient, RejectedRow

    now = now or timezone.now()
    live_clients = PimsClient.objects.exclude(approval=PimsClient.Approval.DEPROVISIONED)
    expiring = get_access_token_model().objects.filter(
        scope=oauth2_settings.DCR_REGISTRATION_SCOPE, expires__gt=now,
        expires__lte=now + timedelta(days=EXPIRING_SOON_DAYS), application__in=live_clients)
    clients_url = reverse("admin:restitution_pimsclient_changelist")
    return [
        {"key": "pending-clients", "label": _("Clients awaiting approval"),
         "count": live_clients.filter(approval=PimsClient.Approval.PENDING).count(),
         "url": f"{clients_url}?approval__exact=pending"},
        {"key": "client-changes", "label": _("Client changes awaiting review"),
         "count": live_clients.exclude(proposed_changes={}).count(), "url": f"{clients_url}?change=yes"},
        {"key": "quarantine", "label": _("Rows in quarantine (rejected by a mapping)"),
         "count": RejectedRow.objects.filter(state=RejectedRow.State.OPEN).count(),
         "url": reverse("admin:restitution_rejectedrow_changelist") + "?state__exact=open"},
        {"key": "failed-runs", "label": _("Failed extraction runs (last %(days)s days)") % {"days": FAILED_RUNS_DAYS},
         "count": ExtractionRun.objects.filter(status=ExtractionRun.Status.FAILED,
                                               queued_at__gte=now - timedelta(days=FAILED_RUNS_DAYS)).count(),
         "url": reverse("admin:restitution_extractionrun_changelist") + "?status__exact=failed"},
        {"key": "expiring-keys", "label": _("Registration keys expiring within %(days)s days") % {
            "days": EXPIRING_SOON_DAYS},
         "count": expiring.count(),
         "url": reverse("admin:oauth2_provider_accesstoken_changelist") + "?expiring=soon"},
        *(item for provider in PROVIDERS for item in provider(now)),
    ]


class GatewayAdminSite(admin.AdminSite):
    site_header = _("Restitution gateway: operator console")
    site_title = _("Restitution gateway")
    index_title = _("What needs attention")
    index_template = "admin/gateway_index.html"
    # "View site" opens the gateway's public API reference: operators have no customer pages.
    site_url = "/api/redoc/"

    def index(self, request, extra_context=None):
        return super().index(request, {**(extra_context or {}), "attention": attention_items()})
