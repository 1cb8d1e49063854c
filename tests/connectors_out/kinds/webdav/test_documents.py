"""WebDAV: records' files go with them — invoice PDFs land next to the invoices in a Nextcloud
folder, byte for byte."""

from __future__ import annotations

import hashlib

from connectors_out.models import Delivery
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import WebDavPeer
from tests.connectors_out.readback import invoice_documents


def test_invoice_pdfs_land_next_to_the_invoices_in_a_nextcloud(invoice_customer, tmp_peer_dir, peers_log_dir):
    documents = invoice_documents(invoice_customer.customer)
    assert len(documents) >= 10
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    try:
        destination = connect(invoice_customer, "webdav", *webdav.connection())
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        assert {k: d["data"] for k, d in webdav.read_all().items()} == invoice_customer.truth()
        folder = tmp_peer_dir / "Restitution" / "telco-invoices" / "files"
        stored = {hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}
        assert stored == set(documents)
        assert Delivery.objects.get(destination=destination).files == len(documents)
    finally:
        webdav.process.stop()


