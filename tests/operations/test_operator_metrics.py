"""The operator metrics (CDR Get Metrics fields): a scripted sequence of calls and consents gives
exactly the expected figures; only operators may read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from restitution.api.throttling import PerClientThrottle, PerCustomerThrottle
from restitution.metrics import operator_metrics, record_api_call
from restitution.models import Dataset, Grant, PimsClient
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE, Flow

OTHER_REDIRECT = "https://other.example/callback"


def _browser(customer) -> Client:
    browser = Client()
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def _exchange(flow: Flow, response) -> dict:
    code = flow.redirect_params(response)["code"]
    answer = flow.exchange(code)
    assert answer.status_code == 200, answer.content
    return answer.json()


@pytest.fixture
def other(personas) -> PimsClient:
    client = PimsClient.objects.create(
        name="Other cloud", client_id="other-cloud", client_type=PimsClient.CLIENT_PUBLIC,
        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris=OTHER_REDIRECT,
        algorithm="", approval=PimsClient.Approval.APPROVED, purpose_en="Keep a copy.")
    client.allowed_datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    return client


def test_a_scripted_sequence_of_consents_and_calls_gives_exactly_these_figures(personas, other, monkeypatch):
    reset_rate_limits()
    monkeypatch.setattr(PerCustomerThrottle, "THROTTLE_RATES", {"customer": "5/min", "client": "100/min"})
    monkeypatch.setattr(PerClientThrottle, "THROTTLE_RATES", {"customer": "5/min", "client": "100/min"})
    start = timezone.now() - timedelta(minutes=1)
    alice, bob = _browser(personas.alice), _browser(personas.bob)
    api = Client()

    # 1. alice connects the trusted cloud for 3 months (completed flow).
    a1 = Flow(alice, api)
    _exchange(a1, a1.approve(duration="3m", state="alice-1"))
    # 2. alice consents once to the other cloud, which never exchanges its code.
    a2 = Flow(alice, api, client_id="other-cloud", redirect_uri=OTHER_REDIRECT)
    assert a2.approve(duration="one-time", state="alice-2").status_code == 302
    # 3. bob connects the trusted cloud for a month, then revokes it from his dashboard.
    b1 = Flow(bob, api)
    _exchange(b1, b1.approve(duration="1m", state="bob-1"))
    bob_grant = Grant.objects.get(customer=personas.bob, client=personas.trusted)
    assert bob.post(f"/account/grants/{bob_grant.receipt_id}/revoke/").status_code == 302
    # 4. alice renews her trusted-cloud consent for 6 months: the first grant is amended.
    a3 = Flow(alice, api)
    tokens = _exchange(a3, a3.approve(duration="6m", state="alice-3"))
    # 5. bob opens the consent page and walks away; 6. a stranger never logs in;
    # 7. bob declines the other cloud.
    assert Flow(bob, api).open_consent(state="bob-2").status_code == 200
    assert Flow(Client(), api).open_consent(state="anon-1").status_code == 302
    declined = Flow(bob, api, client_id="other-cloud", redirect_uri=OTHER_REDIRECT).approve(
        allow=False, state="bob-3")
    assert Flow.redirect_params(declined)["error"] == "access_denied"

    # Calls: metadata, three reads of /me, one page of records, an unknown dataset, a bad
    # token, then the sixth call in the minute of a customer limited to five.
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    assert api.get("/.well-known/oauth-authorization-server").status_code == 200
    for _ in range(3):
        assert api.get("/api/v1/me", **bearer).status_code == 200
    assert api.get(f"/api/v1/datasets/{CURVE}/records", **bearer).status_code == 200
    assert api.get("/api/v1/datasets/no-such-thing/records", **bearer).status_code == 404
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    assert api.get("/api/v1/me", **bearer).status_code == 429

    # Read 40 days later: idle flows are abandoned, the unused one-time grant (7 days) expired.
    later = timezone.now() + timedelta(days=40)
    report = operator_metrics(start=start, end=later, now=later)

    assert report["invocations"] == {"unauthenticated": 1, "authentication": 3, "high-priority": 5,
                                     "large-payload": 2}
    assert report["errors"] == {"401": 1, "404": 1}
    assert report["rejections"] == 1
    assert report["availability"] == 1.0
    assert report["active_customers"] == 1 and report["active_clients"] == 1
    assert report["authorisations"] == {
        "active": 1, "new": {"one_time": 1, "ongoing": 3}, "revoked": 1, "amended": 1, "expired": 1,
        "abandoned_consent_flows": {"pre-authentication": 1, "pre-authorisation": 1, "rejected": 1,
                                    "failed-token-exchange": 1},
    }
    # Read now instead, nothing is abandoned yet except the refusal, and nothing has expired.
    now = operator_metrics(start=start, end=timezone.now() + timedelta(seconds=1))
    assert now["authorisations"]["abandoned_consent_flows"] == {
        "pre-authentication": 0, "pre-authorisation": 0, "rejected": 1, "failed-token-exchange": 0}
    assert now["authorisations"]["expired"] == 0
    assert now["authorisations"]["active"] == 2  # alice's 6-month grant and her unused one-time grant


def test_performance_per_hour_tps_and_availability_come_from_the_recorded_calls(db, settings):
    t = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    calls = [  # (seconds after 10:00, tier, status, duration in ms)
        (0.1, "high-priority", 200, 200), (0.5, "high-priority", 200, 1200), (0.9, "high-priority", 500, 300),
        (1800, "high-priority", 200, 100), (4500, "high-priority", 200, 900),
        (4500, "large-payload", 200, 7000), (7199, "large-payload", 503, 100),
        (-1, "high-priority", 200, 50), (7200, "high-priority", 200, 50),  # outside the period
    ]
    for offset, tier, status, duration in calls:
        record_api_call(tier=tier, endpoint="api-me", status=status, duration_ms=duration,
                        at=t + timedelta(seconds=offset))
    report = operator_metrics(start=t, end=t + timedelta(hours=2), now=t + timedelta(hours=3))

    assert report["invocations"] == {"unauthenticated": 0, "authentication": 0, "high-priority": 5,
                                     "large-payload": 2}
    assert report["peak_tps"] == 3
    assert report["average_tps"] == round(7 / 7200, 6)
    assert report["availability"] == round(1 - 2 / 7, 6)
    assert report["errors"] == {"500": 1, "503": 1}
    assert report["average_response_ms"] == {"unauthenticated": None, "authentication": None,
                                             "high-priority": 540.0, "large-payload": 3550.0}
    def utc_hour(h) -> int:  # hours are reported in the gateway's time zone, with its offset
        return datetime.fromisoformat(h["hour"]).astimezone(UTC).hour

    high = [(utc_hour(h), h["calls"], h["within_threshold"], h["share"])
            for h in report["performance"]["high-priority"]]
    assert high == [(10, 4, 3, 0.75), (11, 1, 1, 1.0)]
    large = [(utc_hour(h), h["calls"], h["within_threshold"]) for h in report["performance"]["large-payload"]]
    assert large == [(11, 2, 1)]

    settings.GATEWAY_TIER_THRESHOLDS_MS = {**settings.GATEWAY_TIER_THRESHOLDS_MS, "high-priority": 150}
    again = operator_metrics(start=t, end=t + timedelta(hours=2), now=t + timedelta(hours=3))
    assert [h["within_threshold"] for h in again["performance"]["high-priority"]] == [1, 0]


def _operator(username: str = "ops", *, permitted: bool = True) -> Client:
    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)  # noqa: S106
    if permitted:
        user.user_permissions.add(Permission.objects.get(codename="view_apicall"))
    browser = Client()
    browser.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def test_the_operator_reads_the_metrics_api_and_the_admin_page(personas):
    record_api_call(tier="high-priority", endpoint="api-me", status=200, duration_ms=10)
    operator = _operator()
    body = operator.get("/api/operator/metrics").json()
    assert body["invocations"]["high-priority"] == 1
    assert body["active_customers"] == 0
    page = operator.get("/admin/operator-metrics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Operator metrics" in html and "Abandoned consent flows: pre-authentication" in html
    assert page["X-Frame-Options"] == "DENY"
    index = operator.get("/admin/").content.decode()
    assert "Operator metrics (API calls)" in index
    assert operator.get("/admin/restitution/apicall/")["Location"] == "/admin/operator-metrics/"


def test_a_bad_period_is_a_400_problem(personas):
    operator = _operator()
    response = operator.get("/api/operator/metrics", {"start": "yesterday-ish"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["parameter"] == "start"
    backwards = operator.get("/api/operator/metrics", {"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 400


def test_customers_clients_and_unpermitted_staff_cannot_read_the_metrics(personas, flow, settings):
    settings.GATEWAY_METRICS_TOKEN = "metrics-token-for-the-scraper-0123456789"  # noqa: S105
    tokens = flow.tokens()
    assert _browser(personas.alice).get("/api/operator/metrics").status_code == 403
    assert _browser(personas.alice).get("/admin/operator-metrics/").status_code == 302  # to the admin login
    assert _operator("helpdesk", permitted=False).get("/api/operator/metrics").status_code == 403
    assert _operator("helpdesk2", permitted=False).get("/admin/operator-metrics/").status_code == 403
    client_token = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    assert Client().get("/api/operator/metrics", **client_token).status_code == 403
    assert Client().get("/api/operator/metrics").status_code == 403
    scraper = {"HTTP_AUTHORIZATION": f"Bearer {settings.GATEWAY_METRICS_TOKEN}"}
    assert Client().get("/api/operator/metrics", **scraper).status_code == 200
