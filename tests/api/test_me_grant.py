"""`/me` names the data holder and the consent the token speaks for: its id, period and
datasets; a new consent is a new id."""

from __future__ import annotations

from django.conf import settings

from restitution.models import Grant
from tests.personas import CONTRACTS, CURVE


def test_me_names_the_grant_its_period_and_datasets(flow, personas):
    first = flow.tokens(datasets=[CURVE, CONTRACTS], window_start="2025-01-01", window_end="2025-06-30")
    me = flow.me(first["access_token"]).json()
    grant = Grant.objects.get(customer=personas.alice, revoked_at__isnull=True)
    assert me["grant"]["id"] == str(grant.receipt_id)
    assert me["grant"]["period"] == {"from": "2025-01-01", "to": "2025-06-30"}
    assert me["grant"]["datasets"] == sorted([CURVE, CONTRACTS])
    assert me["grant"]["expires_at"] and me["grant"]["created_at"]
    assert me["holder"] == {"name": settings.GATEWAY_HOLDER_NAME, "contact": settings.GATEWAY_HOLDER_CONTACT}

    # A new consent (it replaces the first): a new id and its own period; the old token is refused.
    second = flow.tokens(datasets=[CURVE], window_start="", window_end="")
    again = flow.me(second["access_token"]).json()
    assert again["grant"]["id"] != me["grant"]["id"]
    assert again["grant"]["period"] == {"from": None, "to": None} and again["grant"]["datasets"] == [CURVE]
    assert flow.me(first["access_token"]).status_code == 401
