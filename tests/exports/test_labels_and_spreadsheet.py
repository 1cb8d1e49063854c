"""Fields and values in words (FR/EN) on the dataset pages, in the archive's README and in the
spreadsheet-ready CSV; one named local time zone wherever a customer reads a time."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from restitution.catalogue import DEFINITIONS, FIELD_LABELS, VALUE_LABELS, field_label, value_label
from tests.api.test_records_api import _contract, _day_block, write
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db


def browser_for(customer, language: str = "en") -> Client:
    client = Client()
    client.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    client.cookies["django_language"] = language
    return client


def test_every_catalogue_field_and_enumerated_value_has_words_in_both_languages():
    for definition in DEFINITIONS:
        for name, schema in definition.properties.items():
            assert name in FIELD_LABELS, (definition.slug, name)
            options = schema.get("anyOf") or [schema]
            for value in (v for option in options for v in option.get("enum", [])):
                assert value in VALUE_LABELS.get(name, {}), (definition.slug, name, value)
    assert field_label("direction", "fr") == "Sens" and value_label("direction", "outgoing", "fr") == "émis"
    assert value_label("status", "settled", "en") == "settled" and value_label("status", "settled", "fr") == "réglé"


def test_the_dataset_page_speaks_words_and_names_its_time_zone(data):
    page = browser_for(data.alice, "fr").get(f"/account/data/{CONTRACTS}/").content.decode()
    assert "<th scope=\"col\">N° de contrat</th>" in page and "Prime annuelle" in page
    assert ">en cours<" in page  # "active", in French
    assert "contract_id</th>" not in page
    assert "Europe/Paris" in page
    english = browser_for(data.alice).get(f"/account/data/{CURVE}/").content.decode()
    assert "Readings" in english and "Dates and times are in Europe/Paris time." in english
    assert ">2 readings</td>" in english  # a day block's readings are counted, the chart draws them
    assert "(UTC)" not in english  # the table shows local times: its help says so


def test_the_spreadsheet_csv_opens_in_a_french_spreadsheet(data):
    response = browser_for(data.alice, "fr").get(f"/account/data/{CONTRACTS}/spreadsheet.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: UTF-8 recognised
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["N° de contrat", "Code produit"] or "N° de contrat" in rows[0]
    assert len(rows) == 3 and all(len(row) == len(rows[0]) for row in rows)
    premium = rows[1][rows[0].index("Prime annuelle")]
    assert premium == "100,0"  # a decimal comma
    assert rows[1][rows[0].index("Statut")] == "en cours"


def test_the_spreadsheet_csv_in_english_uses_commas_and_only_the_customers_records(data):
    body = b"".join(browser_for(data.alice).get(f"/account/data/{CONTRACTS}/spreadsheet.csv").streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert "Contract number" in rows[0]
    ids = {row[rows[0].index("Contract number")] for row in rows[1:]}
    assert ids == {"A1", "A2"}  # never bob's B1


def test_the_spreadsheet_csv_is_refused_without_login_and_for_an_unknown_dataset(data):
    response = Client().get(f"/account/data/{CONTRACTS}/spreadsheet.csv")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert browser_for(data.alice).get("/account/data/no-such/spreadsheet.csv").status_code == 404


def test_the_load_curve_spreadsheet_has_one_row_per_half_hour_in_local_time(data):
    body = b"".join(browser_for(data.alice, "fr").get(f"/account/data/{CURVE}/spreadsheet.csv").streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:2] == ["Point de livraison", "Jour"]
    assert header[-4:] == ["Début de l'intervalle", "Valeur", "Qualité", "Manquant"]
    assert "Relevés" not in header and len(rows) == 1 + 3 * 48
    newest = rows[1:49]  # newest day first, its half hours in time order
    assert {row[1] for row in newest} == {"2025-01-03"}
    assert newest[0][-4] == "2025-01-03 00:00" and newest[-1][-4] == "2025-01-03 23:30"
    present = [row for row in newest if row[-1] == "non"]
    assert [(row[-4], row[-3]) for row in present] == [("2025-01-03 01:00", "1,0"), ("2025-01-03 13:00", "1,0")]
    assert all(row[-3] == "—" for row in newest if row[-1] == "oui")  # no value, like any empty cell


def test_a_formula_in_a_value_stays_text_in_the_spreadsheet(personas):
    evil = {**_contract("F1"), "product": "=HYPERLINK(\"https://evil.example\")"}
    write(personas.alice, CONTRACTS, [evil])
    body = b"".join(browser_for(personas.alice).get(f"/account/data/{CONTRACTS}/spreadsheet.csv").streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1][rows[0].index("Product")].startswith("'=")


@pytest.fixture
def data(personas):
    write(personas.alice, CURVE, [_day_block(d) for d in range(1, 4)])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    return personas


def test_invoice_pdfs_are_linked_and_only_their_customer_gets_them(personas, settings, tmp_path):
    import hashlib

    from django.core.files.base import ContentFile

    from restitution.models import Dataset, Document

    settings.MEDIA_ROOT = tmp_path
    invoices = Dataset.objects.get(slug="telco-invoices")
    pdf = b"%PDF-1.4\n% invoice F1\n"
    digest = hashlib.sha256(pdf).hexdigest()
    write(personas.alice, "telco-invoices", [{
        "invoice_id": "F1", "issued_on": "2025-01-31", "period_start": "2025-01-01", "period_end": "2025-01-31",
        "amount_incl_tax": 19.99, "currency": "EUR", "status": "late",
        "document": {"filename": "F1.pdf", "content_type": "application/pdf", "size": len(pdf), "sha256": digest}}])
    document = Document(customer=personas.alice, dataset=invoices, record_key="F1", filename="F1.pdf",
                        content_type="application/pdf", size=len(pdf), sha256=digest)
    document.file.save("F1.pdf", ContentFile(pdf), save=True)
    url = f"/account/data/telco-invoices/documents/{digest}"
    alice = browser_for(personas.alice, "fr")
    page = alice.get("/account/data/telco-invoices/").content.decode()
    assert f'<a href="{url}" download>F1.pdf</a>' in page and ">en retard<" in page
    response = alice.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == pdf
    assert response["Content-Type"] == "application/pdf"
    assert browser_for(personas.bob).get(url).status_code == 404
    assert Client().get(url).status_code == 302
