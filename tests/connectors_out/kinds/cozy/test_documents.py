"""Cozy: invoice PDFs land in the Cozy's drive with an `io.cozy.bills` document linked to each
file; pushing everything again adds no file and no bill."""

from __future__ import annotations

import httpx

from connectors_out.kinds.cozy.transport import BILLS_DOCTYPE, doctype
from tests.connectors_out.conftest import run_queued
from tests.connectors_out.peers import CozyPeer
from tests.connectors_out.readback import invoice_documents


def test_invoice_pdfs_become_cozy_bills_linked_to_their_file(invoice_customer, tmp_peer_dir, peers_log_dir):
    documents = invoice_documents(invoice_customer.customer)
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
