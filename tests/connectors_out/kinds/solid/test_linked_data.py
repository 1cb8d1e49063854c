"""Solid records as linked data an RDF app can query: pushed to a real Community Solid Server,
read back over HTTP (with the gateway's DPoP token helper, as the pod owner) into one rdflib
graph from both the `.jsonld` and the `.ttl` of every record, and queried with SPARQL. Also:
RFC 8785's own examples for the canonical JSON literal, and the day-of-readings shape."""

from __future__ import annotations

import json
import struct
from decimal import Decimal

import pytest
import rdflib

from connectors_out.base import Change
from connectors_out.kinds.solid import linked_data
from connectors_out.kinds.solid.jcs import canonical, number
from connectors_out.kinds.solid.transport import RECORD_CLASS, record_subject
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import SolidPeer
from tests.connectors_out.readback import api_records

SCHEMA = rdflib.Namespace("https://schema.org/")
XSD = rdflib.namespace.XSD


def _pod_graph(peer: SolidPeer, keys) -> tuple[rdflib.Graph, dict[tuple[str, str], tuple[rdflib.Graph, rdflib.Graph]]]:
    """Every record's .jsonld and .ttl, fetched from the pod over HTTP as the pod owner, parsed by
    rdflib (each with its own URL as base) into one graph; also each document's graph alone."""
    transport = peer._transport()
    merged, each = rdflib.Graph(), {}
    try:
        for dataset, key in keys:
            graphs = []
            for extension, media_type, rdf_format in (("jsonld", "application/ld+json", "json-ld"),
                                                      ("ttl", "text/turtle", "turtle")):
                url = transport.record_url(dataset, key, extension)
                response = transport._call("GET", url, what="read", headers={"Accept": media_type})
                assert response.headers["content-type"].startswith(media_type)
                graph = rdflib.Graph().parse(data=response.text, format=rdf_format, publicID=url)
                merged += graph
                graphs.append(graph)
            each[(dataset, key)] = (graphs[0], graphs[1])
    finally:
        transport.close()
    return merged, each


TOTALS = """
PREFIX schema: <https://schema.org/>
PREFIX dcterms: <http://purl.org/dc/terms/>
SELECT ?invoice ?number ?issued ?total ?currency WHERE {
  ?invoice a schema:Invoice ;
           schema:identifier ?number ;
           dcterms:issued ?issued ;
           schema:totalPaymentDue [ schema:value ?total ; schema:currency ?currency ] .
}"""


def test_sparql_over_the_pod_gives_every_invoice_total_typed_and_equal_to_the_api(invoice_customer, solid_server):
    peer = SolidPeer(solid_server)
    destination = connect(invoice_customer, "solid", *peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    api = api_records(invoice_customer)
    assert len(api) >= 4
    graph, each = _pod_graph(peer, api)

    # one subject per record, whether an app read one serialisation or both
    records = set(graph.subjects(rdflib.RDF.type, rdflib.URIRef(RECORD_CLASS)))
    transport = peer._transport()
    try:
        assert records == {rdflib.URIRef(record_subject(transport.record_url(*key))) for key in api}
        # an app looking for invoices finds the container in the type index by schema:Invoice
        index_url = transport.type_index()
        index = rdflib.Graph().parse(data=transport._call("GET", index_url, what="read",
                                                          headers={"Accept": "text/turtle"}).text,
                                     format="turtle", publicID=index_url)
        solid = rdflib.Namespace("http://www.w3.org/ns/solid/terms#")
        for_invoices = {index.value(r, solid.instanceContainer) for r in index.subjects(solid.forClass, SCHEMA.Invoice)}
        assert rdflib.URIRef(f"{peer.container}telco-invoices/") in for_invoices
    finally:
        transport.close()
    assert len(records) == len(api)
    for key, (from_jsonld, from_turtle) in each.items():
        assert set(from_jsonld) == set(from_turtle), key  # the same triples, literal for literal
        assert not any(isinstance(term, rdflib.BNode) for triple in from_jsonld for term in triple)

    rows = list(graph.query(TOTALS))
    assert len(rows) == len(api)  # no invoice counted twice
    by_number = {}
    for row in rows:
        assert row.total.datatype == XSD.decimal and row.issued.datatype == XSD.date
        by_number[str(row.number)] = (row.total.toPython(), row.issued.toPython().isoformat(), str(row.currency))
    assert by_number == {
        item["data"]["invoice_id"]: (Decimal(str(item["data"]["amount_incl_tax"])), item["data"]["issued_on"],
                                     item["data"]["currency"])
        for item in api.values()}
    assert all(isinstance(total, Decimal) for total, _, _ in by_number.values())

    # the record as extracted, as a canonical (RFC 8785) JSON literal: equal to the API's data
    for (_, key), item in api.items():
        subject = next(s for s in records if graph.value(s, rdflib.URIRef("http://purl.org/dc/terms/identifier"))
                       == rdflib.Literal(key))
        (raw,) = graph.objects(subject, rdflib.URIRef(f"{linked_data.vocabulary()}json"))
        assert raw.datatype == rdflib.RDF.JSON
        assert str(raw) == canonical(item["data"]) and json.loads(str(raw)) == item["data"]
        # and each invoice's PDF is described: its digest is the one the API gives
        document = graph.value(subject, SCHEMA.subjectOf)
        assert str(graph.value(document, SCHEMA.sha256)) == item["data"]["document"]["sha256"]


CLAIMS = """
PREFIX rst: <{vocab}>
PREFIX schema: <https://schema.org/>
SELECT ?number ?occurred ?paid WHERE {{
  ?claim a rst:InsuranceClaim ; schema:identifier ?number ; rst:occurredOn ?occurred .
  OPTIONAL {{ ?claim rst:amountPaid/schema:value ?paid }}
}}"""


def test_sparql_over_the_pod_gives_claims_dates_and_amounts_after_a_change(demo_customer, solid_server):
    peer = SolidPeer(solid_server)
    destination = connect(demo_customer, "solid", *peer.connection())
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()
    assert [o.status for o in run_queued(destination)] == ["succeeded"]

    api = api_records(demo_customer)
    assert claim not in api and contract in api
    graph, _ = _pod_graph(peer, api)
    rows = list(graph.query(CLAIMS.format(vocab=linked_data.vocabulary())))
    claims = {key: item["data"] for (dataset, key), item in api.items() if dataset == "insurance-claims"}
    found = {str(r.number): (r.occurred.toPython().isoformat(), None if r.paid is None else r.paid.toPython())
             for r in rows}
    assert found == {
        key: (data["occurred_on"], None if data["amount_paid"] is None else Decimal(str(data["amount_paid"])))
        for key, data in claims.items()}
    premium = graph.query(f"""PREFIX rst: <{linked_data.vocabulary()}> PREFIX schema: <https://schema.org/>
        SELECT ?premium WHERE {{ ?c schema:identifier "{contract[1]}" ; rst:annualPremium/schema:value ?premium }}""")
    (row,) = list(premium)
    assert row.premium.toPython() == Decimal(str(api[contract]["data"]["annual_premium"]))


DAY = Change(dataset="energy-load-curve", key="12345678901234/2026-03-29", seq=1,
             date="2026-03-29", extracted_at="2026-03-30T04:00:00Z",
             data={"delivery_point": "12345678901234", "day": "2026-03-29",
                   "readings": [{"start": "2026-03-28T23:00:00Z", "value": 0.5},
                                {"start": "2026-03-29T00:30:00Z", "value": 1.25, "quality": "estimated"},
                                {"start": "2026-03-29T22:30:00Z", "value": 2}]})
HALF_HOUR = Change(dataset="energy-load-curve", key="12345678901234/2026-03-29T00:00:00Z", seq=2,
                   date="2026-03-29T00:00:00Z", extracted_at="2026-03-30T04:00:00Z",
                   data={"delivery_point": "12345678901234", "start": "2026-03-29T00:00:00Z",
                         "end": "2026-03-29T00:30:00Z", "average_power_kw": 0.75})
READINGS = """
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX time: <http://www.w3.org/2006/time#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
SELECT ?start ?value WHERE {
  ?reading a sosa:Observation ; sosa:hasSimpleResult ?value ;
           sosa:phenomenonTime/time:hasBeginning/time:inXSDDateTimeStamp ?start .
  FILTER (?start >= "2026-03-29T00:00:00Z"^^xsd:dateTime && ?start < "2026-03-30T00:00:00Z"^^xsd:dateTime)
} ORDER BY ?start"""


@pytest.mark.parametrize("change", [DAY, HALF_HOUR], ids=["day-of-readings", "half-hour"])
def test_energy_readings_are_sosa_observations_in_both_shapes(settings, change):
    url = "http://pod.example/alice/r/energy-load-curve/x.jsonld"
    nodes = linked_data.describe(change, record_subject(url))
    from_jsonld = rdflib.Graph().parse(data=json.dumps(linked_data.jsonld(change, nodes)), format="json-ld",
                                       publicID=url)
    from_turtle = rdflib.Graph().parse(data=linked_data.turtle(nodes), format="turtle",
                                       publicID=url.replace(".jsonld", ".ttl"))
    assert set(from_jsonld) == set(from_turtle)
    rows = [(r.start.toPython().isoformat(), r.value) for r in from_turtle.query(READINGS)]
    if change is DAY:  # the UTC day 29 March holds the last two readings
        assert rows == [("2026-03-29T00:30:00+00:00", rdflib.Literal("1.25", datatype=XSD.decimal)),
                        ("2026-03-29T22:30:00+00:00", rdflib.Literal("2", datatype=XSD.decimal))]
    else:
        assert rows == [("2026-03-29T00:00:00+00:00", rdflib.Literal("0.75", datatype=XSD.decimal))]
    subject = rdflib.URIRef(record_subject(url))
    point = from_turtle.value(subject, rdflib.URIRef("http://www.w3.org/ns/sosa/hasFeatureOfInterest"))
    assert str(point) == f"{settings.GATEWAY_ISSUER}/delivery-points/12345678901234"


def test_fields_outside_the_table_are_typed_project_terms_in_both_documents():
    change = Change(dataset="operator-dataset", key="k/1", seq=1, date="2024-02-29", extracted_at=None,
                    data={"dataset": "shadows the record's own term", "due on": "2024-03-01", "ratio": 1e-7,
                          "count": 3, "paid": False, "empty": None, "tags": ["a", "b"],
                          "address": {"city": "Lyon", "since": "2020-01-01T08:00:00+01:00"}})
    url = "http://pod.example/alice/r/operator-dataset/k_1-abc.jsonld"
    nodes = linked_data.describe(change, record_subject(url))
    from_jsonld = rdflib.Graph().parse(data=json.dumps(linked_data.jsonld(change, nodes)), format="json-ld",
                                       publicID=url)
    from_turtle = rdflib.Graph().parse(data=linked_data.turtle(nodes), format="turtle", publicID=url)
    rst = rdflib.Namespace(linked_data.vocabulary())
    # rdflib's JSON-LD parser writes an @json value with Python's json.dumps ("1e-07"), not the
    # RFC 8785 text JSON-LD 1.1 asks for ("1e-7", as the Turtle has it): all else is the same
    assert {t for t in from_jsonld if t[1] != rst.json} == {t for t in from_turtle if t[1] != rst.json}
    assert str(from_turtle.value(record_subject_ref := rdflib.URIRef(record_subject(url)), rst.json)) == \
        canonical(change.data) and '"ratio":1e-7' in canonical(change.data)
    assert json.loads(from_jsonld.value(record_subject_ref, rst.json)) == change.data
    subject = rdflib.URIRef(record_subject(url))
    assert from_turtle.value(subject, rst.dataset) == rdflib.Literal("operator-dataset")
    assert from_turtle.value(subject, rst.fieldDataset) == rdflib.Literal("shadows the record's own term")
    assert from_turtle.value(subject, rst.dueOn) == rdflib.Literal("2024-03-01", datatype=XSD.date)
    assert from_turtle.value(subject, rst.ratio) == rdflib.Literal("0.0000001", datatype=XSD.decimal)
    assert from_turtle.value(subject, rst["count"]) == rdflib.Literal("3", datatype=XSD.integer)
    assert from_turtle.value(subject, rst.paid) == rdflib.Literal("false", datatype=XSD.boolean)
    assert from_turtle.value(subject, rst.empty) is None
    assert set(from_turtle.objects(subject, rst.tags)) == {rdflib.Literal("a"), rdflib.Literal("b")}
    address = from_turtle.value(subject, rst.address)
    assert address == rdflib.URIRef(f"{url}#address")
    assert from_turtle.value(address, rst.since).datatype == XSD.dateTime
    assert json.loads(from_turtle.value(subject, rst.json)) == change.data


# --- RFC 8785 (JCS): the JSON literal is canonical ---------------------------------------------

#: RFC 8785 appendix B: IEEE 754 doubles (hex) and their canonical text
NUMBERS = {
    "0000000000000000": "0", "8000000000000000": "0", "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324", "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308", "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992", "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22", "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23", "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000", "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7", "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332", "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333", "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343", "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}


@pytest.mark.parametrize("bits,text", NUMBERS.items())
def test_jcs_numbers_are_written_as_rfc_8785_appendix_b(bits, text):
    assert number(struct.unpack(">d", bytes.fromhex(bits))[0]) == text


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_jcs_refuses_nan_and_infinity(bits):
    with pytest.raises(ValueError):
        canonical([struct.unpack(">d", bytes.fromhex(bits))[0]])


def test_jcs_rfc_8785_example_and_utf16_member_order():
    # §3.2.2's example
    source = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
              '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}')
    assert canonical(json.loads(source)) == ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,'
                                             '4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    # §3.2.3's example: names sorted by UTF-16 code units (the emoji's surrogates before U+FB33,
    # which code-point order would put after it)
    members = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
               "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
               "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = [name for name in json.loads(canonical(members))]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonical(members).startswith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"')
