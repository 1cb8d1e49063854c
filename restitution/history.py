"""The customer's access history in plain sentences: one sentence per event, grouped by local
day, paged, filterable by who and by dataset, with no cap (the page shows PAGE_SIZE at a time).

Reads AccessEvent only; audit.py writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .catalogue import counted
from .models import AccessEvent, Customer, Dataset

PAGE_SIZE = 50

#: Staff access subjects, as a sentence names them.
SUBJECTS = {"records": lambda: _("records"), "documents": lambda: _("documents"),
            "consents": lambda: _("consents"), "history": lambda: _("access history"),
            "archives": lambda: _("archives")}


@dataclass
class Day:
    day: date
    entries: list[dict] = field(default_factory=list)


def events(customer: Customer, *, who: str = "", dataset: str = "") -> QuerySet[AccessEvent]:
    """The customer's events, newest first; `who` is "you", "staff", or "client-<id>"."""
    qs = (AccessEvent.objects.filter(customer=customer)
          .select_related("client", "dataset", "grant", "staff").order_by("-created_at", "-id"))
    if who == "you":
        qs = qs.filter(client__isnull=True, staff__isnull=True).exclude(
            kind__in=[AccessEvent.Kind.STAFF_ACCESS, AccessEvent.Kind.HISTORY_PURGED, AccessEvent.Kind.DELIVERY])
    elif who == "staff":
        qs = qs.filter(kind=AccessEvent.Kind.STAFF_ACCESS)
    elif who.startswith("client-") and who[7:].isdigit():
        qs = qs.filter(client_id=int(who[7:]))
    if dataset:
        qs = qs.filter(dataset__slug=dataset)
    return qs


def who_choices(customer: Customer) -> list[tuple[str, str]]:
    """The filter's options: you, the holder's staff, each client that appears in the history."""
    clients = (AccessEvent.objects.filter(customer=customer, client__isnull=False)
               .values_list("client_id", "client__name").distinct().order_by("client__name"))
    return ([("you", _("You")), ("staff", _("Staff of %(holder)s") % {"holder": settings.GATEWAY_HOLDER_NAME})]
            + [(f"client-{pk}", name) for pk, name in clients])


def page(customer: Customer, *, number: str | int | None, who: str = "", dataset: str = "",
         language: str = "en", size: int = PAGE_SIZE) -> tuple[Page, list[Day]]:
    """One page of sentences, grouped by local day (the gateway's time zone)."""
    current = Paginator(events(customer, who=who, dataset=dataset), size).get_page(number)
    days: list[Day] = []
    for event in current.object_list:
        local = timezone.localtime(event.created_at)
        if not days or days[-1].day != local.date():
            days.append(Day(local.date()))
        days[-1].entries.append({"at": local, "text": sentence(event, language), "kind": event.kind,
                                 "event": event})
    return current, days


def _title(dataset: Dataset | None, language: str) -> str:
    if dataset is None:
        return _("data")
    return dataset.title_fr if language.startswith("fr") else dataset.title_en


def sentence(event: AccessEvent, language: str = "en") -> str:
    """One event as a sentence the customer can read."""
    kind = AccessEvent.Kind
    who = event.client.name if event.client else ""
    what = _title(event.dataset, language)
    count = event.record_count
    detail = event.detail or {}
    in_words = counted(event.dataset.slug, count, language) if event.dataset and count is not None else None
    if event.kind == kind.DATA_READ:
        if count is None:
            return _("%(who)s read your %(what)s") % {"who": who, "what": what}
        if in_words:
            return _("%(who)s read %(count)s") % {"who": who, "count": in_words}
        return ngettext("%(who)s read %(n)d record of your %(what)s", "%(who)s read %(n)d records of your %(what)s",
                        count) % {"who": who, "n": count, "what": what}
    if event.kind == kind.EXPORT:
        return _("%(who)s asked for an archive of your data") % {"who": who}
    if event.kind == kind.EXPORT_DOWNLOADED:
        if who:
            return _("%(who)s downloaded an archive of your data") % {"who": who}
        return _("You downloaded your archive")
    if event.kind == kind.GRANT_CREATED:
        if who:
            return _("You allowed %(who)s to read your data") % {"who": who}
        return _("You connected %(who)s") % {"who": detail.get("destination", _("a cloud of yours"))}
    if event.kind == kind.GRANT_REVOKED:
        target = who or detail.get("destination", _("a cloud of yours"))
        reason = str(detail.get("reason", ""))
        if "replaced" in reason:
            return _("Your consent to %(who)s was replaced by a new one") % {"who": target}
        if event.staff_id:
            return _("Staff of %(holder)s ended the access of %(who)s") % {
                "holder": settings.GATEWAY_HOLDER_NAME, "who": target}
        if "customer" in reason or not reason:
            return _("You revoked the access of %(who)s") % {"who": target}
        return _("The access of %(who)s ended") % {"who": target}
    if event.kind == kind.GRANT_EXPIRED:
        return _("The access of %(who)s expired") % {"who": who or detail.get("destination", "")}
    if event.kind == kind.TOKEN_ISSUED:
        return _("%(who)s connected to your data") % {"who": who}
    if event.kind == kind.TOKEN_REFRESHED:
        return _("%(who)s renewed its connection") % {"who": who}
    if event.kind == kind.TOKEN_REVOKED:
        return _("The connection of %(who)s was closed") % {"who": who}
    if event.kind == kind.DELIVERY:
        target = detail.get("destination") or _("your cloud")
        if count is None:
            return _("Your %(what)s was delivered to %(where)s") % {"what": what, "where": target}
        if in_words:
            return _("%(where)s received %(count)s") % {"where": target, "count": in_words}
        return ngettext("%(n)d record of your %(what)s was delivered to %(where)s",
                        "%(n)d records of your %(what)s were delivered to %(where)s", count) % {
            "n": count, "what": what, "where": target}
    if event.kind == kind.STAFF_ACCESS:
        subject = SUBJECTS.get(detail.get("subject", ""), lambda: _("data"))()
        if event.dataset is not None:
            subject = f"{subject} ({what})"
        return _("Staff of %(holder)s viewed your %(subject)s — reason: %(reason)s") % {
            "holder": settings.GATEWAY_HOLDER_NAME, "subject": subject, "reason": detail.get("reason", "")}
    if event.kind == kind.HISTORY_PURGED:
        return ngettext("%(n)d event older than the retention period was removed from this history",
                        "%(n)d events older than the retention period were removed from this history",
                        count or 0) % {"n": count or 0}
    return event.get_kind_display()
