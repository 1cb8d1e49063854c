"""Withheld records: the quarantine keys each rejected legacy row by a stable locator (a re-run
refreshes it, never duplicates it), the operator gives it a state and a note, and each customer
is told how many of their records could not be returned — bob three, on three datasets; alice none."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from demo.install import install_demo
from restitution import extraction, quarantine
from restitution.models import Customer, Dataset, PimsClient, RejectedRow, Source
from tests.api.test_demo_api import grant_everything
from tests.conftest import load_malformed, reset_rate_limits
from tests.extraction.test_demo_extraction import extract_all

pytestmark = pytest.mark.django_db
#: bob's bad legacy rows in the full demo: a reading dated 30 February, a claim without a claim
#: number, a call without an id. (With the tests' four customers he also gets the rows the demo
#: could not give to another customer: the expected counts come from the generator's truth.)
BOB_FIRST = {"energy-load-curve", "insurance-claims", "telco-call-log"}


@pytest.fixture
def installed(demo_dir, demo_env, flush_gate):
    return install_demo(demo_dir)


def people() -> tuple[Customer, Customer]:
    return Customer.objects.get(user__username="alice"), Customer.objects.get(user__username="bob")


def withheld_truth(demo_dir, customer: Customer) -> dict[str, int]:
    return dict(Counter(item["dataset"] for item in load_malformed(demo_dir)
                        if item["customer"] == customer.reference))


def test_re_running_extractions_never_duplicates_a_rejected_row(demo_dir, installed):
    expected = load_malformed(demo_dir)
    first = extract_all()
    rows = {r.fingerprint: (r.locator, r.created_at) for r in RejectedRow.objects.all()}
    assert len(rows) == len(expected) == sum(run.rejected for run in first)
    # Batch runs again, then per-customer runs (other result positions, same legacy rows).
    second = extract_all()
    for customer in Customer.objects.filter(identities__isnull=False).distinct():
        extract_all(customer)
    assert sum(run.rejected for run in second) == len(expected)  # still rejected, still counted per run
    again = RejectedRow.objects.all()
    assert {r.fingerprint: (r.locator, r.created_at) for r in again} == rows
    assert all(r.last_seen_at > r.created_at for r in again)
    # The SQL row is located by table and primary key, not by its place in a result.
    claims = RejectedRow.objects.filter(dataset__slug="insurance-claims", customer__user__username="bob")
    assert claims and all(c.locator.startswith("T_SINISTRE ID_SINISTRE=") for c in claims)


def test_bob_is_told_of_his_withheld_records_and_alice_of_none(demo_dir, installed):
    extract_all()
    alice, bob = people()
    expected = withheld_truth(demo_dir, bob)
    assert BOB_FIRST <= set(expected)
    assert quarantine.withheld(bob) == expected
    assert quarantine.withheld(alice) == {}

    browser = Client()
    browser.force_login(bob.user)
    page = browser.get("/", follow=True).content.decode()
    assert page.count("data-withheld=") == len(expected)
    assert "could not be given back to you" in page
    for slug, count in expected.items():
        dataset_page = browser.get(f"/account/data/{slug}/").content.decode()
        assert f'data-withheld="{count}"' in dataset_page, slug
        # The customer gets the count and why, never the raw legacy values.
        for row in RejectedRow.objects.filter(dataset__slug=slug, customer=bob):
            assert row.locator not in dataset_page and row.reason not in dataset_page
    assert 'data-withheld' not in browser.get("/account/data/insurance-contracts/").content.decode()

    browser = Client()
    browser.force_login(alice.user)
    page = browser.get("/", follow=True).content.decode()
    assert "data-withheld" not in page and "could not be given back" not in page


def test_the_api_gives_each_dataset_its_withheld_count_for_the_tokens_customer_only(demo_dir, installed):
    extract_all()
    alice, bob = people()
    client = PimsClient.objects.create(
        name="Mirror", client_id="mirror", client_type=PimsClient.CLIENT_PUBLIC,
        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris="https://mirror.example/cb",
        algorithm="", approval=PimsClient.Approval.APPROVED)
    api = Client()
    for customer, expected in ((bob, withheld_truth(demo_dir, bob)), (alice, {})):
        reset_rate_limits()
        token = grant_everything(customer, client)
        items = api.get("/api/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {token}").json()["items"]
        got = {item["slug"]: item["withheld"]["count"] for item in items}
        assert got == {d.slug: expected.get(d.slug, 0) for d in Dataset.objects.all()}
        assert all(item["withheld"]["last_checked"] for item in items)


def test_the_operator_state_shows_in_the_counts_and_a_fixed_row_rejected_again_is_open(demo_dir, installed):
    extract_all()
    _, bob = people()
    expected = withheld_truth(demo_dir, bob)
    claim = RejectedRow.objects.filter(dataset__slug="insurance-claims", customer=bob).first()
    call = RejectedRow.objects.filter(dataset__slug="telco-call-log", customer=bob).first()
    admin = get_user_model().objects.create_superuser("operator", password="operator-pass-1234")  # noqa: S106
    staff = Client()
    staff.force_login(admin)
    change = f"/admin/restitution/rejectedrow/{claim.pk}/change/"
    # Rejected rows hold customers' data: without a reason the admin asks for one and changes nothing.
    asked = staff.post(change, {"state": "fixed", "note": "no reason given"})
    assert asked.status_code == 302 and "/rejectedrow/reason/" in asked["Location"]
    claim.refresh_from_db()
    assert claim.state == "open"
    staff.post("/admin/restitution/rejectedrow/reason/", {"reason": "Sorting out the quarantine", "next": change})
    response = staff.post(change, {"state": "fixed", "note": "claim number restored in the claims system"})
    assert response.status_code == 302, response.content[:500]
    staff.post(f"/admin/restitution/rejectedrow/{call.pk}/change/", {"state": "accepted", "note": "test call"})
    claim.refresh_from_db()
    assert (claim.state, claim.note) == ("fixed", "claim number restored in the claims system")
    lowered = {**expected, "insurance-claims": expected["insurance-claims"] - 1}
    assert quarantine.withheld(bob) == {slug: n for slug, n in lowered.items() if n}
    listing = staff.get("/admin/restitution/rejectedrow/").content.decode()
    assert "Fixed at source" in listing and "Accepted as not restitutable" in listing
    assert "(1)" in listing  # the counts beside the state filter

    # The legacy row was not actually fixed: the next run rejects it again and reopens it.
    for source in Source.objects.order_by("slug"):
        extraction.run_synchronously(run=extraction.request_extraction(source=source, customer=bob))
    claim.refresh_from_db()
    call.refresh_from_db()
    assert claim.state == "open" and claim.note  # the note stays for the next look
    assert call.state == "accepted"
    assert quarantine.withheld(bob) == expected
