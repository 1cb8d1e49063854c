"""The customer's side: "download all my data" and the dataset pages — and their refusals."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from restitution import exports
from restitution.models import AccessEvent, ExportJob
from tests.api.test_records_api import _contract, _day_block, write
from tests.exports.archive_reader import open_checked
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db(transaction=True)


def browser_for(customer, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_download_all_builds_an_archive_of_everything_with_readme(data):
    alice = browser_for(data.alice)
    assert alice.get("/account/download/status/").json() == {"status": "none"}
    response = alice.post("/account/download/")
    assert response.status_code == 302 and response["Location"].endswith("#download")
    job = ExportJob.objects.get()
    assert job.for_customer and job.grant is None and job.datasets == [CURVE, CONTRACTS]
    assert alice.get("/account/download/status/").json()["status"] == "queued"
    assert alice.post("/account/download/").status_code == 302  # asked twice: still one job
    assert ExportJob.objects.count() == 1

    exports.execute_export(job_id=job.pk)
    state = alice.get("/account/download/status/").json()
    assert state["status"] == "succeeded" and state["progress"] == 100
    archive, manifest = open_checked(b"".join(Client().get(state["url"]).streaming_content))
    assert manifest["requested_by"] == "customer" and manifest["record_count"] == 12
    readme = archive.read("README.txt").decode()
    assert "Your data from" in readme and "Vos données chez" in readme
    assert "Average power drawn during each half hour, in kW, each with its UTC start." in readme
    assert "readings (Readings):" in readme and "readings (Relevés):" in readme
    assert "each row is one interval of the day" in readme and "chaque ligne est un intervalle" in readme
    # The processing facts of each dataset, in both languages (GDPR Art. 15).
    assert "How we process it (GDPR Art. 15):" in readme and "Comment nous les traitons (RGPD, art. 15) :" in readme
    assert readme.count("Automated decisions: no") == 2  # the load curve and the contracts
    page = alice.get("/account/").content.decode()
    assert 'id="download-link"' in page and state["url"].split("?")[0] in page
    kinds = set(AccessEvent.objects.filter(customer=data.alice).values_list("kind", flat=True))
    assert {AccessEvent.Kind.EXPORT, AccessEvent.Kind.EXPORT_DOWNLOADED} <= kinds


def test_download_all_is_refused_without_login_csrf_or_post(data):
    assert Client().post("/account/download/").status_code == 302  # to the login page
    assert Client().get("/account/download/status/").status_code == 302
    strict = browser_for(data.alice, enforce_csrf_checks=True)
    assert strict.post("/account/download/").status_code == 403
    assert browser_for(data.alice).get("/account/download/").status_code == 405
    assert not ExportJob.objects.exists()


def test_bob_never_sees_alices_archive(data):
    browser_for(data.alice).post("/account/download/")
    exports.execute_export(job_id=ExportJob.objects.get().pk)
    bob = browser_for(data.bob)
    assert bob.get("/account/download/status/").json() == {"status": "none"}
    assert str(ExportJob.objects.get().public_id) not in bob.get("/account/").content.decode()


def test_a_customer_with_nothing_gets_a_message_not_an_empty_archive(personas, media):
    response = browser_for(personas.alice).post("/account/download/", follow=True)
    assert "nothing to download yet" in response.content.decode()
    assert not ExportJob.objects.exists()


def chart_of(client: Client, slug: str, **query) -> dict:
    response = client.get(f"/account/data/{slug}/", query)
    assert response.status_code == 200
    body = response.content.decode()
    opening = '<script id="chart-data" type="application/json">'
    start = body.index(opening) + len(opening)
    return json.loads(body[start:body.index("</script>", start)])


def test_the_load_curve_page_charts_the_customers_own_readings(data):
    alice, bob = browser_for(data.alice), browser_for(data.bob)
    by_day = chart_of(alice, CURVE, by="day")
    assert by_day["resolution"] == "day" and len(by_day["x"]) == 10
    assert by_day["series"][0] == [1.0] * 10 and by_day["units"] == ["kW", "kW"]
    raw = chart_of(alice, CURVE, by="raw")
    assert len(raw["x"]) == 20
    assert chart_of(alice, CURVE, by="nonsense")["resolution"] == "day"  # the default, not a 500
    assert chart_of(bob, CURVE, by="raw")["series"][0] == [9.9] * 3
    write(data.alice, CURVE, [_day_block(d, kw=2.0) for d in range(11, 16)], finish=False)
    assert len(chart_of(alice, CURVE, by="month")["x"]) == 1


def test_the_contracts_page_is_a_table_with_field_help_and_no_chart(data):
    page = browser_for(data.alice).get(f"/account/data/{CONTRACTS}/").content.decode()
    assert 'id="chart-data"' not in page
    # As table cells: a bare "B1" could be inside the page's random CSRF token.
    assert 'data-label="Contract number">A1</td>' in page and ">A2</td>" in page and ">B1</td>" not in page
    assert "The part of a claim you pay yourself, in euros." in page
    # Every shipped field has written help, under its label (a type description is the fallback
    # only for fields an operator adds without help).
    assert ("End date <span class=\"muted small\">(end_date)</span></dt>"
            "<dd>The day the contract ended; empty while it runs.") in page


def test_dataset_pages_refuse_strangers_and_unknown_datasets(data):
    assert Client().get(f"/account/data/{CURVE}/").status_code == 302
    alice = browser_for(data.alice)
    assert alice.get("/account/data/no-such-dataset/").status_code == 404
    write(data.bob, CONTRACTS, [_contract("B2")])
    assert ">B2</td>" not in alice.get(f"/account/data/{CONTRACTS}/").content.decode()


def test_the_pages_speak_french_to_a_french_customer(data):
    alice = browser_for(data.alice, HTTP_ACCEPT_LANGUAGE="fr")
    page = alice.get(f"/account/data/{CURVE}/").content.decode()
    assert "par semaine" in page and "Ce que signifie chaque champ" in page
    assert "Puissance moyenne appelée pendant chaque demi-heure, en kW" in page
    assert chart_of(alice, CURVE)["labels"] == ["Puissance moyenne", "Demi-heure la plus forte"]
    assert "Télécharger toutes mes données" in alice.get("/account/").content.decode()
