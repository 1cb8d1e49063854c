"""The operator console: a home that says what needs attention, approval that refuses an
incomplete client, a client form without what the gateway does not support, and every admin
page answering after a dynamic registration."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from restitution.models import Dataset, ExtractionRun, PimsClient, Source
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    staff = get_user_model().objects.create_superuser("operator", "operator@holder.example", "op-password-2025")
    browser = Client()
    browser.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def register_dynamically(**overrides) -> dict:
    body = {"client_name": "Honest cloud", "redirect_uris": ["https://honest.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "client_uri": "https://honest.example/",
            "policy_uri": "https://honest.example/privacy", **overrides}
    response = Client(REMOTE_ADDR="10.9.8.7").post("/o/register/", json.dumps(body),
                                                    content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def admin_pages() -> list[str]:
    """Every changelist and add page of every registered model."""
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages += [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages += [reverse(f"{name}_change", args=[first.pk]), reverse(f"{name}_history", args=[first.pk])]
    return pages


def test_every_admin_page_answers_after_a_dynamic_registration(personas, operator):
    register_dynamically()
    # A registration access token that never expires (what the library gives when no lifetime
    # is set): 9999-12-31 23:59:59 UTC is past year 9999 in Europe/Paris.
    AccessToken = get_access_token_model()
    AccessToken.objects.filter(application__registered_dynamically=True).update(
        expires=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    seen: set[str] = set()
    queue = admin_pages()
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = operator.get(url)
        assert response.status_code in (200, 302, 403), (url, response.status_code)
        if response.status_code == 200:
            queue += [link for link in re.findall(r'href="(/admin/[^"#?]*)"', response.content.decode())
                      if "logout" not in link and "delete" not in link and link not in seen]
    assert len(seen) > 60
    assert "oauth2_provider/accesstoken/" in " ".join(seen)


def test_the_home_lists_what_needs_attention_with_counts_and_links(personas, operator):
    pending_before = PimsClient.objects.filter(approval=PimsClient.Approval.PENDING).count()
    register_dynamically()
    source = Source.objects.create(slug="billing", name="Billing", kind=Source.Kind.SQL, connection_env="BILLING_URL",
                                   identity_system="billing")
    ExtractionRun.objects.create(source=source, status=ExtractionRun.Status.FAILED)
    ExtractionRun.objects.create(source=source, status=ExtractionRun.Status.FAILED,
                                 queued_at=timezone.now() - timedelta(days=30))  # too old to list
    ExtractionRun.objects.create(source=source, status=ExtractionRun.Status.SUCCEEDED)
    home = operator.get("/admin/").content.decode()
    counts = dict(re.findall(r'id="attention-([a-z-]+)".*?attention-count">(\d+)<', home, re.S))
    assert counts == {"pending-clients": str(pending_before + 1), "client-changes": "0", "quarantine": "0",
                      "failed-runs": "1", "blocked-deliveries": "0", "expiring-keys": "0"}
    links = dict(re.findall(r'id="attention-([a-z-]+)"[^>]*>\s*<a href="([^"]+)"', home))
    pending = operator.get(links["pending-clients"].replace("&amp;", "&")).content.decode()
    assert "Honest cloud" in pending
    failed = operator.get(links["failed-runs"]).content.decode()
    assert failed.count('class="action-select"') == 2  # both failed runs; the successful one is not there
    asked = []
    for key, url in links.items():
        url = url.replace("&amp;", "&")
        response = operator.get(url)
        if response.status_code == 302 and "/reason/" in response["Location"]:
            # rows holding customers' data: the operator says why first (docs/history.md)
            asked.append(key)
            operator.post(response["Location"].split("?")[0], {"reason": "Checking the console's links", "next": url})
            response = operator.get(url)
        assert response.status_code == 200, key
    assert asked == ["quarantine"]


def test_a_registration_key_about_to_expire_is_listed(personas, operator):
    register_dynamically()
    AccessToken = get_access_token_model()
    AccessToken.objects.filter(application__registered_dynamically=True).update(
        expires=timezone.now() + timedelta(days=2))
    home = operator.get("/admin/").content.decode()
    assert re.search(r'id="attention-expiring-keys".*?attention-count">1<', home, re.S)
    listed = operator.get("/admin/oauth2_provider/accesstoken/?expiring=soon").content.decode()
    assert "Honest cloud" in listed


def test_the_home_is_for_staff_only(personas):
    browser = Client()
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    response = browser.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _approve(operator: Client, client: PimsClient):
    return operator.post("/admin/restitution/pimsclient/", {"action": "approve", "_selected_action": [client.pk]},
                         follow=True)


def test_approval_refuses_an_incomplete_client_and_says_why(personas, operator):
    registered = register_dynamically(policy_uri="")
    client = PimsClient.objects.get(client_id=registered["client_id"])
    page = _approve(operator, client).content.decode()
    client.refresh_from_db()
    assert client.approval == PimsClient.Approval.PENDING
    assert "not approved" in page
    assert "datasets it may ask for" in page and "purpose (English)" in page and "privacy policy URL" in page
    # Completed, it is approved, and the operator is told so.
    client.allowed_datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    client.purpose_en = "Keeps your energy data with your other documents."
    client.privacy_policy_url = "https://honest.example/privacy"
    client.save()
    page = _approve(operator, client).content.decode()
    client.refresh_from_db()
    assert client.approval == PimsClient.Approval.APPROVED
    assert "1 client(s) approved" in page


def test_the_client_form_offers_only_what_the_gateway_supports(personas, operator):
    page = operator.get("/admin/restitution/pimsclient/add/").content.decode()
    assert 'name="skip_authorization"' not in page
    offered = set(re.findall(r'name="authorization_grant_type"[^>]*value="([^"]+)"', page)) | set(
        re.findall(r'value="([^"]+)"[^>]*name="authorization_grant_type"', page))
    assert offered == {"authorization-code"}
    # A forged post with another grant type or skip_authorization does not get through.
    response = operator.post("/admin/restitution/pimsclient/add/", {
        "client_id": "forged", "client_type": "public", "authorization_grant_type": "client-credentials",
        "name": "Forged", "redirect_uris": "https://forged.example/cb", "skip_authorization": "on",
        "approval": "pending", "algorithm": ""})
    assert response.status_code == 200  # the form again, with the error
    assert not PimsClient.objects.filter(client_id="forged").exists()
    response = operator.post("/admin/restitution/pimsclient/add/", {
        "client_id": "forged", "client_secret": "s" * 40, "client_type": "public",
        "authorization_grant_type": "authorization-code", "name": "Forged",
        "redirect_uris": "https://forged.example/cb", "post_logout_redirect_uris": "", "allowed_origins": "",
        "skip_authorization": "on", "approval": "pending", "algorithm": "", "hash_client_secret": "on"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert PimsClient.objects.get(client_id="forged").skip_authorization is False


def test_view_site_goes_somewhere_real(personas, operator):
    home = operator.get("/admin/").content.decode()
    site = re.search(r'<a href="([^"]+)">View site</a>', home).group(1)
    assert operator.get(site).status_code == 200


def test_the_metrics_page_reads_in_words_with_its_thresholds(personas, operator):
    from restitution.metrics import record_api_call

    record_api_call(tier="high-priority", endpoint="api-me", status=200, duration_ms=10)
    record_api_call(tier="high-priority", endpoint="api-me", status=500, duration_ms=99_000)
    page = operator.get("/admin/operator-metrics/").content.decode()
    assert re.search(r'id="availability" class="number over-threshold">50[.,]00 %<', page)
    assert "target: at least 99.50 %" in page
    assert "calls per hour" in page and "0.00" not in page.split('id="availability"')[0][-200:]
    assert re.search(r'id="tier-high-priority"><th scope="row">High priority', page)
    assert "50.00 %" in page  # one call of two within the threshold
    french = operator.get("/admin/operator-metrics/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Disponibilité" in french and "objectif : au moins 99,50 %" in french
    assert "appels par heure" in french
