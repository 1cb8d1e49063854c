"""What a personal cloud holds, read back with the client library of the cloud's own ecosystem
(not with the gateway's transports): WebDAV through `webdav4` (PyPI), Solid through
@inrupt/solid-client (npm) logged in with client credentials. Every record equals what the API
gives the customer, every document is byte-identical to the one the API serves, and after an
invoice is withdrawn and another's PDF re-issued the cloud holds no orphan and no duplicate."""

from __future__ import annotations

import hashlib

from django.test import Client

from connectors_out.kinds.solid.transport import RECORD_CLASS
from restitution.models import Document, PimsClient
from tests.api.test_demo_api import grant_everything, page_all
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import SolidPeer, WebDavPeer
from tests.connectors_out.test_files import _named

RECORD_FIELDS = ("dataset", "key", "date", "extracted_at", "data")


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


def _documents(demo) -> dict[str, bytes]:
    """sha256 → bytes of every document the customer's live invoices name (as the API serves them)."""
    named = set(_named(demo.customer))
    documents = {}
    for document in Document.objects.filter(customer=demo.customer, sha256__in=named):
        with document.file.open("rb") as handle:
            documents[document.sha256] = handle.read()
    assert set(documents) == named
    return documents


def _records_equal_the_api(read: list[dict], demo) -> None:
    api = api_records(demo)
    keyed = {}
    for document in read:
        key = (document["dataset"], document["key"])
        assert key not in keyed, f"two resources for {key}"
        keyed[key] = {field: document[field] for field in RECORD_FIELDS}
    assert keyed == {key: {field: item.get(field) for field in RECORD_FIELDS} for key, item in api.items()}
    assert len(keyed) == len(api) >= 10


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_webdav4_reads_every_record_and_document_and_no_orphan_after_changes(changing_telco, tmp_peer_dir,
                                                                             peers_log_dir):
    demo, telco = changing_telco
    peer = WebDavPeer(tmp_peer_dir, peers_log_dir)
    peer.process.start()
    try:
        destination = connect(demo, "webdav", *peer.connection())
        assert [o.status for o in run_queued(destination)] == ["succeeded"]

        def check() -> None:
            records, files = peer.read_with_webdav4()
            _records_equal_the_api(list(records.values()), demo)
            documents = _documents(demo)
            # byte-identical, one file per document the records name, no other file
            assert sorted(_sha(content) for content in files.values()) == sorted(documents)
            for content in files.values():
                assert content == documents[_sha(content)]
            assert all(path.startswith("Restitution/telco-invoices/") for path in [*records, *files]), [*records]

        check()
        keys = sorted(key for _, key in demo.stored())
        telco.reissue(keys[0])
        telco.withdraw(keys[1])
        demo.extract("telco-billing")
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        check()
        records, _ = peer.read_with_webdav4()
        assert keys[1] not in {document["key"] for document in records.values()}
    finally:
        peer.process.stop()


def test_solid_client_reads_the_pod_and_finds_the_containers_in_the_type_index(changing_telco, solid_server):
    demo, telco = changing_telco
    peer = SolidPeer(solid_server)
    destination = connect(demo, "solid", *peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]

    def check() -> dict:
        read = peer.read_with_library()
        assert read["webId"] == f"{solid_server.base}alice/profile/card#me"
        _records_equal_the_api(list(read["records"].values()), demo)
        assert sorted(url[:-len(".ttl")] for url in read["turtle"]) == sorted(
            url[:-len(".jsonld")] for url in read["records"])  # each record's Turtle, and no other
        assert read["others"] == []
        documents = _documents(demo)
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
