"""What the push tests compare a cloud's contents with: the customer's records as the portability
API gives them to an app the customer granted, and the documents their live records name (shared
by every kind's read-back tests)."""

from __future__ import annotations

import hashlib

from django.test import Client

from connectors_out.delivery import named_documents
from restitution.models import Document, PimsClient, Record
from tests.api.test_demo_api import grant_everything, page_all

RECORD_FIELDS = ("dataset", "key", "date", "extracted_at", "data")


def invoice_documents(customer) -> dict[str, str]:
    """sha256 → record key, of the customer's invoice PDFs."""
    return dict(Document.objects.filter(customer=customer, dataset__slug="telco-invoices")
                .values_list("sha256", "record_key"))


def live_document_hashes(customer) -> list[str]:
    """The sha256 of the documents the customer's live invoices name (what the API serves)."""
    return sorted(sha for data in Record.objects.filter(customer=customer, deleted=False,
                                                         dataset__slug="telco-invoices").values_list("data", flat=True)
                  for sha in named_documents(data))


def api_records(demo) -> dict[tuple[str, str], dict]:
    """The customer's live records as the portability API pages them out to an app they granted."""
    app = PimsClient.objects.get_or_create(
        client_id="readback", defaults={"name": "Read back", "client_type": PimsClient.CLIENT_PUBLIC,
                                        "authorization_grant_type": PimsClient.GRANT_AUTHORIZATION_CODE,
                                        "redirect_uris": "https://readback.example/cb", "algorithm": "",
                                        "approval": PimsClient.Approval.APPROVED})[0]
    token = grant_everything(demo.customer, app)
    found = {}
    for dataset in demo.datasets:
        for item in page_all(Client(), token, f"/api/v1/datasets/{dataset.slug}/records?page_size=1000"):
            found[(dataset.slug, item["key"])] = {"dataset": dataset.slug, **item}
    return found


def live_documents(demo) -> dict[str, bytes]:
    """sha256 → bytes of every document the customer's live invoices name (as the API serves them)."""
    named = set(live_document_hashes(demo.customer))
    documents = {}
    for document in Document.objects.filter(customer=demo.customer, sha256__in=named):
        with document.file.open("rb") as handle:
            documents[document.sha256] = handle.read()
    assert set(documents) == named
    return documents


def records_equal_the_api(read: list[dict], demo) -> None:
    api = api_records(demo)
    keyed = {}
    for document in read:
        key = (document["dataset"], document["key"])
        assert key not in keyed, f"two resources for {key}"
        keyed[key] = {field: document[field] for field in RECORD_FIELDS}
    assert keyed == {key: {field: item.get(field) for field in RECORD_FIELDS} for key, item in api.items()}
    assert len(keyed) == len(api) >= 10


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
