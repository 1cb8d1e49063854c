"""A record as linked data: one subject per record, standard vocabularies where they fit.

The record's subject is `<record>.jsonld#it` (absolute), the same in its JSON-LD and in its
Turtle, so an app reading both documents finds one subject, not two. Its fields are properties
with typed literals (`xsd:date`, `xsd:dateTime`, `xsd:decimal`, `xsd:integer`, `xsd:boolean`);
amounts are `schema:MonetaryAmount` nodes, energy readings `sosa:Observation`s. A nested object
or a list item is a node of its own named by a fragment of the same document (`#document`,
`#readings-1`, …), never a blank node: two documents describing the same record then merge
into the same triples. The record as extracted stays beside them as an `rdf:JSON` literal in
the canonical form of RFC 8785 (`rst:json`), for a lossless round trip.

`describe()` builds the nodes once; `turtle()` and `jsonld()` write the same nodes, with the same
lexical forms, so both documents state the same graph. Terms no standard fits are in the
project vocabulary `<GATEWAY_ISSUER>/ns/restitution#` (`vocabulary()`); docs/connectors.md has the
table dataset → class and field → property.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from ...base import Change
from .jcs import canonical

SCHEMA = "https://schema.org/"
SOSA = "http://www.w3.org/ns/sosa/"
TIME = "http://www.w3.org/2006/time#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCTERMS = "http://purl.org/dc/terms/"
PROV = "http://www.w3.org/ns/prov#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_JSON = f"{RDF}JSON"


def vocabulary() -> str:
    """The project vocabulary, for the fields no standard term fits: under the holder's issuer."""
    return f"{settings.GATEWAY_ISSUER.rstrip('/')}/ns/restitution#"


def record_class() -> str:
    """The class every record has (besides its dataset's), registered in the pod's type index."""
    return f"{vocabulary()}Record"


def standard_class(dataset: str) -> str | None:
    """The dataset's class from a standard vocabulary, if it has one (its type index entry)."""
    terms = DATASETS.get(dataset)
    standard = [c for c in terms.classes if not c.startswith("rst:")] if terms else []
    return standard[0] if standard else None


# --- the mapping: dataset → classes, field → where its value goes ---------------------------

@dataclass(frozen=True)
class Step:
    """An intermediate node on the way to a value: `subject predicate <#fragment>`."""
    predicate: str
    fragment: str
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Emit:
    """One statement a field gives: through `steps` (nodes of their own), then `predicate`.
    `kind`: "literal" (typed by the value or the catalogue's format), "decimal", "money"
    (a schema:MonetaryAmount node with the record's currency), "iri" (`template` formatted
    with the value)."""
    predicate: str
    steps: tuple[Step, ...] = ()
    kind: str = "literal"
    template: str = ""


@dataclass(frozen=True)
class DatasetTerms:
    classes: tuple[str, ...]
    fields: dict[str, tuple[Emit, ...]] = field(default_factory=dict)
    #: statements every record of the dataset has: (predicate, IRI)
    constant: tuple[tuple[str, str], ...] = ()
    currency: str | None = None  # when the records carry none
    #: (list field, class): a record holding that list is a collection of that class instead
    collection: tuple[str, str] | None = None


def _p(name: str) -> str:
    """A term of the project vocabulary (resolved against the issuer when written)."""
    return f"rst:{name}"


def _one(predicate: str, kind: str = "literal") -> tuple[Emit, ...]:
    return (Emit(predicate, kind=kind),)


_DELIVERY_POINT = (Emit(_p("deliveryPoint")),
                   Emit(f"{SOSA}hasFeatureOfInterest", kind="iri", template="delivery-points/{}"))
_INTERVAL = Step(f"{SOSA}phenomenonTime", "phenomenonTime", (f"{TIME}Interval",))
_START = (Emit(f"{TIME}inXSDDateTimeStamp", (_INTERVAL, Step(f"{TIME}hasBeginning", "start", (f"{TIME}Instant",)))),)
_END = (Emit(f"{TIME}inXSDDateTimeStamp", (_INTERVAL, Step(f"{TIME}hasEnd", "end", (f"{TIME}Instant",)))),
        Emit(f"{SOSA}resultTime"))
_DOCUMENT_STEP = Step(f"{SCHEMA}subjectOf", "document", (f"{SCHEMA}MediaObject",))

#: Fields of a nested object by (dataset, field): a list item `{"start","value","quality"}` of a
#: day of readings is an observation of its own.
_READING = DatasetTerms(classes=(f"{SOSA}Observation",), fields={
    "start": _START, "end": _END, "value": _one(f"{SOSA}hasSimpleResult", "decimal"),
    "quality": _one(_p("quality"))})
_DOCUMENT = DatasetTerms(classes=(f"{SCHEMA}MediaObject",), fields={
    "filename": _one(f"{SCHEMA}name"), "content_type": _one(f"{SCHEMA}encodingFormat"),
    "size": _one(f"{SCHEMA}contentSize"), "sha256": _one(f"{SCHEMA}sha256")})

DATASETS: dict[str, DatasetTerms] = {
    "telco-invoices": DatasetTerms(classes=(f"{SCHEMA}Invoice",), fields={
        "invoice_id": _one(f"{SCHEMA}identifier"),
        "issued_on": _one(f"{DCTERMS}issued"),
        "period_start": _one(_p("periodStart")),
        "period_end": _one(_p("periodEnd")),
        "amount_incl_tax": _one(f"{SCHEMA}totalPaymentDue", "money"),
        "currency": _one(f"{SCHEMA}currency"),
        "status": _one(f"{SCHEMA}paymentStatus"),
        "document": (Emit("", (_DOCUMENT_STEP,), kind="node"),),
    }),
    "insurance-contracts": DatasetTerms(classes=(_p("InsuranceContract"),), fields={
        "contract_id": _one(f"{SCHEMA}identifier"),
        "product_code": _one(_p("productCode")),
        "product": _one(f"{SCHEMA}name"),
        "status": _one(_p("status")),
        "start_date": _one(f"{SCHEMA}startDate"),
        "end_date": _one(f"{SCHEMA}endDate"),
        "annual_premium": _one(_p("annualPremium"), "money"),
        "currency": _one(f"{SCHEMA}currency"),
        "insured_object": _one(_p("insuredObject")),
        "deductible": _one(_p("deductible"), "money"),
    }),
    "insurance-claims": DatasetTerms(classes=(_p("InsuranceClaim"),), fields={
        "claim_id": _one(f"{SCHEMA}identifier"),
        "contract_id": _one(_p("contractId")),
        "occurred_on": _one(_p("occurredOn")),
        "declared_on": _one(_p("declaredOn")),
        "kind": _one(_p("claimKind")),
        "status": _one(_p("status")),
        "description": _one(f"{SCHEMA}description"),
        "amount_claimed": _one(_p("amountClaimed"), "money"),
        "amount_paid": _one(_p("amountPaid"), "money"),
        "currency": _one(f"{SCHEMA}currency"),
    }),
    "energy-load-curve": DatasetTerms(
        classes=(f"{SOSA}Observation",),
        fields={"delivery_point": _DELIVERY_POINT, "start": _START, "end": _END,
                "average_power_kw": _one(f"{SOSA}hasSimpleResult", "decimal"),
                # one record per meter and local day: {"day", "readings": [{"start","value"(,"quality")}]}
                "day": _one(_p("day")),
                "readings": (Emit(f"{SOSA}hasMember", kind="node"),)},
        constant=((f"{SOSA}observedProperty", _p("averagePower")),),
        collection=("readings", f"{SOSA}ObservationCollection")),
    "energy-daily-consumption": DatasetTerms(
        classes=(f"{SOSA}Observation",),
        fields={"delivery_point": _DELIVERY_POINT, "day": _one(_p("day")),
                "energy_kwh": _one(f"{SOSA}hasSimpleResult", "decimal"),
                "max_power_kva": _one(_p("maxPowerKva"), "decimal")},
        constant=((f"{SOSA}observedProperty", _p("dailyEnergy")),)),
    "energy-contract": DatasetTerms(classes=(_p("SupplyContract"),), fields={
        "delivery_point": (Emit(_p("deliveryPoint")),
                           Emit(f"{SCHEMA}about", kind="iri", template="delivery-points/{}")),
        "tariff_option": _one(_p("tariffOption")),
        "subscribed_power_kva": _one(_p("subscribedPowerKva")),
        "meter_type": _one(_p("meterType")),
        "start_date": _one(f"{SCHEMA}startDate"),
        "end_date": _one(f"{SCHEMA}endDate"),
        "postcode": _one(f"{SCHEMA}postalCode"),
    }),
    "telco-call-log": DatasetTerms(classes=(_p("Communication"),), currency="EUR", fields={
        "call_id": _one(f"{SCHEMA}identifier"),
        "line": _one(_p("line")),
        "started_at": _one(f"{SCHEMA}startTime"),
        "direction": _one(_p("direction")),
        "kind": _one(_p("communicationKind")),
        "correspondent": _one(_p("correspondent")),
        "duration_s": _one(_p("durationSeconds")),
        "cost": _one(_p("cost"), "money"),
    }),
}
#: nested objects by (dataset, field): how their members are described
NESTED: dict[tuple[str, str], DatasetTerms] = {
    ("energy-load-curve", "readings"): _READING,
    ("telco-invoices", "document"): _DOCUMENT,
}


# --- the graph -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    lexical: str
    datatype: str | None = None  # None: a plain string (xsd:string)


@dataclass(frozen=True)
class IRI:
    value: str


@dataclass
class Node:
    iri: str
    types: list[str] = field(default_factory=list)
    statements: list[tuple[str, Literal | IRI]] = field(default_factory=list)

    def add(self, predicate: str, value: Literal | IRI) -> None:
        if (predicate, value) not in self.statements:
            self.statements.append((predicate, value))


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _decimal(value: Any) -> str:
    text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f")
    return text


def _camel(name: str) -> str:
    head, *rest = re.split(r"[^A-Za-z0-9]+", name) or [name]
    return head + "".join(part[:1].upper() + part[1:] for part in rest) or "field"


#: project terms the record itself uses: a field of the same name gets `rst:field<Name>`
_RESERVED = {"dataset", "json", "Record"}


def _field_term(name: str) -> str:
    term = _camel(name)
    return f"field{term[:1].upper()}{term[1:]}" if term in _RESERVED else term


def literal(value: Any, kind: str = "literal") -> Literal:
    """A JSON scalar as a typed literal: ISO dates and times typed, amounts xsd:decimal."""
    if kind in ("decimal", "money") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Literal(_decimal(value), f"{XSD}decimal")
    if isinstance(value, bool):
        return Literal("true" if value else "false", f"{XSD}boolean")
    if isinstance(value, int):
        return Literal(str(value), f"{XSD}integer")
    if isinstance(value, float):
        return Literal(_decimal(value), f"{XSD}decimal")
    text = str(value)
    if _DATE.match(text):
        return Literal(text, f"{XSD}date")
    if _DATETIME.match(text):
        return Literal(text, f"{XSD}dateTime")
    return Literal(text)


class _Builder:
    def __init__(self, change: Change, subject: str) -> None:
        self.change, self.base = change, subject.split("#")[0]
        self.vocab = vocabulary()
        self.nodes: dict[str, Node] = {}
        self.subject = self.node(subject)

    def term(self, name: str) -> str:
        return self.vocab + name[4:] if name.startswith("rst:") else name

    def node(self, iri: str, types: tuple[str, ...] = ()) -> Node:
        node = self.nodes.setdefault(iri, Node(iri))
        for type_ in types:
            if self.term(type_) not in node.types:
                node.types.append(self.term(type_))
        return node

    def fragment(self, name: str) -> str:
        return f"{self.base}#{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}"

    def describe(self, node: Node, data: dict[str, Any], terms: DatasetTerms | None, path: str,
                 currency: str | None) -> None:
        classes = terms.classes if terms else ()
        if terms and terms.collection and isinstance(data.get(terms.collection[0]), list):
            classes = (terms.collection[1],)
        for type_ in classes:
            if self.term(type_) not in node.types:
                node.types.append(self.term(type_))
        for predicate, iri in terms.constant if terms else ():
            node.add(self.term(predicate), IRI(self.term(iri)))
        currency = data.get("currency") if isinstance(data.get("currency"), str) else currency
        for name, value in data.items():
            if value is None:
                continue  # no statement for an empty field (the JSON literal keeps the null)
            emits = (terms.fields.get(name) if terms else None) or (Emit(_p(_field_term(name))),)
            for emit in emits:
                self.emit(node, name, value, emit, path, currency)

    def emit(self, node: Node, name: str, value: Any, emit: Emit, path: str, currency: str | None) -> None:
        target = node
        for step in emit.steps:
            child = self.node(self.fragment(f"{path}{step.fragment}"), step.types)
            target.add(self.term(step.predicate), IRI(child.iri))
            target = child
        predicate = self.term(emit.predicate)
        if isinstance(value, dict):
            nested = NESTED.get((self.change.dataset, name))
            if emit.kind == "node" and emit.steps and not emit.predicate:
                self.describe(target, value, nested, f"{path}{name}-", currency)
            else:
                child = self.node(self.fragment(f"{path}{name}"))
                target.add(predicate, IRI(child.iri))
                self.describe(child, value, nested, f"{path}{name}-", currency)
        elif isinstance(value, list):
            nested = NESTED.get((self.change.dataset, name))
            for index, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    child = self.node(self.fragment(f"{path}{name}-{index}"))
                    target.add(predicate, IRI(child.iri))
                    child.add(f"{SCHEMA}position", Literal(str(index), f"{XSD}integer"))
                    self.describe(child, item, nested, f"{path}{name}-{index}-", currency)
                elif item is not None:
                    target.add(predicate, literal(item))
        elif emit.kind == "money":
            amount = self.node(self.fragment(f"{path}{name}"), (f"{SCHEMA}MonetaryAmount",))
            target.add(predicate, IRI(amount.iri))
            amount.add(f"{SCHEMA}value", literal(value, "decimal"))
            if currency:
                amount.add(f"{SCHEMA}currency", Literal(currency))
        elif emit.kind == "iri":
            target.add(predicate, IRI(self.vocab.split("/ns/")[0] + "/" + emit.template.format(value)))
        else:
            target.add(predicate, literal(value, emit.kind))


def describe(change: Change, subject: str) -> list[Node]:
    """The record's nodes, its subject first."""
    builder = _Builder(change, subject)
    terms = DATASETS.get(change.dataset)
    subject_node = builder.subject
    subject_node.types.append(record_class())
    vocab = builder.vocab
    subject_node.add(f"{vocab}dataset", Literal(change.dataset))
    subject_node.add(f"{DCTERMS}identifier", Literal(change.key))
    if change.date is not None:
        subject_node.add(f"{DCTERMS}date", literal(change.date))
    if change.extracted_at is not None:
        subject_node.add(f"{PROV}generatedAtTime", literal(change.extracted_at))
    if change.data is not None:
        subject_node.add(f"{vocab}json", Literal(canonical(change.data), RDF_JSON))
    if isinstance(change.data, dict):
        builder.describe(subject_node, change.data, terms, "",
                         terms.currency if terms else None)
    return list(builder.nodes.values())


# --- the two serialisations --------------------------------------------------------------------

_TURTLE_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
PREFIXES = {"schema": SCHEMA, "sosa": SOSA, "time": TIME, "xsd": XSD, "dcterms": DCTERMS, "prov": PROV,
            "rdf": RDF}


def _compact(iri: str, prefixes: dict[str, str]) -> str | None:
    for prefix, namespace in prefixes.items():
        if iri.startswith(namespace) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", iri[len(namespace):]):
            return f"{prefix}:{iri[len(namespace):]}"
    return None


def _prefixes() -> dict[str, str]:
    return {"rst": vocabulary(), **PREFIXES}


def turtle(nodes: list[Node]) -> str:
    prefixes = _prefixes()

    def iri(value: str) -> str:
        return _compact(value, prefixes) or f"<{value}>"

    def term(value: Literal | IRI) -> str:
        if isinstance(value, IRI):
            return iri(value.value)
        text = f'"{value.lexical.translate(_TURTLE_ESCAPES)}"'
        return f"{text}^^{iri(value.datatype)}" if value.datatype else text

    lines = [f"@prefix {prefix}: <{namespace}> ." for prefix, namespace in prefixes.items()]
    for node in nodes:
        parts = ([f"a {', '.join(iri(t) for t in node.types)}"] if node.types else []) + [
            f"{iri(predicate)} {term(value)}" for predicate, value in node.statements]
        if parts:
            lines.append("")
            lines.append(f"<{node.iri}>\n    " + " ;\n    ".join(parts) + " .")
    return "\n".join(lines) + "\n"


def jsonld(change: Change, nodes: list[Node]) -> dict[str, Any]:
    """The record's JSON-LD: the API's record shape (`dataset`, `key`, `date`, `extracted_at`,
    `data` — `data` is the `rdf:JSON` literal) on the subject, plus every field as a property,
    nested nodes in `@graph`-free form under the properties that name them."""
    prefixes = _prefixes()
    vocab = prefixes["rst"]

    def typed(iri: str, value: Any) -> dict[str, Any]:
        datatype = literal(value).datatype if value is not None else None
        return {"@id": iri, "@type": datatype} if datatype else {"@id": iri}

    context: dict[str, Any] = {"@version": 1.1, **prefixes,
                               "dataset": f"{vocab}dataset",
                               "key": f"{DCTERMS}identifier",
                               "date": typed(f"{DCTERMS}date", change.date),
                               "extracted_at": typed(f"{PROV}generatedAtTime", change.extracted_at),
                               "data": {"@id": f"{vocab}json", "@type": "@json"}}
    by_iri = {node.iri: node for node in nodes}
    shared = {"dataset", "key", "date", "extracted_at", "data"}
    subject = nodes[0]

    def name(value: str) -> str:
        return _compact(value, prefixes) or value

    def value_of(value: Literal | IRI, seen: set[str]) -> Any:
        if isinstance(value, IRI):
            child = by_iri.get(value.value)
            if child is not None and child.iri not in seen:
                return node_object(child, seen | {child.iri})
            return {"@id": value.value}
        if value.datatype is None:
            return value.lexical
        return {"@value": value.lexical, "@type": name(value.datatype)}

    def node_object(node: Node, seen: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"@id": node.iri}
        if node.types:
            out["@type"] = [name(t) for t in node.types]
        for predicate, value in node.statements:
            key = name(predicate)
            if node is subject and predicate in (f"{vocab}dataset", f"{DCTERMS}identifier", f"{DCTERMS}date",
                                                  f"{PROV}generatedAtTime", f"{vocab}json"):
                continue  # written in the record's own shape below
            out.setdefault(key, []).append(value_of(value, seen))
        return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in out.items()}

    body = {"@context": context, **node_object(subject, {subject.iri})}
    record = {k: v for k, v in change.document().items() if v is not None and k in shared}
    return {**body, **record}
