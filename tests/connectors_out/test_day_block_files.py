"""A pushed load curve is one file per meter and local day in the customer's WebDAV folder; a
corrected reading rewrites that day's file only."""

from __future__ import annotations

from connectors_out import delivery as deliveries
from connectors_out.models import Delivery
from restitution.models import Dataset
from tests.api.test_records_api import _day_block, write
from tests.connectors_out.conftest import run_queued
from tests.connectors_out.peers import WebDavPeer
from tests.personas import CURVE


def test_one_webdav_file_per_day_block_and_a_correction_rewrites_its_day(personas, tmp_peer_dir, peers_log_dir):
    write(personas.alice, CURVE, [_day_block(day) for day in range(1, 8)])
    write(personas.bob, CURVE, [_day_block(1, (6,), kw=9.9, pdl="99999999999999")])
    peer = WebDavPeer(tmp_peer_dir, peers_log_dir)
    peer.process.start()
    try:
        server, credentials = peer.connection()
        destination = deliveries.connect_destination(
            customer=personas.alice, kind="webdav", label="my cloud", settings_=server, credentials=credentials,
            datasets=[Dataset.objects.get(slug=CURVE)], duration="3m")
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        records, files = peer.read_with_webdav4()
        assert not files
        assert sorted(document["key"] for document in records.values()) == [
            f"12345678901234|2025-01-0{day}" for day in range(1, 8)]  # a week: 7 files, none of bob's
        assert all(path.startswith("Restitution/energy-load-curve/12345678901234_2025-01-0") for path in records)
        week = {document["key"]: document["data"] for document in records.values()}
        assert all(len(data["readings"]) + data["missing_count"] == 48 for data in week.values())

        write(personas.alice, CURVE, [_day_block(day, kw=2.5 if day == 3 else 1.0) for day in range(1, 8)])
        assert deliveries.queue_delivery(destination=destination) is not None
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        assert Delivery.objects.filter(destination=destination).order_by("-pk").first().written == 1
        records, _ = peer.read_with_webdav4()
        assert len(records) == 7
        after = {document["key"]: document["data"] for document in records.values()}
        assert [r["value"] for r in after["12345678901234|2025-01-03"]["readings"]] == [2.5, 2.5]
        assert {k: v for k, v in after.items() if not k.endswith("03")} == {
            k: v for k, v in week.items() if not k.endswith("03")}
    finally:
        peer.process.stop()
