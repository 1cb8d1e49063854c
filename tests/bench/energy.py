"""The load-curve part of `make bench`: the demo network operator's half-hour exports for some
meters, read into the store by the metering source's batch run, against reading the same files
and `COPY`ing them; the store's bytes per half-hour reading; and the files one customer's year of
load curve makes in a real WebDAV server, pushed by the webdav destination kind.

Called by tests.bench.extraction (one database, one run). Everything here reads the shape the
catalogue and the demo mapping have: a record holding `readings` (a day block) counts as that
many readings, any other record as one.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

LOAD_CURVE = "energy-load-curve"
RECORD_TABLE = "restitution_record"
HALF_HOURS_A_YEAR = 365 * 48


@dataclass
class EnergyFigures:
    meters: int
    days: int
    files: int
    lines: int
    baseline_seconds: float
    run_seconds: float
    run_read: int
    records: int
    readings: int
    store_bytes: int

    @property
    def baseline_rows_per_s(self) -> float:
        return self.lines / self.baseline_seconds

    @property
    def run_rows_per_s(self) -> float:
        """The files' lines per second of the run (the same input as the baseline's)."""
        return self.lines / self.run_seconds


def generate(out_dir: Path, *, meters: int, days: int, start: date = date(2024, 10, 1)):
    """The metering exports of `meters` registered customers over `days` local days (plus the
    demo's share of delivery points whose owners never registered)."""
    from demo.generator import generate as generate_demo

    return generate_demo(out_dir, customers=meters, systems=("energy",), malformed=False,
                         energy_start=start, energy_end=start + timedelta(days=days - 1))


def load_curve_source():
    """The demo's metering source as defined on this branch, limited to the load curve."""
    from demo.sources import DEMO_SOURCES

    definition = copy.deepcopy(next(s for s in DEMO_SOURCES if LOAD_CURVE in s["datasets"]))
    definition["datasets"] = [LOAD_CURVE]
    definition["mappings"] = {k: v for k, v in definition["mappings"].items() if k == LOAD_CURVE}
    options = definition.get("options", {})
    if isinstance(options.get("datasets"), dict):
        options["datasets"] = {k: v for k, v in options["datasets"].items() if k == LOAD_CURVE}
    return definition


def install(out_dir: Path):
    """The load-curve source, and the generated customers with their delivery points (customers
    already there, from the insurer part, keep their row and gain the identity)."""
    from demo.install import install_sources
    from restitution.catalogue import sync_catalogue
    from restitution.models import Customer, LegacyIdentity

    sync_catalogue()  # the datasets a source is installed with
    (source,) = install_sources([load_curve_source()])
    assert source.datasets.filter(slug=LOAD_CURVE).exists(), "the load-curve dataset is not in the catalogue"
    customers = json.loads((out_dir / "ground_truth" / "customers.json").read_text())
    existing = dict(Customer.objects.filter(reference__in=[c["reference"] for c in customers])
                    .values_list("reference", "pk"))
    new = [Customer(reference=c["reference"], display_name=c.get("display_name", ""))
           for c in customers if c["reference"] not in existing]
    for created in Customer.objects.bulk_create(new, batch_size=5000):
        existing[created.reference] = created.pk
    LegacyIdentity.objects.bulk_create(
        [LegacyIdentity(customer_id=existing[c["reference"]], system=source.identity_system, value=value)
         for c in customers for system, value in c["identities"].items() if system == source.identity_system],
        batch_size=5000, ignore_conflicts=True)
    return source


def _files(source) -> list[tuple[dict, Path]]:
    root = Path(os.environ[source.connection_env])
    return [(options, path) for options in source.options["datasets"].values()
            for path in sorted(root.glob(options["pattern"]))]


def baseline(source) -> tuple[int, int, float]:
    """Raw: read the source's CSV files (their encoding, separator, header), each line turned into
    JSON and `COPY`'d into PostgreSQL. (files, lines, seconds)"""
    from django.db import connection

    files = _files(source)
    lines = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_raw_files (locator text, data jsonb)")
        with cursor.copy("COPY bench_raw_files (locator, data) FROM STDIN") as copy_in:
            for options, path in files:
                with open(path, encoding=options.get("encoding", "utf-8"), newline="") as handle:
                    reader = csv.reader(handle, delimiter=options.get("delimiter", ","),
                                        quotechar=options.get("quotechar", '"'))
                    header = next(reader) if options.get("header", True) else None
                    for number, row in enumerate(reader, start=2):
                        values = dict(zip(header, row, strict=False)) if header else row
                        copy_in.write_row((f"{path.name}:{number}", json.dumps(values)))
                        lines += 1
        cursor.execute("DROP TABLE bench_raw_files")
    return len(files), lines, time.perf_counter() - started


def readings_held(dataset_id: int, customer_id: int | None = None) -> tuple[int, int]:
    """(records, half-hour readings) the store holds for the dataset: a record with `readings`
    counts its readings, any other record counts as one reading."""
    from django.db import connection

    where = "dataset_id = %s AND NOT deleted" + (" AND customer_id = %s" if customer_id else "")
    params = [dataset_id] + ([customer_id] if customer_id else [])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN jsonb_typeof(data->'readings') = 'array' "
            f"THEN jsonb_array_length(data->'readings') ELSE 1 END), 0) FROM {RECORD_TABLE} WHERE {where}",
            params)
        records, readings = cursor.fetchone()
    return int(records), int(readings)


def store_size() -> int:
    """The records table with its indexes and TOAST, compacted (what it weighs once written)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL {RECORD_TABLE}")
        cursor.execute(f"SELECT pg_total_relation_size('{RECORD_TABLE}')")
        return int(cursor.fetchone()[0])


def measure(out_dir: Path, *, meters: int, days: int) -> tuple[EnergyFigures, object]:
    """Generate, install, baseline, batch run; the store's size is measured before and after so
    the figure is the load curve's own even when other datasets share the table."""
    from restitution import extraction
    from restitution.models import Dataset, ExtractionRun

    generate(out_dir, meters=meters, days=days)
    from demo.sources import demo_environment

    os.environ.update(demo_environment(out_dir, telco_url="http://127.0.0.1:9"))
    source = install(out_dir)
    files, lines, baseline_seconds = baseline(source)
    size_before = store_size()
    started = time.perf_counter()
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    run_seconds = time.perf_counter() - started
    assert run.status == ExtractionRun.Status.SUCCEEDED, run.error
    if run.read != lines:  # the rate is taken over the files' lines either way
        print(f"note: the load-curve run counted {run.read} rows read, the files hold {lines} lines",
              file=sys.stderr)
    curve = Dataset.objects.get(slug=LOAD_CURVE)
    records, readings = readings_held(curve.pk)
    assert readings > 0, "the load-curve run stored no readings"
    figures = EnergyFigures(meters=meters, days=days, files=files, lines=lines, baseline_seconds=baseline_seconds,
                            run_seconds=run_seconds, run_read=run.read, records=records, readings=readings,
                            store_bytes=store_size() - size_before)
    return figures, curve


# --- One customer's year in a WebDAV cloud ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the WebDAV server stopped (exit {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the WebDAV server did not start")


@dataclass
class WebDavFigures:
    customer_readings: int
    files: int
    folders: int
    bytes: int
    seconds: float
    days: int

    @property
    def files_per_year(self) -> float:
        """Scaled by the readings pushed to a year of half hours (the customer's meter may have
        started within the window)."""
        return self.files * HALF_HOURS_A_YEAR / self.customer_readings


def webdav_push(curve, *, days: int, work_dir: Path) -> WebDavFigures:
    """The customer with the most load-curve readings connects a WebDAV destination (wsgidav, as
    the connector tests run it, in its own process); the first delivery pushes everything through
    the webdav kind; the files it made on the server's disk are counted."""
    from django.db import connection

    from connectors_out import delivery
    from connectors_out.models import Delivery
    from restitution.models import Customer

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id FROM restitution_record WHERE dataset_id = %s AND NOT deleted GROUP BY customer_id "
            "ORDER BY sum(CASE WHEN jsonb_typeof(data->'readings') = 'array' "
            "THEN jsonb_array_length(data->'readings') ELSE 1 END) DESC LIMIT 1", [curve.pk])
        customer = Customer.objects.get(pk=cursor.fetchone()[0])
    _, customer_readings = readings_held(curve.pk, customer.pk)
    root = work_dir / "webdav"
    root.mkdir()
    port, user, password = _free_port(), "alice", f"app-{uuid.uuid4().hex[:12]}"
    log = open(work_dir / "webdav.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "tests.connectors_out.webdav_server", str(root), str(port),
                               user, password], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, server)
        started = time.perf_counter()
        # Tasks run eagerly here: connecting queues the first delivery, which runs on commit.
        destination = delivery.connect_destination(
            customer=customer, kind="webdav", label="bench", duration="12m", datasets=[curve],
            settings_={"server": f"http://127.0.0.1:{port}", "username": user, "folder": "Restitution"},
            credentials={"app_password": password})
        for queued in Delivery.objects.filter(destination=destination, status=Delivery.Status.QUEUED):
            delivery.execute_delivery(delivery_id=queued.pk)
        seconds = time.perf_counter() - started
        outcome = Delivery.objects.filter(destination=destination).order_by("-pk").first()
        assert outcome is not None and outcome.status == Delivery.Status.SUCCEEDED, (
            outcome and (outcome.status, outcome.error))
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    files = [p for p in root.rglob("*") if p.is_file()]
    folders = [p for p in root.rglob("*") if p.is_dir()]
    return WebDavFigures(customer_readings=customer_readings, files=len(files), folders=len(folders),
                         bytes=sum(p.stat().st_size for p in files), seconds=seconds, days=days)
