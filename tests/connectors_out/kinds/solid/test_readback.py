"""Solid: what the pod holds, read back with @inrupt/solid-client (npm) logged in with the pod
owner's client credentials, rather than the gateway's transport. Every record equals what the API
gives the customer (each with its Turtle beside it, nothing else), every document is
byte-identical to the one the API serves, the containers are found through the type index, and
after an invoice is withdrawn and another's PDF re-issued the pod holds no orphan."""

from __future__ import annotations

from connectors_out.kinds.solid.transport import RECORD_CLASS
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import SolidPeer
from tests.connectors_out.readback import live_documents, records_equal_the_api


def test_solid_client_reads_the_pod_and_finds_the_containers_in_the_type_index(changing_telco, solid_server):
    demo, telco = changing_telco
    peer = SolidPeer(solid_server)
    destination = connect(demo, "solid", *peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]

    def check() -> dict:
        read = peer.read_with_library()
        assert read["webId"] == f"{solid_server.base}alice/profile/card#me"
        records_equal_the_api(list(read["records"].values()), demo)
        assert sorted(url[:-len(".ttl")] for url in read["turtle"]) == sorted(
            url[:-len(".jsonld")] for url in read["records"])  # each record's Turtle, and no other
        assert read["others"] == []
        documents = live_documents(demo)
        assert sorted(item["sha256"] for item in read["files"].values()) == sorted(documents)
        for item in read["files"].values():
            assert item["length"] == len(documents[item["sha256"]])
            assert item["contentType"].startswith("application/pdf")
        registered = [r["instanceContainer"] for r in read["registrations"] if r["forClass"] == RECORD_CLASS]
        assert f"{peer.container}telco-invoices/" in registered
        assert len(registered) == len(set(registered))
        return read

    check()
    keys = sorted(key for _, key in demo.stored())
    telco.reissue(keys[0])
    telco.withdraw(keys[1])
    demo.extract("telco-billing")
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    read = check()
    assert keys[1] not in {document["key"] for document in read["records"].values()}
