"""WebDAV: what the folder holds, read back with `webdav4` (PyPI) rather than the gateway's
transport. Every record equals what the API gives the customer, every document is byte-identical
to the one the API serves, and after an invoice is withdrawn and another's PDF re-issued the
folder holds no orphan and no duplicate."""

from __future__ import annotations

from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import WebDavPeer
from tests.connectors_out.readback import live_documents, records_equal_the_api, sha256_of


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
            records_equal_the_api(list(records.values()), demo)
            documents = live_documents(demo)
            # byte-identical, one file per document the records name, no other file
            assert sorted(sha256_of(content) for content in files.values()) == sorted(documents)
            for content in files.values():
                assert content == documents[sha256_of(content)]
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


