"""`manage.py publish_catalogue`: schemas follow the code, what operators edited stays."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from restitution.catalogue import BY_SLUG, sync_catalogue
from restitution.models import Dataset

CONTRACTS = "insurance-contracts"


def publish() -> str:
    out = io.StringIO()
    call_command("publish_catalogue", stdout=out)
    return out.getvalue()


def operator_edits(dataset: Dataset, **changes) -> None:
    """An operator changes a dataset in the admin, as they would in the browser."""
    operator = get_user_model().objects.create_superuser("operator", password="operator-password")  # noqa: S106
    browser = Client()
    browser.force_login(operator)
    form = {"title_en": dataset.title_en, "title_fr": dataset.title_fr,
            "description_en": dataset.description_en, "description_fr": dataset.description_fr,
            "field_help": json.dumps(dataset.field_help), "is_published": "on" if dataset.is_published else ""}
    form.update(changes)
    form = {name: value for name, value in form.items() if value != ""}
    response = browser.post(f"/admin/restitution/dataset/{dataset.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.django_db
def test_an_operator_edited_title_survives_a_republish():
    publish()
    contracts = Dataset.objects.get(slug=CONTRACTS)
    operator_edits(contracts, title_fr="Vos contrats chez nous",
                   description_en="Your contracts, as our agents know them.",
                   field_help=json.dumps({**contracts.field_help,
                                          "product": {"en": "Product name.", "fr": "Le produit."}}),
                   is_published="")

    said = publish()

    contracts.refresh_from_db()
    assert contracts.title_fr == "Vos contrats chez nous"
    assert contracts.description_en == "Your contracts, as our agents know them."
    assert contracts.field_help["product"] == {"en": "Product name.", "fr": "Le produit."}
    assert contracts.is_published is False
    assert contracts.title_en == BY_SLUG[CONTRACTS].title_en  # what nobody edited is still the shipped text
    assert f"{CONTRACTS}.title_fr" in said and f"{CONTRACTS}.description_en" in said


@pytest.mark.django_db
def test_a_new_schema_version_is_applied_and_edited_texts_are_kept():
    publish()
    contracts = Dataset.objects.get(slug=CONTRACTS)
    operator_edits(contracts, title_en="Your policies")
    shipped = BY_SLUG[CONTRACTS]
    newer = dataclasses.replace(
        shipped, schema_version="1.1.0", natural_key=["contract_id", "product_code"],
        properties={**shipped.properties, "broker": {"type": ["string", "null"]}},
        required=[*shipped.required, "broker"],
        field_help={**shipped.field_help, "broker": {"en": "Who sold it.", "fr": "Qui l'a vendu."}})

    result = sync_catalogue(definitions=[newer])

    contracts.refresh_from_db()
    assert contracts.schema_version == "1.1.0"
    assert contracts.schema == newer.schema and "broker" in contracts.schema["properties"]
    assert contracts.natural_key == ["contract_id", "product_code"]
    assert contracts.field_help["broker"] == {"en": "Who sold it.", "fr": "Qui l'a vendu."}
    assert contracts.title_en == "Your policies"
    assert result.updated == [CONTRACTS] and result.kept == [f"{CONTRACTS}.title_en"]


@pytest.mark.django_db
def test_a_text_nobody_edited_takes_the_newly_shipped_text():
    publish()
    shipped = BY_SLUG[CONTRACTS]
    renamed = dataclasses.replace(shipped, title_en="Insurance policies",
                                  former_texts={"title_en": (shipped.title_en,)})

    sync_catalogue(definitions=[renamed])

    assert Dataset.objects.get(slug=CONTRACTS).title_en == "Insurance policies"


@pytest.mark.django_db
def test_a_dataset_the_operator_created_is_left_alone():
    publish()
    own = Dataset.objects.create(slug="loyalty-points", title_en="Loyalty points", title_fr="Points fidélité",
                                 description_en="-", description_fr="-", schema={"type": "object"},
                                 natural_key=["id"], date_field="on")

    said = publish()

    own.refresh_from_db()
    assert own.title_en == "Loyalty points" and own.schema == {"type": "object"}
    assert "0 created, 0 updated" in said
