"""The bearer check in one query (restitution/bearer.py): the same objects as the ORM, and every
refusal seen on the very next call — nothing about a grant is kept between requests."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from restitution import bearer, consent
from restitution.models import Dataset, Grant
from tests.api.test_isolation_property import issue_token
from tests.api.test_records_api import get
from tests.personas import CONTRACTS, CURVE


def _load(raw: str):
    return bearer.load(hashlib.sha256(raw.encode()).hexdigest(), now=timezone.now())


def test_one_query_gives_what_the_orm_gives(personas):
    datasets = list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets,
                                 duration="3m", window_start=timezone.now().date() - timedelta(days=30))
    raw = issue_token(grant)
    with CaptureQueriesContext(connection) as queries:
        token = _load(raw)
        loaded = token.consent_grant
        seen = (token.application.client_id, token.user.username, token.user.customer.reference,
                loaded.customer.reference, loaded.client.client_id,
                [(d.slug, d.title_fr, d.is_published, d.natural_key) for d in loaded.datasets.all()])
    assert len(queries) == 1

    reference = get_access_token_model().objects.get(pk=token.pk)
    expected = Grant.objects.get(pk=grant.pk)
    assert (token.token, token.scope, token.expires, token.user_id) == (
        reference.token, reference.scope, reference.expires, reference.user_id)
    assert (loaded.pk, loaded.window_start, loaded.window_end, loaded.expires_at, loaded.is_one_time) == (
        expected.pk, expected.window_start, expected.window_end, expected.expires_at, expected.is_one_time)
    assert seen == (personas.trusted.client_id, personas.alice.user.username, personas.alice.reference,
                    personas.alice.reference, personas.trusted.client_id,
                    [(d.slug, d.title_fr, d.is_published, d.natural_key) for d in expected.datasets.all()])
    # Deferred, not lost: the large fields are read when something asks for them.
    assert loaded.receipt == expected.receipt
    assert [d.schema for d in loaded.datasets.all()] == [d.schema for d in expected.datasets.all()]


def test_an_unknown_token_is_none(personas):
    assert _load("not-a-token") is None


def test_a_grant_past_its_expiry_refuses_its_token_on_the_next_call(flow, personas):
    token = flow.tokens()["access_token"]
    assert flow.me(token).status_code == 200
    # No expiry task has run: the token row still exists; the grant's date alone must refuse it.
    Grant.objects.filter(customer=personas.alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = flow.me(token)
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]


def test_an_ended_grant_refuses_its_token_on_the_next_call(flow, personas):
    token = flow.tokens()["access_token"]
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 200
    Grant.objects.filter(customer=personas.alice).update(ended_at=timezone.now())
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 401


def test_a_dataset_withdrawn_from_publication_is_a_404_on_the_next_call(flow):
    token = flow.tokens()["access_token"]
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 200
    Dataset.objects.filter(slug=CURVE).update(is_published=False)
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 404


def test_a_token_of_a_user_who_is_no_customer_is_refused(personas):
    staff = get_user_model().objects.create_user("operator", password="x" * 20)
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=[Dataset.objects.get(slug=CURVE)], duration="1m")
    raw = issue_token(grant)
    get_access_token_model().objects.filter(application=personas.trusted).update(user=staff)
    token = _load(raw)
    assert token is not None and token.consent_grant is None
    from django.test import Client

    response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
