"""The consent receipt (JSON and its page) carries each dataset's processing facts as they were
when the customer agreed: a later edit of the catalogue does not rewrite what they were told."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from restitution import processing
from restitution.models import Dataset, Grant
from tests.api.test_processing_facts import FACTS
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db
LATER = {**FACTS, "purposes": {"en": "Selling your profile", "fr": "Vendre votre profil"},
         "automated_decisions": True}


@pytest.fixture
def grant(flow, personas) -> Grant:
    Dataset.objects.filter(slug=CURVE).update(processing=FACTS)
    flow.tokens()
    # The operator edits the facts after the consent.
    Dataset.objects.filter(slug=CURVE).update(processing=LATER)
    return Grant.objects.get(customer=personas.alice)


def test_the_json_receipt_keeps_the_facts_given_at_consent(flow, grant):
    receipt = json.loads(flow.browser.get(f"/account/grants/{grant.receipt_id}/receipt.json").content)
    assert receipt["receipt_version"] == "1.1"
    kept = {c["dataset"]: c["processing"] for c in receipt["data_categories"]}
    assert set(kept) == {CURVE, CONTRACTS}
    assert {k: kept[CURVE][k] for k in FACTS} == FACTS
    assert kept[CURVE]["purposes"] != processing.facts(Dataset.objects.get(slug=CURVE))["purposes"]
    assert kept[CONTRACTS]["purposes"] == processing.DEFAULTS["purposes"]
    assert "sources" in kept[CURVE] and "last_extraction" in kept[CURVE]


@pytest.mark.parametrize(("language", "purpose", "basis", "not_now"), [
    ("en", "Billing your electricity", "Contract (Art. 6(1)(b))", "Selling your profile"),
    ("fr", "Facturer votre électricité", "Contrat (art. 6(1)(b))", "Vendre votre profil"),
])
def test_the_receipt_page_shows_them_in_the_customers_language(flow, grant, language, purpose, basis, not_now):
    flow.browser.cookies["django_language"] = language
    page = flow.browser.get(f"/account/grants/{grant.receipt_id}/receipt/", HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="receipt-processing-{CURVE}"' in html and f'id="receipt-processing-{CONTRACTS}"' in html
    assert purpose in html and basis in html
    assert not_now not in html  # the later edit is not what the customer agreed to


def test_a_receipt_from_before_the_facts_were_kept_shows_none(flow, grant):
    grant.receipt = {k: v for k, v in grant.receipt.items() if k != "data_categories"}
    grant.save(update_fields=["receipt"])
    html = flow.browser.get(f"/account/grants/{grant.receipt_id}/receipt/").content.decode()
    assert "receipt-processing-" not in html and "Selling your profile" not in html


def test_another_customer_never_sees_the_receipt(grant, personas):
    bob = Client()
    bob.force_login(personas.bob.user, backend="django.contrib.auth.backends.ModelBackend")
    assert bob.get(f"/account/grants/{grant.receipt_id}/receipt/").status_code == 404
    assert bob.get(f"/account/grants/{grant.receipt_id}/receipt.json").status_code == 404
