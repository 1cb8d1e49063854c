"""Paging through the API gives every demo customer exactly their ground truth; after a legacy
change, `since` gives exactly the changes and the deletions."""

from __future__ import annotations

import pytest
from django.test import Client

from demo.install import install_demo
from restitution import consent
from restitution.models import Customer, Dataset, PimsClient
from tests.api.test_isolation_property import issue_token
from tests.conftest import demo_env_for, load_ground_truth, reset_rate_limits
from tests.extraction.test_demo_extraction import extract_all


def page_all(client: Client, token: str, url: str) -> list[dict]:
    items = []
    while url:
        reset_rate_limits()
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        items += body["items"]
        url = body["next"]
    return items


def grant_everything(customer: Customer, trusted: PimsClient) -> str:
    datasets = list(Dataset.objects.all())
    trusted.allowed_datasets.set(datasets)
    grant = consent.create_grant(customer=customer, client=trusted, datasets=datasets, duration="12m")
    return issue_token(grant)


@pytest.mark.django_db
def test_every_demo_customer_pages_out_exactly_their_ground_truth(fresh_demo_dir, telco_server, monkeypatch,
                                                                  flush_gate):
    from demo.generator import apply_changes

    for name, value in demo_env_for(fresh_demo_dir, telco_server).items():
        monkeypatch.setenv(name, value)
    install_demo(fresh_demo_dir)
    trusted = PimsClient.objects.create(name="Mirror", client_id="mirror", client_type=PimsClient.CLIENT_PUBLIC,
                                        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE,
                                        redirect_uris="https://mirror.example/cb", algorithm="",
                                        approval=PimsClient.Approval.APPROVED)
    extract_all()
    truth = load_ground_truth(fresh_demo_dir)
    client = Client()
    tokens, last_seq = {}, {}
    for customer in Customer.objects.filter(identities__isnull=False).distinct():
        tokens[customer.reference] = token = grant_everything(customer, trusted)
        for dataset in Dataset.objects.all():
            items = page_all(client, token, f"/api/v1/datasets/{dataset.slug}/records?page_size=1000")
            got = {(customer.reference, dataset.slug, i["key"]): i["data"] for i in items}
            expected = {k: v for k, v in truth.items() if k[0] == customer.reference and k[1] == dataset.slug}
            assert got == expected, (customer.reference, dataset.slug)
        last_seq[customer.reference] = max(
            [0] + [i["seq"] for i in page_all(client, token, "/api/v1/changes?page_size=1000")])

    change = apply_changes(fresh_demo_dir)
    extract_all()
    alice = next(c for c in Customer.objects.all() if c.user and c.user.username == "alice")
    delta = page_all(client, tokens[alice.reference], f"/api/v1/changes?since={last_seq[alice.reference]}")
    seen = {(i["dataset"], i["key"], bool(i.get("deleted"))) for i in delta}
    expected = ({(c["dataset"], c["key"], False) for c in change["updated"] + change["created"]}
                | {(c["dataset"], c["key"], True) for c in change["deleted"]})
    assert seen == expected
    new_truth = load_ground_truth(fresh_demo_dir)
    for item in delta:
        if not item.get("deleted"):
            assert item["data"] == new_truth[(alice.reference, item["dataset"], item["key"])]
