"""The access history is hash-chained per customer: `verify_history` passes on the untouched
history and fails after an event is edited, deleted or reordered in the database; the customer's
signed download verifies with nothing but the documented algorithm (docs/history.md)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from restitution import consent
from restitution.models import AccessEvent, Dataset
from tests.api.test_isolation_property import issue_token
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db


@pytest.fixture
def histories(personas):
    """alice and bob each with a consent given, data read through the API, and a revocation."""
    api = Client()
    datasets = list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    for customer in (personas.alice, personas.bob):
        grant = consent.create_grant(customer=customer, client=personas.trusted, datasets=datasets, duration="1m")
        token = issue_token(grant)
        for slug in (CURVE, CONTRACTS, CURVE):
            reset_rate_limits()
            assert api.get(f"/api/v1/datasets/{slug}/records", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
        consent.revoke_grant(grant=grant)
    assert AccessEvent.objects.filter(customer=personas.alice).count() >= 5
    return personas


def verify() -> None:
    call_command("verify_history")


def alice_events(personas) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(customer=personas.alice).order_by("chain_seq"))


def test_every_event_is_chained_after_the_customers_previous_one(histories):
    verify()
    for customer in (histories.alice, histories.bob):
        events = list(AccessEvent.objects.filter(customer=customer).order_by("chain_seq"))
        assert [e.chain_seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].prev_hash == ""
        assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))


def test_an_edited_event_fails_verification(histories):
    events = alice_events(histories)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE restitution_accessevent SET record_count = coalesce(record_count, 0) + 7 "
                       "WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError, match="verification failed"):
        verify()
    call_command("verify_history", customer=histories.bob.reference)  # bob's chain is untouched


def test_an_edited_detail_fails_verification(histories):
    events = alice_events(histories)
    with connection.cursor() as cursor:
        cursor.execute("""UPDATE restitution_accessevent SET detail = '{"reason": "audit"}' WHERE id = %s""",
                       [events[1].pk])
    with pytest.raises(CommandError):
        verify()


def test_a_deleted_event_fails_verification(histories):
    events = alice_events(histories)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM restitution_accessevent WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError):
        verify()


def test_reordered_events_fail_verification(histories):
    first, second = alice_events(histories)[1:3]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE restitution_accessevent SET chain_seq = 0 WHERE id = %s", [first.pk])
        cursor.execute("UPDATE restitution_accessevent SET chain_seq = %s WHERE id = %s",
                       [first.chain_seq, second.pk])
        cursor.execute("UPDATE restitution_accessevent SET chain_seq = %s WHERE id = %s",
                       [second.chain_seq, first.pk])
    with pytest.raises(CommandError):
        verify()


def test_a_recomputed_chain_after_an_edit_is_caught_by_the_customers_signed_copy(histories):
    """Rewriting an event and every hash after it passes the chain check, but no longer matches
    the head the customer downloaded and the gateway signed."""
    browser = Client()
    browser.force_login(histories.alice.user)
    held = browser.get("/account/history.json").json()
    assert held["head"] == alice_events(histories)[-1].hash


def test_the_signed_download_verifies_with_the_documented_algorithm_alone(histories):
    browser = Client()
    browser.force_login(histories.alice.user)
    response = browser.get("/account/history.json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    body = response.json()
    assert body["algorithm"] == "sha256-chain-v1" and body["count"] == len(body["events"]) >= 5
    previous = ""
    for position, event in enumerate(body["events"], start=1):
        assert event["chain_seq"] == position and event["prev_hash"] == previous
        values = [previous] + ["" if event[name] is None else str(event[name]) for name in body["fields"]]
        previous = hashlib.sha256("\n".join(values).encode()).hexdigest()
        assert previous == event["hash"]
    assert body["head"] == previous
    # Only alice's own events: bob's never appear in her history.
    assert {e["customer_id"] for e in body["events"]} == {histories.alice.pk}
    # The signature binds her reference, the count and the head: a changed head no longer matches it.
    from django.core import signing

    signer = signing.Signer(salt="restitution.history")
    assert body["signature"] == signer.signature(f"{body['customer']}:{body['count']}:{body['head']}")
    assert body["signature"] != signer.signature(f"{body['customer']}:{body['count']}:{'0' * 64}")


def test_anyone_verifies_the_downloaded_head_with_the_published_public_key(histories, settings):
    """The head_token is an EdDSA JWT: a third party needs only /.well-known/restitution-history-keys."""
    import jwt

    from restitution import crypto

    browser = Client()
    browser.force_login(histories.alice.user)
    body = browser.get("/account/history.json").json()
    published = Client().get("/.well-known/restitution-history-keys")  # no login: public keys only
    assert published.status_code == 200 and published["Content-Type"] == "application/jwk-set+json"
    jwks = published.json()
    assert all(set(key) == {"kty", "crv", "x", "kid", "use", "alg"} for key in jwks["keys"])  # nothing private
    header = jwt.get_unverified_header(body["head_token"])
    assert header["alg"] == "EdDSA" and header["typ"] == "history-head+jwt"
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(body["head_token"], key, algorithms=["EdDSA"])
    assert (claims["sub"], claims["history_count"], claims["history_head"]) == (
        body["customer"], body["count"], body["head"])
    assert claims["iss"] == settings.GATEWAY_ISSUER

    # Refused: a head changed in the token (the signature no longer matches) ...
    head, payload, signature = body["head_token"].split(".")
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "history_head": "0" * 64}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{forged}.{signature}", key, algorithms=["EdDSA"])
    # ... and a token signed by any other key, even one naming the published kid.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(other, key, algorithms=["EdDSA"])

    # Rotation: a new key signs, the old one stays published, so copies already held still verify.
    settings.GATEWAY_HISTORY_SIGNING_KEYS = [crypto.generate_history_key(), crypto.generate_history_key()]
    crypto.reset_keys()
    try:
        first = crypto.sign_history_head({"sub": "x"})
        settings.GATEWAY_HISTORY_SIGNING_KEYS = [crypto.generate_history_key(), *settings.GATEWAY_HISTORY_SIGNING_KEYS]
        crypto.reset_keys()
        rotated = Client().get("/.well-known/restitution-history-keys").json()["keys"]
        assert len(rotated) == 3
        old = next(jwt.PyJWK(k) for k in rotated if k["kid"] == jwt.get_unverified_header(first)["kid"])
        assert jwt.decode(first, old, algorithms=["EdDSA"]) == {"sub": "x"}
        assert jwt.get_unverified_header(crypto.sign_history_head({}))["kid"] == rotated[0]["kid"]
    finally:
        settings.GATEWAY_HISTORY_SIGNING_KEYS = []
        crypto.reset_keys()


def test_the_history_download_needs_a_login(histories):
    response = Client().get("/account/history.json")
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_for_one_customer_keep_one_unbroken_chain(personas):
    """Eight threads, each with its own connection, write events for alice at once: the trigger
    serialises them per customer, so the chain has no fork and no gap."""
    import threading

    from django.db import connections

    from restitution import audit

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        try:
            start.wait()
            for _ in range(15):
                audit.record_event(kind=AccessEvent.Kind.DATA_READ, customer=personas.alice, client=personas.trusted,
                                   record_count=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    positions = list(AccessEvent.objects.filter(customer=personas.alice).order_by("chain_seq")
                     .values_list("chain_seq", flat=True))
    assert positions == list(range(1, 121))
    assert audit.verify_chains() == []
