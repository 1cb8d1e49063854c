"""GDPR Art. 15 facts per dataset: kept in the catalogue, edited by the operator in the admin
(FR/EN, a wrong shape refused with a message), given by GET /api/v1/datasets as `processing`
and shown on the dataset page in the customer's language."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from restitution import consent, processing
from restitution.models import Dataset, ExtractionRun, Source
from tests.api.test_isolation_property import issue_token
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db
FACTS = {
    "purposes": {"en": "Billing your electricity", "fr": "Facturer votre électricité"},
    "legal_basis": {"en": "Contract (Art. 6(1)(b))", "fr": "Contrat (art. 6(1)(b))"},
    "recipients": [{"en": "Our billing team", "fr": "Notre service facturation"}],
    "retention": {"en": "5 years after the contract ends", "fr": "5 ans après la fin du contrat"},
    "automated_decisions": False,
}


def datasets_api(personas) -> dict[str, dict]:
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS])), duration="1m")
    reset_rate_limits()
    body = Client().get("/api/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {issue_token(grant)}").json()
    return {item["slug"]: item for item in body["items"]}


@pytest.fixture
def operator():
    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("operator", password="operator-pass-1234"))  # noqa: S106
    return browser


def admin_form(dataset: Dataset, processing_value: str) -> dict:
    return {"slug": dataset.slug, "title_en": dataset.title_en, "title_fr": dataset.title_fr,
            "description_en": dataset.description_en, "description_fr": dataset.description_fr,
            "field_help": json.dumps(dataset.field_help), "is_published": "on", "processing": processing_value}


def test_the_api_gives_each_dataset_its_processing_facts_with_sources_and_last_extraction(personas):
    source = Source.objects.create(slug="metering", name="Metering system", kind="csv", connection_env="NOPE",
                                   identity_system="energy")
    source.datasets.add(Dataset.objects.get(slug=CURVE))
    finished = timezone.now()
    ExtractionRun.objects.create(source=source, status="succeeded", finished_at=finished)
    items = datasets_api(personas)
    facts = items[CURVE]["processing"]
    assert facts["sources"] == ["Metering system"] and facts["automated_decisions"] is False
    assert facts["purposes"] == processing.DEFAULTS["purposes"] and set(facts["legal_basis"]) == {"en", "fr"}
    assert facts["last_extraction"].startswith(finished.strftime("%Y-%m-%dT%H:%M"))
    assert items[CONTRACTS]["processing"]["sources"] == [] and items[CONTRACTS]["processing"]["last_extraction"] is None


def test_the_operator_edits_the_facts_in_both_languages_and_a_wrong_shape_is_refused(personas, operator):
    curve = Dataset.objects.get(slug=CURVE)
    url = f"/admin/restitution/dataset/{curve.pk}/change/"
    bad = {**FACTS, "purposes": {"en": "only English"}}
    response = operator.post(url, admin_form(curve, json.dumps(bad)))
    assert response.status_code == 200 and "purposes must be" in response.content.decode()
    curve.refresh_from_db()
    assert curve.processing == {}
    response = operator.post(url, admin_form(curve, json.dumps(FACTS)))
    assert response.status_code == 302, response.content.decode()[:2000]
    facts = datasets_api(personas)[CURVE]["processing"]
    assert {k: facts[k] for k in FACTS} == FACTS

    browser = Client()
    browser.force_login(personas.alice.user)
    english = browser.get(f"/account/data/{CURVE}/").content.decode()
    assert "How we process this data" in english and "Billing your electricity" in english
    assert "5 years after the contract ends" in english and "Our billing team" in english
    french = browser.get(f"/account/data/{CURVE}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Comment nous traitons ces données" in french and "Facturer votre électricité" in french


@pytest.mark.parametrize("bad", [[], {"nope": 1}, {"automated_decisions": "no"}, {"recipients": ["x"]}])
def test_processing_shapes_that_are_refused(bad):
    with pytest.raises(processing.InvalidProcessing):
        processing.check(bad)
