"""Records' files go with them: invoice PDFs land next to the invoices in a Nextcloud, and in
a Cozy's drive with an `io.cozy.bills` document linked to each; pushing again adds nothing."""

from __future__ import annotations

import hashlib

import httpx

from connectors_out.kinds.cozy.transport import BILLS_DOCTYPE, doctype
from connectors_out.models import Delivery
from restitution.models import Document
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import CozyPeer, WebDavPeer


def _documents(customer) -> dict[str, str]:
    """sha256 → record key, of the customer's invoice PDFs."""
    return dict(Document.objects.filter(customer=customer, dataset__slug="telco-invoices")
                .values_list("sha256", "record_key"))


def test_invoice_pdfs_land_next_to_the_invoices_in_a_nextcloud(invoice_customer, tmp_peer_dir, peers_log_dir):
    documents = _documents(invoice_customer.customer)
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


def test_invoice_pdfs_become_cozy_bills_linked_to_their_file(invoice_customer, tmp_peer_dir, peers_log_dir):
    documents = _documents(invoice_customer.customer)
    cozy = CozyPeer(tmp_peer_dir, peers_log_dir)
    cozy.process.start()
    try:
        destination = cozy.connect(invoice_customer)
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        assert {k: d["data"] for k, d in cozy.read_all().items()} == invoice_customer.truth()
        owner = {"Authorization": f"Bearer {cozy.owner}"}
        bills = httpx.get(f"{cozy.instance}/data/{BILLS_DOCTYPE}/_all_docs", params={"include_docs": "true"},
                          headers=owner).json()["rows"]
        assert len(bills) == len(documents)
        truth = invoice_customer.truth()
        for row in bills:
            bill = row["doc"]
            file_id = bill["invoice"].removeprefix("io.cozy.files:")
            pdf = httpx.get(f"{cozy.instance}/files/{file_id}", headers=owner).json()["data"]["attributes"]
            assert documents[pdf["sha256"]] == bill["restitution"]["key"]
            assert bill["amount"] == truth[("telco-invoices", bill["restitution"]["key"])]["amount_incl_tax"]
        # pushing everything again (as after a lost confirmation) adds no file and no bill
        destination.delivered_seq = 0
        destination.save(update_fields=["delivered_seq"])
        from connectors_out import delivery

        delivery.queue_delivery(destination=destination, trigger="retry")
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        again = httpx.get(f"{cozy.instance}/data/{BILLS_DOCTYPE}/_all_docs", headers=owner).json()["rows"]
        assert len(again) == len(documents) and len(cozy.read_all()) == len(truth)
        records = httpx.get(f"{cozy.instance}/data/{doctype('telco-invoices')}/_all_docs", headers=owner).json()
        assert {r["value"]["rev"][:2] for r in records["rows"]} == {"2-"}  # updated in place, not added
    finally:
        cozy.process.stop()
