"""The customer dashboard: my data, connected clouds with one-click revoke, access history."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from restitution.models import AccessEvent, Dataset, ExtractionRun, Grant, LegacyIdentity, Record, Source
from tests.personas import PASSWORD, Flow


def _login(customer) -> Client:
    browser = Client()
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def test_the_dashboard_shows_my_data_counts(personas):
    curve = Dataset.objects.get(slug="energy-load-curve")
    for n in range(3):
        Record.objects.create(customer=personas.alice, dataset=curve, key=f"k{n}", data={}, content_hash="h",
                              extracted_at="2025-01-01T00:00:00Z", seq=n + 1)
    Record.objects.create(customer=personas.bob, dataset=curve, key="b", data={}, content_hash="h",
                          extracted_at="2025-01-01T00:00:00Z", seq=10)
    html = _login(personas.alice).get("/account/").content.decode()
    assert "Electricity load curve (30 minutes)" in html
    assert "<td>3</td>" in html  # her three records, not bob's


def test_revoking_in_one_click_stops_the_tokens_at_once(flow, personas):
    tokens = flow.tokens()
    grant = Grant.objects.get(customer=personas.alice)
    page = flow.browser.get("/account/").content.decode()
    assert "Revoke access for Trusted cloud" in page and "Download the consent receipt" in page
    response = flow.browser.post(f"/account/grants/{grant.receipt_id}/revoke/")
    assert response.status_code == 302
    assert flow.me(tokens["access_token"]).status_code == 401
    after = flow.browser.get("/account/", follow=True).content.decode()
    assert "can no longer read your data" in after
    assert "Past consents" in after and "revoked" in after  # stays visible as history
    assert AccessEvent.objects.filter(grant=grant, kind="grant-revoked").exists()


def test_revoking_needs_a_post(flow, personas):
    flow.tokens()
    grant = Grant.objects.get(customer=personas.alice)
    assert flow.browser.get(f"/account/grants/{grant.receipt_id}/revoke/").status_code == 405
    grant.refresh_from_db()
    assert grant.is_active()


def test_the_access_history_tells_token_events_in_sentences(flow, personas):
    tokens = flow.tokens()
    flow.refresh(tokens["refresh_token"])
    html = flow.browser.get("/account/").content.decode()
    assert "You allowed Trusted cloud to read your data" in html
    assert "Trusted cloud connected to your data" in html and "Trusted cloud renewed its connection" in html


def test_the_consent_receipt_downloads_as_json(flow, personas):
    flow.tokens()
    grant = Grant.objects.get(customer=personas.alice)
    response = flow.browser.get(f"/account/grants/{grant.receipt_id}/receipt.json")
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    receipt = json.loads(response.content)
    assert receipt["receipt_id"] == str(grant.receipt_id)
    assert receipt["controller"]["name"]


def test_consent_queues_the_customers_first_extraction(flow, personas, settings):
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value="S0000001")
    source = Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="NOPE",
                                   identity_system="insurer")
    flow.tokens()
    run = ExtractionRun.objects.get(customer=personas.alice)
    assert run.source == source and run.trigger == "consent"


def test_the_refresh_button_queues_runs_and_reports_progress(personas):
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value="S0000001")
    Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="NOPE", identity_system="insurer")
    browser = _login(personas.alice)
    response = browser.post("/account/refresh/", follow=True)
    assert "Updating your data from 1 system" in response.content.decode()
    status = browser.get("/account/refresh/status/").json()
    assert status == {"active": 1, "progress": 0.0}
    assert _login(personas.bob).get("/account/refresh/status/").json()["active"] == 0


def test_the_dashboard_needs_a_login(personas):
    response = Client().get("/account/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_repeated_login_failures_lock_the_account_out(personas):
    browser = Client()
    for _ in range(5):
        browser.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    locked = browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert "_auth_user_id" not in browser.session


def test_a_good_login_lands_on_the_dashboard(personas):
    response = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/account/"
    assert "Hello Alice" in response.content.decode()


def test_flow_helper_is_not_logged_in_as_bob(flow, personas):
    # Guard for the personas: the flow's browser is alice's.
    assert flow.browser.get("/account/").context["customer"] == personas.alice
    assert isinstance(flow, Flow)


def _alice_has_one_source(personas) -> Source:
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value="S0000001")
    return Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="NOPE",
                                 identity_system="insurer")


def test_update_my_data_clicked_again_after_a_run_ends_starts_no_new_run(personas):
    _alice_has_one_source(personas)
    browser = _login(personas.alice)
    browser.post("/account/refresh/")
    ExtractionRun.objects.update(status=ExtractionRun.Status.SUCCEEDED)  # the run was quick
    for _ in range(5):
        response = browser.post("/account/refresh/", follow=True)
    assert ExtractionRun.objects.filter(customer=personas.alice).count() == 1
    assert "you can ask again in 5 minutes" in response.content.decode()


def test_update_my_data_while_a_run_is_queued_reuses_it(personas):
    _alice_has_one_source(personas)
    browser = _login(personas.alice)
    for _ in range(3):
        response = browser.post("/account/refresh/", follow=True)
    assert ExtractionRun.objects.filter(customer=personas.alice).count() == 1
    assert "Updating your data from 1 system" in response.content.decode()


def test_the_cooldown_is_the_customers_whichever_client_asks(flow, personas):
    """Two clients (or a client and the dashboard) cannot add up their refreshes."""
    from tests.conftest import reset_rate_limits

    _alice_has_one_source(personas)
    token = flow.tokens()["access_token"]
    ExtractionRun.objects.update(status=ExtractionRun.Status.SUCCEEDED)  # the consent's first run
    _login(personas.alice).post("/account/refresh/")
    ExtractionRun.objects.update(status=ExtractionRun.Status.SUCCEEDED)
    reset_rate_limits()
    response = flow.api.post("/api/v1/extractions", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 429 and response["Content-Type"] == "application/problem+json"
    assert 0 < int(response["Retry-After"]) <= 300
    assert ExtractionRun.objects.filter(customer=personas.alice, trigger="customer").count() == 1


def test_the_cooldown_ends(personas):
    from datetime import timedelta

    from django.utils import timezone

    _alice_has_one_source(personas)
    browser = _login(personas.alice)
    browser.post("/account/refresh/")
    ExtractionRun.objects.update(status=ExtractionRun.Status.SUCCEEDED,
                                 queued_at=timezone.now() - timedelta(minutes=6))
    browser.post("/account/refresh/")
    assert ExtractionRun.objects.filter(customer=personas.alice).count() == 2


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_no_page_with_personal_data_may_be_stored_by_a_cache(flow, personas):
    flow.tokens()
    grant = Grant.objects.get(customer=personas.alice)
    alice = _login(personas.alice)
    for path in ("/account/", "/account/refresh/status/", "/account/download/status/",
                 f"/account/data/{Dataset.objects.first().slug}/", f"/account/grants/{grant.receipt_id}/receipt.json",
                 "/account/destinations/"):
        response = alice.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))
    consent_page = flow.open_consent()
    assert consent_page.status_code == 200 and _no_store(consent_page)


@pytest.mark.parametrize("field, day", [("window_end", "9999-12-31"), ("window_start", "0001-01-01"),
                                        ("window_end", "2500-01-01")])
def test_the_consent_page_refuses_an_absurd_period(flow, field, day):
    response = flow.approve(**{field: day})
    assert response.status_code == 400
    assert "Choose a date between 1900-01-01 and 2100-12-31" in response.content.decode()
    assert not Grant.objects.exists()


def test_the_destination_form_refuses_an_absurd_period(personas):
    from connectors_out.forms import DestinationForm

    form = DestinationForm(data={"datasets": [Dataset.objects.first().pk], "window_end": "9999-12-31",
                                 "duration": "3m"})
    assert not form.is_valid() and "window_end" in form.errors


def test_a_replaced_consent_says_so_and_its_receipt_reads_as_a_page_to_its_customer_only(personas):
    from restitution import consent as grants

    datasets = list(personas.trusted.allowed_datasets.all())
    first = grants.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets, duration="1m")
    second = grants.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets, duration="3m")
    browser = _login(personas.alice)
    html = browser.get("/account/").content.decode()
    assert "replaced by your consent of" in html
    past = html.split("Past consents")[1]
    assert ">revoked" not in past  # she never revoked it
    page = browser.get(f"/account/grants/{first.receipt_id}/receipt/").content.decode()
    assert "replaced by your consent of" in page and f"/account/grants/{second.receipt_id}/receipt/" in page
    # A consent she revoked herself says revoked.
    grants.revoke_grant(grant=second)
    assert "revoked" in browser.get(f"/account/grants/{second.receipt_id}/receipt/").content.decode()
    # bob sees neither receipt.
    bob = _login(personas.bob)
    assert bob.get(f"/account/grants/{first.receipt_id}/receipt/").status_code == 404
    assert bob.get(f"/account/grants/{first.receipt_id}/receipt.json").status_code == 404


def test_the_updating_message_goes_once_the_runs_ended(personas):
    """The runs may end before the page loads: the page then says nothing of an update."""
    _alice_has_one_source(personas)
    browser = _login(personas.alice)
    browser.post("/account/refresh/")
    assert "Updating your data from 1 system" in browser.get("/account/").content.decode()
    ExtractionRun.objects.update(status=ExtractionRun.Status.SUCCEEDED)
    page = browser.get("/account/").content.decode()
    assert "Updating your data" not in page
    assert '<div id="refresh-progress" role="status" hidden>' in page


def test_update_my_data_with_no_system_that_knows_the_customer_says_so(personas):
    response = _login(personas.alice).post("/account/refresh/", follow=True)
    page = response.content.decode()
    assert "there is nothing to update" in page and "Updating your data" not in page
