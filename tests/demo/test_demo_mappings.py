"""The demo Sources' mappings, applied to the generated legacy rows, give the ground truth.

The legacy systems are read here as simply as possible (sqlite3, csv, slicing the fixed-width
records, the telco JSON files), following the adapter option formats, so that these tests check
the generator, the Source definitions and the ground truth against each other.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from demo.generator import apply_changes, generate
from demo.sources import DEMO_SOURCES, demo_environment
from demo.truth import read_ndjson, record_key
from restitution.catalogue import BY_SLUG
from restitution.mapping import Attachment, MappingContext, MappingError, compile_mapping
from tests.conftest import per_worker

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SOURCES = {source["slug"]: source for source in DEMO_SOURCES}


@dataclass
class Row:
    values: dict[str, Any]
    error: str | None = None


# --- Minimal readers, one per adapter kind ----------------------------------------------------

def read_sql(connection: str, options: dict[str, Any],
             customer: str | None = None) -> Iterator[Row]:
    path = connection.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        if customer is None:
            query, params = options["query"].replace("{customer_filter}", "1=1"), {}
        else:
            query = options["query"].replace("{customer_filter}",
                                             f"{options['customer_column']} = :customer")
            params = {"customer": customer}
        for row in db.execute(query, params):
            yield Row(dict(row))


def read_csv(base: Path, options: dict[str, Any]) -> Iterator[Row]:
    for path in sorted(base.glob(options["pattern"])):
        with open(path, encoding=options["encoding"], newline="") as handle:
            reader = csv.reader(handle, delimiter=options["delimiter"],
                                quotechar=options["quotechar"])
            header = next(reader)
            for fields in reader:
                values = dict(zip(header, fields, strict=False))
                if any(CONTROL.search(field) for field in fields):
                    yield Row(values, "bad-encoding")
                elif len(fields) != len(header):
                    yield Row(values, "wrong number of fields")
                else:
                    yield Row(values)


def read_fixed_width(base: Path, options: dict[str, Any]) -> Iterator[Row]:
    length = options["record_length"]
    for path in sorted(base.glob(options["pattern"])):
        text = path.read_bytes().decode(options["encoding"])
        assert len(text) % length == 0
        for start in range(0, len(text), length):
            record = text[start:start + length]
            if record.startswith(tuple(options["skip_if_prefix"])):
                continue
            values = {c["name"]: record[c["start"]:c["start"] + c["length"]].strip()
                      for c in options["columns"]}
            yield Row(values, "bad-encoding" if CONTROL.search(record) else None)


def read_telco(out_dir: Path, dataset: str, account_id: str) -> Iterator[Row]:
    """What the HTTP adapter yields for one customer: the items, attachments fetched."""
    folder = out_dir / "telco" / "accounts" / account_id
    kind = "calls" if dataset == "telco-call-log" else "invoices"
    attachments = SOURCES["telco-billing"]["options"]["datasets"][dataset].get("attachments", {})
    for item in json.loads((folder / f"{kind}.json").read_text(encoding="utf-8")):
        for field, spec in attachments.items():
            name = item[field].rsplit("/", 1)[-1]
            item[field] = Attachment(filename=spec["filename"].format(**item),
                                     content_type=spec["content_type"],
                                     content=(folder / "invoices" / name).read_bytes())
        yield Row(item)


def legacy_rows(out_dir: Path, source: dict[str, Any], dataset: str,
                identity: str) -> Iterator[Row]:
    """Every legacy row of `dataset` for one customer identity (or, for files, all rows)."""
    env = demo_environment(out_dir)
    connection = env[source["connection_env"]]
    options = source["options"]["datasets"][dataset]
    if source["kind"] == "sql":
        return read_sql(connection, options, identity)
    if source["kind"] == "csv":
        return read_csv(Path(connection), options)
    if source["kind"] == "fixed-width":
        return read_fixed_width(Path(connection), options)
    return read_telco(out_dir, dataset, identity)


# --- Mapping and comparing --------------------------------------------------------------------

def map_customer(rows: Iterator[Row], mapping: dict[str, Any], dataset: str,
                 identity: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Map the rows of one customer identity: (records by key, kinds of the rejected rows)."""
    compiled = compile_mapping(mapping, BY_SLUG[dataset].schema)
    ctx = MappingContext(customer_key=identity)
    blocks = compiled.blocks()  # interval readings fold into day blocks
    records: dict[str, dict[str, Any]] = {}
    rejected: list[str] = []

    def keep(record: dict[str, Any]) -> None:
        key = record_key(dataset, record)
        assert key not in records, f"duplicate key {key}"
        records[key] = record

    for number, row in enumerate(rows):
        if compiled.customer_key(row.values) != identity:
            continue
        if row.error:
            rejected.append(row.error)
            continue
        try:
            record, _ = compiled.apply(row.values, ctx)
        except MappingError as exc:
            rejected.append("missing-key" if "missing value" in exc.message else
                            "impossible-date" if "impossible date" in exc.message else exc.message)
            continue
        if blocks is None:
            keep(record)
            continue
        for block in blocks.arriving(0, record):
            keep(block.data)
        problem = blocks.add(0, record, f"row {number}")
        assert problem is None, problem
    for block in blocks.drain() if blocks is not None else ():
        keep(block.data)
    return records, rejected


def expected(out_dir: Path, dataset: str) -> dict[str, dict[str, dict[str, Any]]]:
    by_customer: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in read_ndjson(out_dir / "ground_truth" / f"{dataset}.ndjson"):
        by_customer[line["customer"]][line["key"]] = line["data"]
    return by_customer


def malformed_kinds(out_dir: Path, dataset: str, customer: str) -> Counter[str]:
    notes = read_ndjson(out_dir / "ground_truth" / "malformed.ndjson")
    return Counter(note["kind"] for note in notes
                   if note["dataset"] == dataset and note["customer"] == customer)


def check_dataset(out_dir: Path, source: dict[str, Any], dataset: str,
                  customers: list[dict[str, Any]]) -> int:
    truth = expected(out_dir, dataset)
    checked = 0
    for customer in customers:
        identity = customer["identities"].get(source["identity_system"])
        if identity is None:
            assert customer["reference"] not in truth
            continue
        rows = legacy_rows(out_dir, source, dataset, identity)
        records, rejected = map_customer(rows, source["mappings"][dataset], dataset, identity)
        assert records == truth.get(customer["reference"], {}), (dataset, customer["reference"])
        assert Counter(rejected) == malformed_kinds(out_dir, dataset, customer["reference"])
        checked += len(records)
    return checked


# --- Tests ------------------------------------------------------------------------------------

def test_source_definitions_are_complete_and_compile() -> None:
    keys = {"slug", "name", "kind", "connection_env", "identity_system", "options", "mappings",
            "datasets", "max_concurrent_runs", "max_requests_per_second"}
    env = demo_environment(Path("/tmp/x"))
    assert {s["slug"] for s in DEMO_SOURCES} == {"insurer-policies", "energy-metering",
                                                 "energy-contracts", "telco-billing"}
    for source in DEMO_SOURCES:
        assert set(source) == keys
        assert source["kind"] in {"sql", "csv", "fixed-width", "http-json"}
        assert source["identity_system"] in {"insurer", "energy", "telco"}
        assert source["connection_env"] in env
        assert set(source["mappings"]) == set(source["datasets"])
        assert set(source["options"]["datasets"]) == set(source["datasets"])
        json.dumps(source)  # stored as JSON
        for dataset, mapping in source["mappings"].items():
            compile_mapping(mapping, BY_SLUG[dataset].schema)
    telco = SOURCES["telco-billing"]
    assert telco["options"]["token_env"] in env


def test_demo_environment(tmp_path: Path) -> None:
    env = demo_environment(tmp_path)
    assert env == {
        "INSURER_DB_URL": f"sqlite:///{tmp_path.resolve()}/insurer.sqlite3",
        "METERING_EXPORT_DIR": str(tmp_path.resolve() / "metering"),
        "TELCO_API_URL": "http://127.0.0.1:8081",
        "TELCO_API_TOKEN": "demo-telco-token",
    }
    env = demo_environment(tmp_path, insurer_url="mysql+pymysql://h/db", telco_url="http://t")
    assert env["INSURER_DB_URL"] == "mysql+pymysql://h/db"
    assert env["TELCO_API_URL"] == "http://t"


@pytest.mark.parametrize(("source_slug", "dataset"), [
    (source["slug"], dataset) for source in DEMO_SOURCES for dataset in source["datasets"]
])
def test_mapping_reproduces_ground_truth(small_demo: Any, source_slug: str, dataset: str) -> None:
    checked = check_dataset(small_demo.out_dir, SOURCES[source_slug], dataset, small_demo.customers)
    assert checked == small_demo.counts[dataset] > 0


def test_every_malformed_row_is_rejected(small_demo: Any) -> None:
    notes = list(read_ndjson(small_demo.out_dir / "ground_truth" / "malformed.ndjson"))
    # A handful per system, each attached to a registered customer other than alice.
    assert Counter(note["source"] for note in notes) == {
        "insurer-policies": 3, "energy-metering": 4, "telco-billing": 2}
    references = {c["reference"] for c in small_demo.customers}
    assert all(note["customer"] in references - {"C00001"} for note in notes)
    assert {note["kind"] for note in notes} == {"missing-key", "impossible-date", "bad-encoding"}
    # The rejections themselves are counted per customer in test_mapping_reproduces_ground_truth.


def test_load_curve_mapping_over_both_clock_changes(full_window_demo: Any) -> None:
    source = SOURCES["energy-metering"]
    for dataset in ("energy-load-curve", "energy-daily-consumption"):
        checked = check_dataset(full_window_demo.out_dir, source, dataset,
                                full_window_demo.customers)
        assert checked == full_window_demo.counts[dataset]


def test_apply_changes_updates_database_and_ground_truth(tmp_path: Path) -> None:
    manifest = generate(tmp_path, customers=3, systems=("insurer",))
    datasets = ("insurance-contracts", "insurance-claims")
    before = {d: expected(tmp_path, d)["C00001"] for d in datasets}
    changes = apply_changes(tmp_path, seed=3)

    (updated,), (deleted,), (created,) = changes["updated"], changes["deleted"], changes["created"]
    assert updated["dataset"] == "insurance-contracts" and updated["customer"] == "C00001"
    assert deleted["dataset"] == created["dataset"] == "insurance-claims"
    after = {d: expected(tmp_path, d)["C00001"] for d in datasets}
    assert set(after["insurance-contracts"]) == set(before["insurance-contracts"])
    assert (after["insurance-contracts"][updated["key"]]["annual_premium"]
            > before["insurance-contracts"][updated["key"]]["annual_premium"])
    assert deleted["key"] in before["insurance-claims"]
    assert set(after["insurance-claims"]) == (
        set(before["insurance-claims"]) - {deleted["key"]} | {created["key"]})
    assert after["insurance-claims"][created["key"]]["status"] == "open"
    # The database says the same as the new ground truth; other customers are untouched.
    for dataset in ("insurance-contracts", "insurance-claims"):
        check_dataset(tmp_path, SOURCES["insurer-policies"], dataset, manifest.customers)
    summary = json.loads((tmp_path / "ground_truth" / "manifest.json").read_text())
    assert summary["counts"]["insurance-claims"] == manifest.counts["insurance-claims"]


@pytest.mark.mariadb
def test_copy_to_mariadb(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from demo import insurer

    manifest = generate(tmp_path, customers=5, systems=("insurer",), seed=11)
    server = "mysql+pymysql://root@127.0.0.1:3306"
    database = per_worker("restitution_demo_copy_test")  # parallel workers: one database each
    url = f"{server}/{database}"
    try:
        copied = insurer.copy_to(url, tmp_path / "insurer.sqlite3", batch_size=7)
        assert copied == manifest.legacy["insurer"] | {
            "T_CODE_PRODUIT": 7, "T_CODE_STATUT": 4, "T_CODE_NATURE_SINISTRE": 10,
            "T_CODE_ETAT_SINISTRE": 5}
        # Copying again drops and recreates the tables: same counts, no duplicate key error.
        assert insurer.copy_to(url, tmp_path / "insurer.sqlite3") == copied
        apply_changes(tmp_path, seed=5, insurer_url=url)

        engine = create_engine(url)
        source = SOURCES["insurer-policies"]
        try:
            for dataset in source["datasets"]:
                truth = expected(tmp_path, dataset)
                options = source["options"]["datasets"][dataset]
                query = text(options["query"].replace(
                    "{customer_filter}", f"{options['customer_column']} = :customer"))
                for customer in manifest.customers:
                    identity = customer["identities"]["insurer"]
                    with engine.connect() as connection:
                        rows = [Row(dict(r._mapping))
                                for r in connection.execute(query, {"customer": identity})]
                    records, rejected = map_customer(iter(rows), source["mappings"][dataset],
                                                     dataset, identity)
                    assert records == truth[customer["reference"]]
                    assert Counter(rejected) == malformed_kinds(tmp_path, dataset,
                                                                customer["reference"])
        finally:
            engine.dispose()
    finally:
        engine = create_engine(server)
        with engine.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        engine.dispose()
