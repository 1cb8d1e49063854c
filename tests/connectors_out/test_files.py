"""Records' files at every kind of cloud, read back by the cloud's own clients: byte-identical
documents (remoteStorage apps read them through remotestorage.js); a record's files are the ones
its current version names — a deleted record's files are removed, a re-issued document replaces
the old one, which is never sent again."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from connectors_out.delivery import named_documents
from connectors_out.kinds.remotestorage.transport import RECORD_CONTEXT
from connectors_out.kinds.solid.transport import RECORD_CLASS, SOLID_TERMS
from connectors_out.models import Delivery
from restitution.models import Document, Record
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import CozyPeer, RemoteStoragePeer, SolidPeer, WebDavPeer


def _documents(customer) -> dict[str, str]:
    """sha256 → record key, of the customer's invoice PDFs."""
    return dict(Document.objects.filter(customer=customer, dataset__slug="telco-invoices")
                .values_list("sha256", "record_key"))


def test_remotestorage_apps_read_the_invoice_pdfs_byte_for_byte(invoice_customer, armadietto):
    documents = _documents(invoice_customer.customer)
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


def test_a_solid_pod_lists_the_containers_in_its_type_index(demo_customer, solid_server):
    solid = SolidPeer(solid_server)
    destination = connect(demo_customer, "solid", *solid.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    transport = solid._transport()
    try:
        webid = f"{solid_server.base}alice/profile/card#me"
        profile = transport._call("GET", webid.split("#")[0], what="read",
                                  headers={"Accept": "application/ld+json"}).json()
        me = next(node for node in profile if node.get("@id") == webid)
        index = me[f"{SOLID_TERMS}privateTypeIndex"][0]["@id"]
        graph = transport._call("GET", index, what="read", headers={"Accept": "application/ld+json"}).json()
        registered = [value["@id"] for node in graph if {"@id": RECORD_CLASS} in node.get(f"{SOLID_TERMS}forClass", [])
                      for value in node[f"{SOLID_TERMS}instanceContainer"]]
        assert len(registered) == len(set(registered))  # one registration per container, once
        assert {f"{solid.container}{d.slug}/" for d in demo_customer.datasets} <= set(registered)
        # a second delivery (a record changed) registers nothing twice
        demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        assert Delivery.objects.filter(destination=destination).first().written == 1
        graph = transport._call("GET", index, what="read", headers={"Accept": "application/ld+json"}).json()
        again = [value["@id"] for node in graph if {"@id": RECORD_CLASS} in node.get(f"{SOLID_TERMS}forClass", [])
                 for value in node[f"{SOLID_TERMS}instanceContainer"]]
        assert sorted(again) == sorted(registered)
        # private: no one else reads it
        assert httpx.get(index).status_code in (401, 403)
    finally:
        transport.close()


# --- A record's files are the ones its current version names ------------------------------------

@pytest.fixture(params=["webdav", "solid", "remotestorage", "cozy"])
def file_peer(request, tmp_peer_dir, peers_log_dir):
    if request.param == "webdav":
        peer = WebDavPeer(tmp_peer_dir, peers_log_dir)
    elif request.param == "cozy":
        peer = CozyPeer(tmp_peer_dir, peers_log_dir)
    elif request.param == "solid":
        yield SolidPeer(request.getfixturevalue("solid_server"))
        return
    else:
        yield RemoteStoragePeer(request.getfixturevalue("armadietto"))
        return
    peer.process.start()
    yield peer
    peer.process.stop()


def _named(customer) -> list[str]:
    """The sha256 of the documents the customer's live invoices name (what the API serves)."""
    return sorted(sha for data in Record.objects.filter(customer=customer, deleted=False,
                                                         dataset__slug="telco-invoices").values_list("data", flat=True)
                  for sha in named_documents(data))


def test_deleted_and_reissued_documents_leave_no_orphan_and_no_old_copy(changing_telco, file_peer):
    demo, telco = changing_telco
    destination = file_peer.connect(demo) if hasattr(file_peer, "connect") else connect(
        demo, file_peer.kind, *file_peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert file_peer.file_hashes("telco-invoices") == _named(demo.customer)

    keys = sorted(key for _, key in demo.stored())
    reissued, withdrawn = keys[0], keys[1]
    old = set(_named(demo.customer))
    telco.reissue(reissued)
    telco.withdraw(withdrawn)
    demo.extract("telco-billing")
    now = _named(demo.customer)
    assert len(now) == len(old) - 1 and len(set(now) - old) == 1  # one new PDF, two old ones gone

    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert file_peer.file_hashes("telco-invoices") == now  # sorted lists: no duplicate, no orphan
    assert {k: d["data"] for k, d in file_peer.read_all().items()} == demo.stored()
    last = Delivery.objects.filter(destination=destination).first()
    assert (last.written, last.removed, last.files) == (1, 1, 1)  # the old PDF was not sent again
    if isinstance(file_peer, CozyPeer):  # the withdrawn invoice's bill went with it
        bills = file_peer.bills()
        assert sorted(b["restitution"]["key"] for b in bills) == sorted(k for k in keys if k != withdrawn)
