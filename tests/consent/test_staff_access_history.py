"""Holder staff access is an access event: opening a customer's records, documents, consents or
history in the admin first asks why, and the customer's history says who looked, at what and why.
The history reads as sentences, grouped by day, paged and filterable, with no cap."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from restitution import audit, consent
from restitution.models import AccessEvent, Dataset, Record

pytestmark = pytest.mark.django_db
REASON = "Customer called about claim SIN-2025-001"


@pytest.fixture
def operator():
    user = get_user_model().objects.create_superuser("operator", password="operator-pass-1234")  # noqa: S106
    browser = Client()
    browser.force_login(user)
    return browser


def claim(customer, key="SIN-2025-001") -> Record:
    dataset = Dataset.objects.get(slug="insurance-claims")
    return Record.objects.create(customer=customer, dataset=dataset, key=key, data={"claim_id": key},
                                 content_hash="h", extracted_at=timezone.now(), seq=Record.objects.count() + 1)


def give_reason(operator, next_url: str) -> None:
    response = operator.post("/admin/restitution/record/reason/", {"reason": REASON, "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url


def test_opening_a_customers_claim_asks_for_a_reason_first(personas, operator):
    record = claim(personas.alice)
    url = f"/admin/restitution/record/{record.pk}/change/"
    response = operator.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/restitution/record/reason/")
    assert not AccessEvent.objects.filter(kind="staff-access").exists()  # nothing shown, nothing logged
    # A reason too short, or none, is refused.
    assert operator.post("/admin/restitution/record/reason/", {"reason": "x", "next": url}).status_code == 400
    assert operator.get(url).status_code == 302


def test_an_operators_view_of_alices_claim_appears_in_her_history_within_a_second(personas, operator):
    record = claim(personas.alice)
    claim(personas.bob, key="SIN-2025-002")
    url = f"/admin/restitution/record/{record.pk}/change/"
    give_reason(operator, url)
    asked = timezone.now()
    assert operator.get(url).status_code == 200
    # Written with the page, not later: it is there as soon as the page is.
    event = AccessEvent.objects.get(customer=personas.alice, kind="staff-access")
    assert (event.created_at - asked).total_seconds() < 1.0
    alice = Client()
    alice.force_login(personas.alice.user)
    html = alice.get("/account/").content.decode()
    assert f"Staff of Demo data holder viewed your records (Insurance claims) — reason: {REASON}" in html
    assert event.staff.username == "operator" and event.detail["reason"] == REASON
    # bob's claim was not opened: nothing in his history.
    assert not AccessEvent.objects.filter(customer=personas.bob, kind="staff-access").exists()
    # The event is chained like any other.
    assert audit.verify_chains(personas.alice.pk) == []


def test_a_list_of_records_tells_each_customer_shown(personas, operator):
    claim(personas.alice)
    claim(personas.bob, key="SIN-2025-002")
    url = f"/admin/restitution/record/?customer__id__exact={personas.bob.pk}"
    give_reason(operator, url)
    assert operator.get(url).status_code == 200
    assert AccessEvent.objects.filter(kind="staff-access", customer=personas.bob).count() == 1
    assert not AccessEvent.objects.filter(kind="staff-access", customer=personas.alice).exists()


def test_a_reason_to_an_outside_address_is_not_followed(personas, operator):
    response = operator.post("/admin/restitution/record/reason/", {"reason": REASON, "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_opening_consents_and_history_in_the_admin_is_logged_too(personas, operator):
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=list(personas.trusted.allowed_datasets.all()), duration="1m")
    url = f"/admin/restitution/grant/{grant.pk}/change/"
    assert operator.get(url).status_code == 302
    operator.post("/admin/restitution/grant/reason/", {"reason": REASON, "next": url})
    assert operator.get(url).status_code == 200
    assert operator.get("/admin/restitution/accessevent/").status_code == 200
    subjects = set(AccessEvent.objects.filter(customer=personas.alice, kind="staff-access")
                   .values_list("detail__subject", flat=True))
    assert subjects == {"consents", "history"}


def test_the_history_is_paged_without_cap_and_filterable(personas):
    trusted = personas.trusted
    curve = Dataset.objects.get(slug="energy-load-curve")
    contracts = Dataset.objects.get(slug="insurance-contracts")
    for n in range(130):
        audit.record_event(kind=AccessEvent.Kind.DATA_READ, customer=personas.alice, client=trusted,
                           dataset=curve if n % 2 else contracts, record_count=n)
    audit.record_event(kind=AccessEvent.Kind.EXPORT_DOWNLOADED, customer=personas.alice)
    browser = Client()
    browser.force_login(personas.alice.user)
    first = browser.get("/account/history/").content.decode()
    assert "You downloaded your archive" in first and "Page 1 of 3" in first
    last = browser.get("/account/history/?page=3").content.decode()
    assert "Trusted cloud read 0 of your insurance contracts" in last  # the oldest, beyond 200 cap
    only_curve = browser.get("/account/history/?dataset=energy-load-curve").content.decode()
    assert "Page 1 of 2" in only_curve and "Insurance contracts" not in only_curve.split("</form>")[1]
    assert "Trusted cloud read 129 days of your electricity load curve" in only_curve
    mine = browser.get("/account/history/?who=you").content.decode()
    assert "You downloaded your archive" in mine and "Trusted cloud read" not in mine
    # bob sees none of it; an unknown filter is a 400, not an error.
    bob = Client()
    bob.force_login(personas.bob.user)
    assert "Trusted cloud read" not in bob.get("/account/history/").content.decode()
    assert bob.get(f"/account/history/?who=client-{trusted.pk}").status_code == 400
    assert bob.get("/account/history/?dataset=nope").status_code == 400


def test_the_history_speaks_french(personas):
    audit.record_event(kind=AccessEvent.Kind.EXPORT_DOWNLOADED, customer=personas.alice)
    browser = Client()
    browser.force_login(personas.alice.user)
    html = browser.get("/account/history/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vous avez téléchargé votre archive" in html
