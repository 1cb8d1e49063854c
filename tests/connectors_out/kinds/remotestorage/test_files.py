"""remoteStorage: apps read the invoice PDFs through remotestorage.js byte for byte (stored as
`application/pdf; charset=binary`), plain HTTP gives the same bytes, and records carry their
`@context`."""

from __future__ import annotations

import hashlib

from connectors_out.kinds.remotestorage.transport import RECORD_CONTEXT
from restitution.models import Document
from tests.connectors_out.conftest import run_queued
from tests.connectors_out.peers import RemoteStoragePeer
from tests.connectors_out.readback import invoice_documents


def test_remotestorage_apps_read_the_invoice_pdfs_byte_for_byte(invoice_customer, armadietto):
    documents = invoice_documents(invoice_customer.customer)
    sizes = dict(Document.objects.filter(customer=invoice_customer.customer).values_list("sha256", "size"))
    storage = RemoteStoragePeer(armadietto)
    destination = storage.connect(invoice_customer)
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    stored = storage.file_types("telco-invoices")
    assert len(stored) == len(documents) >= 10
    assert set(stored.values()) == {"application/pdf; charset=binary"}

    read = storage.read_with_library([f"telco-invoices/files/{name}" for name in stored])
    assert {item["sha256"] for item in read.values()} == set(documents)
    for item in read.values():
        assert not item["text"], "remotestorage.js decoded a PDF as text"
        assert item["length"] == sizes[item["sha256"]]
        assert item["contentType"].startswith("application/pdf")
    # plain HTTP gives the same bytes
    with storage._http() as http:
        for name in stored:
            body = http.get(f"{storage.root}telco-invoices/files/{name}").content
            assert hashlib.sha256(body).hexdigest() in documents
    # and each record says what it is, as remoteStorage modules' documents do
    assert {document["@context"] for document in storage.read_all().values()} == {RECORD_CONTEXT}
