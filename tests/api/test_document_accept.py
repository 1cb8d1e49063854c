"""A document asked with its own media type (`Accept: application/pdf`, as the OpenAPI
description declares it) is served, not refused with 406; an error asked that way is still a
JSON problem; a record's document stays private to its customer."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile

from restitution.models import Dataset, Document
from tests.api.test_records_api import get, write
from tests.personas import CURVE

PDF = b"%PDF-1.4\n% an invoice\n"


@pytest.fixture
def invoice(personas):
    invoices = Dataset.objects.get(slug="telco-invoices")
    personas.trusted.allowed_datasets.add(invoices)
    digest = hashlib.sha256(PDF).hexdigest()
    write(personas.alice, "telco-invoices", [{
        "invoice_id": "F1", "issued_on": "2025-01-31", "period_start": "2025-01-01", "period_end": "2025-01-31",
        "amount_incl_tax": 19.99, "currency": "EUR", "status": "paid",
        "document": {"filename": "F1.pdf", "content_type": "application/pdf", "size": len(PDF), "sha256": digest}}])
    document = Document(customer=personas.alice, dataset=invoices, record_key="F1", filename="F1.pdf",
                        content_type="application/pdf", size=len(PDF), sha256=digest)
    document.file.save("F1.pdf", ContentFile(PDF), save=True)
    return digest


@pytest.mark.parametrize("accept", ["application/pdf", "application/pdf, application/problem+json;q=0.5", "*/*",
                                    "application/*"])
def test_a_document_asked_as_pdf_is_the_pdf(flow, invoice, accept):
    token = flow.tokens(datasets=[CURVE, "telco-invoices"], scope="dataset:energy-load-curve dataset:telco-invoices"
                        )["access_token"]
    response = get(flow, token, f"/api/v1/datasets/telco-invoices/documents/{invoice}", HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF


def test_a_missing_document_asked_as_pdf_is_a_json_problem(flow, invoice):
    token = flow.tokens(datasets=[CURVE, "telco-invoices"], scope="dataset:energy-load-curve dataset:telco-invoices"
                        )["access_token"]
    response = get(flow, token, f"/api/v1/datasets/telco-invoices/documents/{'0' * 64}", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json" and response.json()["code"] == "not_found"
    # Without a token, asked as PDF: a JSON problem with its challenge, never a PDF-typed error.
    anonymous = flow.api.get(f"/api/v1/datasets/telco-invoices/documents/{invoice}", HTTP_ACCEPT="application/pdf")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "authentication_required"
    assert anonymous["Content-Type"] == "application/problem+json"
