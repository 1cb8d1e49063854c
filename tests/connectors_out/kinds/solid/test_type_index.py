"""Solid: the pod's private type index registers every dataset's container, once, also after a
second delivery; no one but the owner reads it."""

from __future__ import annotations

import httpx

from connectors_out.kinds.solid.transport import RECORD_CLASS, SOLID_TERMS
from connectors_out.models import Delivery
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import SolidPeer


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
