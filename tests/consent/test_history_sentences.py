"""History sentences count what was read in the dataset's own words, in the customer's language."""

from __future__ import annotations

import pytest
from django.utils import translation

from restitution.history import sentence
from restitution.models import AccessEvent, Dataset, PimsClient


@pytest.fixture(autouse=True)
def english():
    """Sentences are translated by the active language: English unless a test says otherwise."""
    with translation.override("en"):
        yield


def read_event(slug: str, count: int | None, kind=AccessEvent.Kind.DATA_READ, **detail) -> AccessEvent:
    return AccessEvent(kind=kind, client=PimsClient(name="Demo personal cloud"), record_count=count,
                       dataset=Dataset(slug=slug, title_en="Some data", title_fr="Des données"), detail=detail)


def test_counts_use_the_datasets_noun_in_english_and_french():
    event = read_event("energy-daily-consumption", 396)
    assert sentence(event, "en") == "Demo personal cloud read 396 days of your electricity consumption"
    with translation.override("fr"):
        assert sentence(event, "fr") == "Demo personal cloud a lu 396 jours de votre consommation d'électricité"
        # French keeps the singular for 0 and 1, English only for 1.
        none = sentence(read_event("energy-daily-consumption", 0), "fr")
        assert none.endswith(" 0 jour de votre consommation d'électricité")
    assert sentence(read_event("energy-daily-consumption", 0), "en").endswith(" 0 days of your electricity consumption")
    assert sentence(read_event("energy-daily-consumption", 1), "en").endswith(" 1 day of your electricity consumption")


def test_a_delivery_names_where_it_went():
    event = read_event("telco-invoices", 12, kind=AccessEvent.Kind.DELIVERY, destination="My Nextcloud")
    event.client = None
    assert sentence(event, "en") == "My Nextcloud received 12 of your telephone invoices"


def test_a_dataset_the_catalogue_does_not_name_is_counted_in_records():
    assert sentence(read_event("operator-added", 3), "en") == "Demo personal cloud read 3 records of your Some data"
