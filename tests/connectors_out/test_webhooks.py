"""Signed webhooks: a real worker retries until the client's endpoint says yes and then stops;
the documented verification recipe accepts the gateway's signature and refuses replays, old
messages, altered bodies and other secrets; new-data follows an extraction."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from connectors_out import webhooks
from connectors_out.models import WebhookAttempt, WebhookDelivery
from restitution import consent
from restitution.models import Dataset, Grant, PimsClient
from tests.conftest import ROOT, deliver_events, wait_until
from tests.connectors_out.receiver import Receiver


def _recipe():
    spec = importlib.util.spec_from_file_location("webhook_verify", ROOT / "docs" / "examples" / "webhook_verify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def _grant(personas) -> Grant:
    return consent.create_grant(customer=personas.alice, client=personas.trusted, duration="3m",
                                datasets=list(personas.trusted.allowed_datasets.all()))


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_worker_retries_a_failing_endpoint_and_stops_after_success(personas, receiver, start_worker):
    receiver.fail_first = 2
    _, secret = webhooks.register_endpoint(client=personas.trusted, url=receiver.url)
    start_worker(concurrency=1, env={"CONNECTORS_RETRY_BASE_SECONDS": "0.3", "CONNECTORS_RETRY_CAP_SECONDS": "1"})
    grant = _grant(personas)
    consent.revoke_grant(grant=grant)  # committed: its event goes to the worker through the broker
    wait_until(lambda: WebhookDelivery.objects.filter(event="grant-revoked").exists(), timeout=60,
               message="the grant-revoked event to reach its subscriber")
    event = WebhookDelivery.objects.get(event="grant-revoked")
    wait_until(lambda: WebhookDelivery.objects.get(pk=event.pk).status == "succeeded", timeout=60,
               message="the webhook to be delivered")
    time.sleep(2)  # long enough for any further retry to have come
    assert len(receiver.requests) == 3
    assert [a.status_code for a in WebhookAttempt.objects.filter(delivery=event)] == [503, 503, 200]
    # every attempt is signed afresh, under the same id; the last one verifies
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    payload = _recipe().verify_webhook(secret=secret, headers=receiver.requests[-1].headers,
                                       body=receiver.requests[-1].body, seen_ids=set())
    assert payload["type"] == "grant-revoked" and payload["data"]["grant"] == str(grant.receipt_id)
    assert "alice" not in receiver.requests[-1].body.decode().lower()


@pytest.mark.django_db
def test_the_recipe_accepts_the_signature_and_refuses_replays_old_altered_and_foreign_messages(personas, receiver):
    recipe = _recipe()
    _, secret = webhooks.register_endpoint(client=personas.trusted, url=receiver.url)
    grant = _grant(personas)
    consent.revoke_grant(grant=grant)
    assert deliver_events() == 1
    row = WebhookDelivery.objects.get(event="grant-revoked")
    assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "succeeded"
    sent = receiver.requests[-1]
    seen: set[str] = set()
    event = recipe.verify_webhook(secret=secret, headers=sent.headers, body=sent.body, seen_ids=seen)
    assert event["id"] == row.event_id
    with pytest.raises(recipe.WebhookVerificationError, match="replay"):
        recipe.verify_webhook(secret=secret, headers=sent.headers, body=sent.body, seen_ids=seen)
    sent_at = int(sent.headers["webhook-timestamp"])
    with pytest.raises(recipe.WebhookVerificationError, match="too old"):
        recipe.verify_webhook(secret=secret, headers=sent.headers, body=sent.body, seen_ids=set(),
                              now=sent_at + recipe.TOLERANCE_SECONDS + 1)
    # an old message replayed with a fresh timestamp: the signature no longer matches
    fresh = {**sent.headers, "webhook-timestamp": str(int(time.time()) + 1)}
    with pytest.raises(recipe.WebhookVerificationError, match="bad signature"):
        recipe.verify_webhook(secret=secret, headers=fresh, body=sent.body, seen_ids=set())
    altered = sent.body.replace(b"grant-revoked", b"new-data")
    with pytest.raises(recipe.WebhookVerificationError, match="bad signature"):
        recipe.verify_webhook(secret=secret, headers=sent.headers, body=altered, seen_ids=set())
    with pytest.raises(recipe.WebhookVerificationError, match="bad signature"):
        recipe.verify_webhook(secret=webhooks.new_secret(), headers=sent.headers, body=sent.body, seen_ids=set())
    with pytest.raises(recipe.WebhookVerificationError, match="missing"):
        recipe.verify_webhook(secret=secret, headers={}, body=sent.body, seen_ids=set())


@pytest.mark.django_db
def test_a_permanent_refusal_is_not_retried(personas, receiver):
    receiver.fail_first, receiver.fail_status = 10, 410
    webhooks.register_endpoint(client=personas.trusted, url=receiver.url)
    consent.revoke_grant(grant=_grant(personas))
    deliver_events()
    row = WebhookDelivery.objects.get(event="grant-revoked")
    assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "failed"
    assert len(receiver.requests) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 410)


def test_new_data_is_announced_after_an_extraction_changed_granted_data(demo_customer, receiver):
    client = PimsClient.objects.create(
        name="Cloud", client_id="cloud", client_type=PimsClient.CLIENT_PUBLIC,
        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris="https://cloud.example/cb",
        algorithm="", approval=PimsClient.Approval.APPROVED)
    client.allowed_datasets.set(Dataset.objects.all())
    _, secret = webhooks.register_endpoint(client=client, url=receiver.url)
    grant = consent.create_grant(customer=demo_customer.customer, client=client, duration="3m",
                                 datasets=list(Dataset.objects.filter(slug="insurance-contracts")))
    demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()
    row = WebhookDelivery.objects.get(event="new-data")
    assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "succeeded"
    event = _recipe().verify_webhook(secret=secret, headers=receiver.requests[-1].headers,
                                     body=receiver.requests[-1].body, seen_ids=set())
    changed = demo_customer.customer.records.filter(dataset__slug="insurance-contracts").order_by("-seq").first()
    # only the granted dataset (the deleted claim is not in this grant), and the sequence to sync to
    assert event["data"]["datasets"] == ["insurance-contracts"]
    assert event["data"]["change_seq"] == changed.seq and event["data"]["grant"] == str(grant.receipt_id)
    assert demo_customer.customer.reference not in json.dumps(event)


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["loopback by name", "loopback", "private network"])
def test_a_webhook_to_a_local_address_is_refused_for_good_without_connecting(personas, receiver, settings, where):
    """The holder's own network is off limits to webhooks as to destinations (SSRF): refused at
    the first attempt, recorded in its attempt row, never retried, nothing received."""
    port = receiver.server.server_address[1]
    url = {"loopback by name": f"http://localhost:{port}/hooks/gateway", "loopback": receiver.url,
           "private network": "http://10.255.255.1:9/hooks/gateway"}[where]
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    settings.CONNECTORS_HTTP_TIMEOUT = 2.0
    webhooks.register_endpoint(client=personas.trusted, url=url)
    consent.revoke_grant(grant=_grant(personas))
    deliver_events()
    row = WebhookDelivery.objects.get(event="grant-revoked")
    assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "failed"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, None)
    attempt = WebhookAttempt.objects.get(delivery=row)
    assert attempt.error == row.error == "webhook: the address is not public"
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_webhook_to_loopback_is_sent_when_the_operator_allows_local_addresses(personas, receiver, settings):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = True
    webhooks.register_endpoint(client=personas.trusted, url=receiver.url)
    consent.revoke_grant(grant=_grant(personas))
    deliver_events()
    row = WebhookDelivery.objects.get(event="grant-revoked")
    assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "succeeded"
    assert len(receiver.requests) == 1

