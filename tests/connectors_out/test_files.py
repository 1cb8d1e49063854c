"""Records' files at every kind of cloud: a record's files are the ones its current version names —
a deleted record's files are removed, a re-issued document replaces the old one, which is never
sent again. (Each kind's own reading of files is in tests/connectors_out/kinds/<kind>/.)"""

from __future__ import annotations

import pytest

from connectors_out.models import Delivery
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import CozyPeer, RemoteStoragePeer, SolidPeer, WebDavPeer
from tests.connectors_out.readback import live_document_hashes


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


def test_deleted_and_reissued_documents_leave_no_orphan_and_no_old_copy(changing_telco, file_peer):
    demo, telco = changing_telco
    destination = file_peer.connect(demo) if hasattr(file_peer, "connect") else connect(
        demo, file_peer.kind, *file_peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert file_peer.file_hashes("telco-invoices") == live_document_hashes(demo.customer)

    keys = sorted(key for _, key in demo.stored())
    reissued, withdrawn = keys[0], keys[1]
    old = set(live_document_hashes(demo.customer))
    telco.reissue(reissued)
    telco.withdraw(withdrawn)
    demo.extract("telco-billing")
    now = live_document_hashes(demo.customer)
    assert len(now) == len(old) - 1 and len(set(now) - old) == 1  # one new PDF, two old ones gone

    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert file_peer.file_hashes("telco-invoices") == now  # sorted lists: no duplicate, no orphan
    assert {k: d["data"] for k, d in file_peer.read_all().items()} == demo.stored()
    last = Delivery.objects.filter(destination=destination).first()
    assert (last.written, last.removed, last.files) == (1, 1, 1)  # the old PDF was not sent again
    if isinstance(file_peer, CozyPeer):  # the withdrawn invoice's bill went with it
        bills = file_peer.bills()
        assert sorted(b["restitution"]["key"] for b in bills) == sorted(k for k in keys if k != withdrawn)
