"""A record that has a document links it (`document_url`, API 1.1.0): the link, followed as
given (resolved against the page's URL), is the PDF, in every format and in the change feed; a
record without a document has no link."""

from __future__ import annotations

import json
from urllib.parse import urljoin

import pytest

from tests.api.test_document_accept import PDF, invoice  # noqa: F401 (fixture)
from tests.api.test_records_api import _curve, get, write
from tests.personas import CURVE

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(flow, invoice, personas):  # noqa: F811
    write(personas.alice, CURVE, [_curve(2)])
    return flow.tokens(datasets=[CURVE, "telco-invoices"],
                       scope="dataset:energy-load-curve dataset:telco-invoices")["access_token"]


def _follow(flow, token, page_url: str, link: str) -> bytes:
    response = get(flow, token, urljoin(page_url, link), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("path", ["/api/v1/datasets/telco-invoices/records", "/api/v1/changes?since=0"])
def test_the_link_of_a_record_is_its_document(flow, token, invoice, path):  # noqa: F811
    url = "http://testserver" + path
    items = get(flow, token, path).json()["items"]
    invoices = [i for i in items if i["dataset"] == "telco-invoices"]
    assert len(invoices) == 1
    assert invoices[0]["document_url"] == f"/api/v1/datasets/telco-invoices/documents/{invoice}"
    assert _follow(flow, token, url, invoices[0]["document_url"]) == PDF
    # The other side: a record without a document carries no link.
    assert all("document_url" not in i for i in items if i["dataset"] == CURVE)


def test_the_ndjson_item_links_it_too(flow, token, invoice):  # noqa: F811
    response = get(flow, token, "/api/v1/datasets/telco-invoices/records?format=ndjson")
    (line,) = [json.loads(text) for text in response.content.decode().splitlines()]
    assert line["document_url"] == f"/api/v1/datasets/telco-invoices/documents/{invoice}"


def test_the_openapi_description_declares_the_link_and_the_version(client, personas):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["info"]["version"] == "1.3.0"
    record = schema["components"]["schemas"]["Record"]
    assert "document_url" in record["properties"] and "document_url" not in record["required"]
