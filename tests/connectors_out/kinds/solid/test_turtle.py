"""Solid: every record is also written as Turtle beside its JSON-LD; the Community Solid Server
parses that Turtle itself (asked for it as JSON-LD) and gives back the record's data; a removed
record loses both representations."""

from __future__ import annotations

import json

from connectors_out.kinds.solid.linked_data import vocabulary
from connectors_out.kinds.solid.transport import RECORD_CLASS, record_subject
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import SolidPeer

RDF_JSON = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"
IDENTIFIER = "http://purl.org/dc/terms/identifier"


def _read_turtle_as_the_pod_parses_it(transport, url: str) -> dict:
    """GET the .ttl as JSON-LD: the server converts it with its own Turtle parser. The record's
    subject is the one its JSON-LD describes (`<name>.jsonld#it`)."""
    response = transport._call("GET", url, what="read", headers={"Accept": "application/ld+json"})
    subject = record_subject(url[:-len("ttl")] + "jsonld")
    (node,) = [n for n in response.json() if n.get("@id") == subject]
    assert RECORD_CLASS in node["@type"]
    (data,) = node[f"{vocabulary()}json"]
    # an rdf:JSON literal: JSON-LD 1.1 writes it as "@json" with the JSON value itself
    assert data["@type"] in ("@json", RDF_JSON)
    value = data["@value"]
    return {"dataset": node[f"{vocabulary()}dataset"][0]["@value"], "key": node[IDENTIFIER][0]["@value"],
            "data": json.loads(value) if isinstance(value, str) and data["@type"] == RDF_JSON else value}


def test_solid_records_are_also_turtle_that_the_pod_reads_back_equal(demo_customer, solid_server):
    peer = SolidPeer(solid_server)
    destination = connect(demo_customer, "solid", *peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    transport = peer._transport()
    try:
        truth = demo_customer.truth()
        for (slug, key), data in truth.items():
            url = transport.record_url(slug, key, "ttl")
            assert _read_turtle_as_the_pod_parses_it(transport, url) == {"dataset": slug, "key": key, "data": data}
        assert transport._call("GET", transport.record_url(*next(iter(truth)), "ttl"), what="read").headers[
            "content-type"].startswith("text/turtle")

        contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        changed = _read_turtle_as_the_pod_parses_it(transport, transport.record_url(*contract, "ttl"))
        assert changed["data"] == demo_customer.stored()[contract] != truth[contract]
        for extension in ("ttl", "jsonld"):
            gone = transport._call("GET", transport.record_url(*claim, extension), what="read", ok_missing=True)
            assert gone.status_code == 404
    finally:
        transport.close()
