"""Operator admin: sources and their mappings, datasets, runs with progress, quarantined rows."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme

from . import audit, catalogue, processing
from . import runs as run_requests
from .catalogue import BY_SLUG
from .mapping import compile_mapping
from .models import (
    ApiCall,
    Customer,
    Dataset,
    Document,
    ExtractionRun,
    LegacyIdentity,
    Record,
    RejectedRow,
    RunShard,
    Source,
)


class StaffReasonForm(forms.Form):
    reason = forms.CharField(min_length=5, max_length=500, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Shown to each customer whose data you open, in their access history.")


class StaffAccessAdmin(admin.ModelAdmin):
    """Customer data in the admin: opening a list or an entry first asks the staff member why,
    and each customer whose data is shown gets a "viewed by the holder's staff" event with that
    reason (`audit.record_staff_access`). A reason holds for STAFF_REASON_SECONDS."""

    STAFF_REASON_SECONDS = 15 * 60
    SESSION_KEY = "restitution_staff_reason"
    staff_subject = "records"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("reason/", self.admin_site.admin_view(self.reason_view), name=f"{info[0]}_{info[1]}_reason"),
                *super().get_urls()]

    def _reason(self, request) -> str | None:
        held = request.session.get(self.SESSION_KEY) or {}
        if held.get("until", 0) > timezone.now().timestamp():
            return held.get("reason")
        return None

    def _ask(self, request):
        info = self.opts.app_label, self.opts.model_name
        target = reverse(f"admin:{info[0]}_{info[1]}_reason")
        return HttpResponseRedirect(f"{target}?next={_quote(request.get_full_path())}")

    def reason_view(self, request):
        target = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            target = reverse("admin:index")
        form = StaffReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            request.session[self.SESSION_KEY] = {
                "reason": form.cleaned_data["reason"],
                "until": timezone.now().timestamp() + self.STAFF_REASON_SECONDS}
            return HttpResponseRedirect(target)
        context = {**self.admin_site.each_context(request), "form": form, "next": target, "opts": self.opts,
                   "title": "Why do you open customers' data?"}
        return TemplateResponse(request, "admin/restitution/staff_reason.html", context,
                                status=400 if request.method == "POST" else 200)

    def changelist_view(self, request, extra_context=None):
        reason = self._reason(request)
        if reason is None:
            return self._ask(request)
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if cl is not None:
            self._record(request, reason, list(cl.result_list))
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        reason = self._reason(request)
        if reason is None:
            return self._ask(request)
        obj = self.get_object(request, object_id)
        response = super().change_view(request, object_id, form_url, extra_context)
        if obj is not None and getattr(response, "status_code", 200) == 200:
            self._record(request, reason, [obj])
        return response

    def _record(self, request, reason: str, objects: list) -> None:
        customers: dict[int, set] = {}
        for obj in objects:
            customer_id = getattr(obj, "customer_id", None)
            if customer_id is not None:
                customers.setdefault(customer_id, set()).update(self.datasets_of(obj))
        audit.record_staff_access(staff=request.user, customers=customers, subject=self.staff_subject,
                                  reason=reason, request=request)

    def datasets_of(self, obj) -> set:
        dataset_id = getattr(obj, "dataset_id", None)
        return {dataset_id} if dataset_id else set()


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and data kept by the gateway itself: shown, never added or edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ["slug", "name", "kind", "connection_env", "identity_system", "datasets", "options",
                  "mappings", "max_concurrent_runs", "max_requests_per_second", "enabled"]

    def clean(self):
        cleaned = super().clean()
        mappings = cleaned.get("mappings") or {}
        datasets = cleaned.get("datasets") or []
        problems = []
        if not isinstance(mappings, dict):
            raise forms.ValidationError({"mappings": "must be an object {dataset slug: mapping}"})
        for dataset in datasets:
            if dataset.slug not in mappings:
                problems.append(f"{dataset.slug}: no mapping")
                continue
            try:
                compile_mapping(mappings[dataset.slug], dataset.schema)
            except ValueError as exc:
                problems.append(f"{dataset.slug}: {exc}")
        if problems:
            raise forms.ValidationError({"mappings": problems})
        return cleaned


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ("slug", "name", "kind", "identity_system", "max_concurrent_runs",
                    "max_requests_per_second", "enabled")
    list_filter = ("kind", "enabled")
    filter_horizontal = ("datasets",)
    actions = ["extract_all"]

    @admin.action(description="Extract now, for all customers")
    def extract_all(self, request, queryset):
        for source in queryset:
            run = run_requests.request_extraction(source=source)
            self.message_user(request, f"{source.slug}: run {run.pk} queued", messages.INFO)


class DatasetAdminForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["slug", "title_en", "title_fr", "description_en", "description_fr", "schema", "schema_version",
                  "natural_key", "date_field", "field_help", "is_published", "processing"]

    def clean_processing(self):
        value = self.cleaned_data.get("processing") or {}
        try:
            processing.check(value)
        except processing.InvalidProcessing as exc:
            raise forms.ValidationError(f"Processing facts: {exc}") from None
        return value


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    """Datasets, with their GDPR Art. 15 facts (`processing`, FR/EN) edited here."""

    form = DatasetAdminForm
    list_display = ("slug", "title_en", "schema_version", "scope_name", "is_published")

    @admin.display(description="OAuth scope")
    def scope_name(self, obj: Dataset) -> str:
        return obj.scope

    def save_model(self, request, obj, form, change):
        obj.day_zone = catalogue.day_zone(obj.schema, obj.date_field, obj.day_zone)
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request, obj=None):
        # Schemas of shipped datasets come from the catalogue; editing them here would drift.
        if obj is not None and obj.slug in BY_SLUG:
            return ("slug", "schema", "schema_version", "natural_key", "date_field")
        return ()


class IdentityInline(admin.TabularInline):
    model = LegacyIdentity
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("reference", "display_name", "user", "created_at")
    search_fields = ("reference", "display_name", "identities__value")
    inlines = [IdentityInline]
    actions = ["extract_customer"]

    @admin.action(description="Extract this customer's data now")
    def extract_customer(self, request, queryset):
        for customer in queryset:
            runs = run_requests.request_customer_extraction(customer=customer,
                                                          trigger=ExtractionRun.Trigger.MANUAL)
            self.message_user(request, f"{customer}: {len(runs)} run(s) queued", messages.INFO)


class RunShardInline(admin.TabularInline):
    """A sharded run's breakdown for operators: each shard's customer range, state and counts
    (the run's own counters are their sums)."""

    model = RunShard
    extra = 0
    can_delete = False
    fields = ("number", "key_after", "key_upto", "hash_of", "customers", "status", "progress", "attempts", "read",
              "created", "updated", "unchanged", "deleted", "rejected", "heartbeat_at", "finished_at",
              "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ExtractionRun)
class ExtractionRunAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "customer", "status", "progress_bar", "shard_summary", "read",
                    "created", "updated", "unchanged", "deleted", "rejected", "attempts", "queued_at",
                    "duration")
    list_filter = ("status", "source", "trigger", "sharded")
    readonly_fields = [f.name for f in ExtractionRun._meta.fields]
    actions = ["retry"]
    inlines = [RunShardInline]

    def get_queryset(self, request):
        from django.db.models import Count, Q

        return super().get_queryset(request).annotate(
            shard_total=Count("shards"),
            shards_done=Count("shards", filter=Q(shards__status=ExtractionRun.Status.SUCCEEDED)),
            shards_failed=Count("shards", filter=Q(shards__status=ExtractionRun.Status.FAILED)))

    @admin.display(description="shards")
    def shard_summary(self, run: ExtractionRun):
        if not run.sharded:
            return "—"
        text = f"{run.shards_done}/{run.shard_total} done"
        return f"{text}, {run.shards_failed} failed" if run.shards_failed else text

    @admin.display(description="progress")
    def progress_bar(self, run: ExtractionRun):
        return format_html('<progress max="100" value="{}">{}%</progress>', int(run.progress * 100),
                           int(run.progress * 100))

    @admin.action(description="Retry (queue a new run of the same source and customer)")
    def retry(self, request, queryset):
        for run in queryset:
            new = run_requests.retry_run(run=run)
            self.message_user(request, f"run {new.pk} queued", messages.INFO)

    def has_add_permission(self, request):
        return False


@admin.register(RejectedRow)
class RejectedRowAdmin(StaffAccessAdmin):
    """The quarantine: one row per legacy row that could not be restituted. The operator sets
    its state and a note; the counts per state show beside the filters."""

    list_display = ("id", "source", "dataset", "customer", "locator", "reason", "state", "last_seen_at")
    list_filter = ("state", "source", "dataset")
    show_facets = admin.ShowFacets.ALWAYS
    search_fields = ("reason", "locator", "note")
    readonly_fields = ("run", "source", "dataset", "customer", "locator", "reason", "raw_pretty",
                       "created_at", "last_seen_at")
    fields = ("state", "note", "source", "dataset", "customer", "locator", "reason", "raw_pretty", "run",
              "created_at", "last_seen_at")

    @admin.display(description="raw values")
    def raw_pretty(self, row: RejectedRow):
        return format_html("<pre>{}</pre>", json.dumps(row.raw, indent=2, ensure_ascii=False))

    def has_add_permission(self, request):
        return False


@admin.register(Record)
class RecordAdmin(StaffAccessAdmin, ReadOnlyAdmin):
    list_display = ("id", "dataset", "customer", "key", "seq", "deleted", "extracted_at")
    list_filter = ("dataset", "deleted")
    search_fields = ("key",)
    raw_id_fields = ("customer",)


@admin.register(Document)
class DocumentAdmin(StaffAccessAdmin):
    staff_subject = "documents"

    list_display = ("id", "customer", "dataset", "record_key", "filename", "size", "created_at")
    raw_id_fields = ("customer",)


# --- Consent ---------------------------------------------------------------------------------

from oauth2_provider.admin import AccessTokenAdmin, ApplicationAdmin  # noqa: E402
from oauth2_provider.forms import ApplicationForm  # noqa: E402

from . import clients, consent  # noqa: E402
from .models import AccessEvent, Grant, PimsClient  # noqa: E402


class ProposedChangeFilter(admin.SimpleListFilter):
    """The operator's queue of changes asked by registrants (RFC 7592 updates)."""

    title = "change awaiting approval"
    parameter_name = "change"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(proposed_changes={})
        if self.value() == "no":
            return queryset.filter(proposed_changes={})
        return queryset



def missing_for_approval(client: PimsClient) -> list[str]:
    """What customers would miss on the consent page: an approved client must say which data it
    may ask for, why (its purpose) and where its privacy policy is."""
    missing = []
    if not client.allowed_datasets.exists():
        missing.append("datasets it may ask for")
    if not client.purpose_en.strip():
        missing.append("purpose (English)")
    if not client.privacy_policy_url:
        missing.append("privacy policy URL")
    return missing


class PimsClientForm(ApplicationForm):
    """Only what the gateway supports: the authorization code grant (with refresh), always with
    the customer's consent, so no other grant type and no "skip authorization"."""

    class Meta:
        model = PimsClient
        exclude = ("skip_authorization", "proposed_changes")
        # A few datasets: plain labelled checkboxes read better (and more accessibly) than the
        # two-list selector.
        widgets = {"allowed_datasets": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        grant = self.fields.get("authorization_grant_type")
        if grant is not None:
            grant.choices = [(PimsClient.GRANT_AUTHORIZATION_CODE, "Authorization code (with PKCE and refresh)")]
            grant.initial = PimsClient.GRANT_AUTHORIZATION_CODE
            grant.help_text = "The only grant the gateway supports."


class PimsClientAdmin(ApplicationAdmin):
    """PIMS clients (registered here or by RFC 7591): approve them before they can connect,
    review the changes their registrants ask for, deprovision them (never delete them)."""

    list_display = ("name", "client_id", "approval", "change_awaiting_approval", "client_type",
                    "registered_dynamically", "created")
    list_filter = ("approval", ProposedChangeFilter, "client_type", "registered_dynamically")
    form = PimsClientForm
    view_on_site = False  # DOT's own client pages are not mounted: customers manage grants on their dashboard
    readonly_fields = (*ApplicationAdmin.readonly_fields, "proposed_change_review", "proposed_at",
                       "deprovisioned_at")
    exclude = ("proposed_changes", "skip_authorization")
    actions = ["approve", "reject", "suspend", "apply_proposed_changes", "discard_proposed_changes",
               "deprovision"]

    @admin.display(description="change awaiting approval", boolean=True)
    def change_awaiting_approval(self, obj) -> bool:
        return bool(obj.proposed_changes)

    @admin.display(description="change asked by its registrant (not in force)")
    def proposed_change_review(self, obj) -> str:
        rows = clients.review_rows(obj) if obj is not None else []
        if not rows:
            return "—"
        return format_html("<table><tr><th>field</th><th>in force</th><th>proposed</th></tr>{}</table>",
                           format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows))

    def _live(self, queryset):
        return queryset.exclude(approval=PimsClient.Approval.DEPROVISIONED)

    @admin.action(description="Approve: may ask customers for their data")
    def approve(self, request, queryset):
        approved = 0
        for client in self._live(queryset).prefetch_related("allowed_datasets"):
            missing = missing_for_approval(client)
            if missing:
                self.message_user(request, f"{client.name} ({client.client_id}) not approved: it has no "
                                           f"{', no '.join(missing)}. Complete it, then approve it.",
                                  messages.ERROR)
                continue
            if client.approval != PimsClient.Approval.APPROVED:
                client.approval = PimsClient.Approval.APPROVED
                client.save(update_fields=["approval"])
            approved += 1
        if approved:
            self.message_user(request, f"{approved} client(s) approved: they may now ask customers for their data.",
                              messages.SUCCESS)

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        done = self._live(queryset).update(approval="rejected")
        self.message_user(request, f"{done} client(s) rejected", messages.SUCCESS)

    @admin.action(description="Suspend: its tokens stop working at once")
    def suspend(self, request, queryset):
        done = self._live(queryset).update(approval="suspended")
        self.message_user(request, f"{done} client(s) suspended: their tokens no longer work", messages.SUCCESS)

    @admin.action(description="Apply the changes its registrant asked for (shown to customers from now on)")
    def apply_proposed_changes(self, request, queryset):
        applied = sum(clients.apply_proposed_changes(client=client) for client in queryset)
        self.message_user(request, f"{applied} change(s) applied", messages.INFO)

    @admin.action(description="Discard the changes its registrant asked for")
    def discard_proposed_changes(self, request, queryset):
        discarded = sum(clients.discard_proposed_changes(client=client) for client in queryset)
        self.message_user(request, f"{discarded} change(s) discarded", messages.INFO)

    @admin.action(description="Deprovision: end its grants and tokens, wipe its credentials, keep its history")
    def deprovision(self, request, queryset):
        done = sum(clients.deprovision_client(client=client, reason=clients.DELETED_REASON, request=request,
                                              staff=request.user) for client in queryset)
        self.message_user(request, f"{done} client(s) deprovisioned", messages.INFO)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting the row would take customers' consent records with it: deprovision instead.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.approval == PimsClient.Approval.DEPROVISIONED:
            return False  # kept as history only
        return super().has_change_permission(request, obj)


@admin.register(Grant)
class GrantAdmin(StaffAccessAdmin):
    staff_subject = "consents"

    list_display = ("receipt_id", "customer", "client", "duration", "created_at", "expires_at", "revoked_at")
    list_filter = ("duration", "client")
    search_fields = ("customer__reference", "receipt_id")
    readonly_fields = [f.name for f in Grant._meta.fields] + ["datasets"]
    actions = ["revoke"]

    @admin.action(description="Revoke (the customer is told in their access history)")
    def revoke(self, request, queryset):
        for grant in queryset:
            consent.revoke_grant(grant=grant, reason="revoked by the data holder", request=request,
                                 staff=request.user)

    def has_add_permission(self, request):
        return False


@admin.register(AccessEvent)
class AccessEventAdmin(StaffAccessAdmin, ReadOnlyAdmin):
    staff_subject = "history"

    list_display = ("created_at", "kind", "customer", "client", "dataset", "record_count", "staff")
    list_filter = ("kind", "client")
    search_fields = ("customer__reference", "request_id")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    """The admin index entry of the operator metrics: its list opens the metrics page."""

    def changelist_view(self, request, extra_context=None):
        from django.shortcuts import redirect

        return redirect("operator-metrics-page")
# --- Exports ---------------------------------------------------------------------------------

from .models import ExportJob  # noqa: E402 - kept with its admin for easy merging


@admin.register(ExportJob)
class ExportJobAdmin(StaffAccessAdmin, ReadOnlyAdmin):
    """Archives as history: read-only (the manifest says what left; the file itself is never shown)."""

    staff_subject = "archives"

    list_display = ("requested_at", "customer", "grant", "status", "progress", "records_total", "size",
                    "expires_at")
    list_filter = ("status", "for_customer")
    search_fields = ("customer__reference", "public_id")
    exclude = ("file_name",)


# --- OAuth tokens ----------------------------------------------------------------------------


class ExpiringFilter(admin.SimpleListFilter):
    """Registration access tokens (RFC 7592) about to expire: the operator console links here."""

    title = "expiry"
    parameter_name = "expiring"

    def lookups(self, request, model_admin):
        from .console import EXPIRING_SOON_DAYS

        return [("soon", f"Registration keys expiring within {EXPIRING_SOON_DAYS} days"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        from django.utils import timezone
        from oauth2_provider.settings import oauth2_settings

        from .console import EXPIRING_SOON_DAYS

        now = timezone.now()
        if self.value() == "soon":
            return queryset.filter(scope=oauth2_settings.DCR_REGISTRATION_SCOPE, expires__gt=now,
                                   expires__lte=now + timedelta(days=EXPIRING_SOON_DAYS))
        if self.value() == "expired":
            return queryset.filter(expires__lte=now)
        return queryset


def safe_moment(value) -> str:
    """A moment in the server's time zone; one too far away to convert (9999-12-31 UTC is past
    year 9999 in Europe/Paris, what a registration token that never expires carries) reads "never"."""
    from django.utils import formats, timezone

    if value is None:
        return "—"
    try:
        return formats.localize(timezone.localtime(value))
    except (OverflowError, ValueError):
        return "never"


class GatewayAccessTokenAdmin(AccessTokenAdmin):
    """DOT's token admin, with expiries that never fail to display."""

    list_display = ("pk", "masked_token", "user", "application", "scope", "expiry")
    list_filter = (ExpiringFilter, "application")

    @admin.display(description="expires", ordering="expires")
    def expiry(self, obj) -> str:
        return safe_moment(obj.expires)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "expiry")

    def get_exclude(self, request, obj=None):
        return (*super().get_exclude(request, obj), "expires")
