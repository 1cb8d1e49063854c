"""`make bench`: the gateway's extraction against raw baselines measured in the same run, on the
same data, and the scale figures of docs/scaling.md.

    make bench                                             # 20 000 insurer customers, 20 meters
    make bench BENCH_ARGS="--customers 100000 --meters 100"
    make bench BENCH_ARGS="--skip-energy --skip-webdav"    # the insurer part only

Reports ratios, never absolute targets: both sides run on the same machine in the same run.
Uses its own database (restitution_bench by default), created and dropped here. After a
human-readable table, the last lines are `name value`, one per figure, for scripts
(docs/benchmarks.md lists them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _setup_django(database: str) -> None:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/restitution")
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + database
    os.environ.setdefault("GATEWAY_MODE", "test")
    # Runs are performed here, synchronously; nothing is left queued for absent workers.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import psycopg

    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _drop(database: str) -> None:
    from django.db import connections

    connections.close_all()
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')


def _install(out_dir: Path):
    from demo.install import install_sources
    from demo.sources import DEMO_SOURCES
    from restitution.catalogue import sync_catalogue
    from restitution.models import Customer, LegacyIdentity

    sync_catalogue()
    sources = install_sources([s for s in DEMO_SOURCES if s["kind"] == "sql"])
    customers = json.loads((out_dir / "ground_truth" / "customers.json").read_text())
    created = Customer.objects.bulk_create(
        [Customer(reference=c["reference"], display_name=c.get("display_name", "")) for c in customers],
        batch_size=5000)
    LegacyIdentity.objects.bulk_create(
        [LegacyIdentity(customer=obj, system=system, value=value)
         for obj, c in zip(created, customers, strict=True)
         for system, value in c["identities"].items()], batch_size=5000)
    return sources[0]


def _baseline(source) -> tuple[int, float]:
    """Raw: the same SELECTs streamed from the legacy database, COPY'd into PostgreSQL as JSON."""
    import sqlalchemy as sa
    from django.db import connection

    from restitution.sources.base import connection_from_env

    engine = sa.create_engine(connection_from_env(source.connection_env))
    rows = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_raw (customer text, data jsonb)")
        for options in source.options["datasets"].values():
            query = options["query"].replace("{customer_filter}", "1=1")
            with engine.connect() as conn, cursor.copy("COPY bench_raw (customer, data) FROM STDIN") as copy:
                result = conn.execution_options(stream_results=True, yield_per=2000).execute(sa.text(query))
                keys = list(result.keys())
                for row in result:
                    values = dict(zip(keys, row, strict=True))
                    copy.write_row((str(values.get(keys[0])), json.dumps(values, default=str)))
                    rows += 1
        cursor.execute("DROP TABLE bench_raw")
    engine.dispose()
    return rows, time.perf_counter() - started


#: The figures a script reads (the first six are the scale issue's), in this order.
MACHINE_LINES = ("ratio_first_run_vs_baseline", "ratio_rerun_vs_baseline", "per_customer_run_overhead_ms",
                 "ratio_two_workers_vs_one", "store_bytes_per_reading", "webdav_files_per_customer_year",
                 "ratio_load_curve_files_vs_baseline", "ratio_two_workers_vs_one_load_curve")


def _insurer(args, out_dir: Path, report: dict, machine: dict) -> None:
    """Insurer policies (SQLite, two SQL datasets): baseline, first run, re-run, per-customer runs."""
    from demo.generator import generate
    from demo.sources import demo_environment
    from restitution import extraction
    from restitution.models import Customer, ExtractionRun, Record

    t0 = time.perf_counter()
    generate(out_dir, customers=args.customers, systems=("insurer",), malformed=False)
    report["insurer_generation_s"] = round(time.perf_counter() - t0, 2)
    os.environ.update(demo_environment(out_dir, telco_url="http://127.0.0.1:9"))
    source = _install(out_dir)
    # The demo source's request-rate cap (50 a second) would bound back-to-back per-customer
    # runs at 25 a second (two legacy reads each): it protects the legacy system and is not the
    # gateway's cost, which is what is measured here.
    source.max_requests_per_second = 0
    source.save(update_fields=["max_requests_per_second"])

    raw_rows, raw_seconds = _baseline(source)

    t0 = time.perf_counter()
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    batch_seconds = time.perf_counter() - t0
    assert run.status == ExtractionRun.Status.SUCCEEDED, run.error
    stored = Record.objects.count()

    t0 = time.perf_counter()
    again = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    idem_seconds = time.perf_counter() - t0
    assert again.created == again.updated == 0

    sample = list(Customer.objects.order_by("reference")[: args.per_customer_runs])
    t0 = time.perf_counter()
    # As a consent does: the request commits the run with its message, whose task performs it
    # (eagerly here: the call returns once the run is over). Outcomes are read after the timing.
    run_ids = [extraction.request_extraction(source=source, customer=customer).pk for customer in sample]
    per_seconds = time.perf_counter() - t0
    per_runs = list(ExtractionRun.objects.filter(pk__in=run_ids))
    assert all(r.status == ExtractionRun.Status.SUCCEEDED for r in per_runs)
    per_records = sum(r.read for r in per_runs)
    # What the same rows cost inside a batch run; the rest is per-run overhead.
    per_record_cost = idem_seconds / max(1, again.read)
    overhead_ms = (per_seconds - per_records * per_record_cost) / max(1, len(sample)) * 1000

    baseline_rate = raw_rows / raw_seconds
    report.update({
        "customers": args.customers,
        "insurer_rows_read": run.read,
        "insurer_records_stored": stored,
        "baseline_select_copy_rows_per_s": round(baseline_rate),
        "gateway_first_run_records_per_s": round(run.read / batch_seconds),
        "gateway_first_run_s": round(batch_seconds, 2),
        "gateway_idempotent_rerun_records_per_s": round(again.read / idem_seconds),
        "gateway_idempotent_rerun_s": round(idem_seconds, 2),
        "per_customer_runs": len(sample),
        "per_customer_runs_s": round(per_seconds, 2),
    })
    machine["ratio_first_run_vs_baseline"] = round((run.read / batch_seconds) / baseline_rate, 3)
    machine["ratio_rerun_vs_baseline"] = round((again.read / idem_seconds) / baseline_rate, 3)
    machine["per_customer_run_overhead_ms"] = round(overhead_ms, 1)


def _energy(args, out_dir: Path, report: dict, machine: dict) -> None:
    """Load curve: CSV files → store against reading them and COPYing; bytes per reading; WebDAV."""
    from tests.bench import energy

    figures, curve = energy.measure(out_dir / "energy", meters=args.meters, days=args.energy_days)
    report.update({
        "meters": figures.meters,
        "energy_days": figures.days,
        "load_curve_files": figures.files,
        "load_curve_lines": figures.lines,
        "baseline_files_copy_rows_per_s": round(figures.baseline_rows_per_s),
        "gateway_load_curve_rows_per_s": round(figures.run_rows_per_s),
        "gateway_load_curve_run_s": round(figures.run_seconds, 2),
        "load_curve_records_stored": figures.records,
        "load_curve_readings_held": figures.readings,
        "load_curve_store_bytes": figures.store_bytes,
        "store_bytes_per_record": round(figures.store_bytes / figures.records),
    })
    machine["ratio_load_curve_files_vs_baseline"] = round(figures.run_rows_per_s / figures.baseline_rows_per_s, 3)
    machine["store_bytes_per_reading"] = round(figures.store_bytes / figures.readings, 1)
    if args.skip_webdav:
        return
    dav = energy.webdav_push(curve, days=args.energy_days, work_dir=out_dir)
    report.update({
        "webdav_customer_readings": dav.customer_readings,
        "webdav_files": dav.files,
        "webdav_folders": dav.folders,
        "webdav_mib": round(dav.bytes / 2**20, 1),
        "webdav_push_s": round(dav.seconds, 1),
    })
    machine["webdav_files_per_customer_year"] = round(dav.files_per_year)


def _sharded(args, machine: dict) -> None:
    """Two worker processes ÷ one on the same sharded run (tests/bench/sharded.py)."""
    from tests.bench import sharded

    result = sharded.measure(args.sharded_customers or args.customers)
    machine["ratio_two_workers_vs_one"] = round(float(result["ratio_two_workers_vs_one"]), 3)
    if not args.skip_energy:  # the same for the load-curve files, shards by identity hash
        files = sharded.measure_files(args.meters, args.energy_days)
        machine["ratio_two_workers_vs_one_load_curve"] = round(float(files["ratio_two_workers_vs_one"]), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000, help="insurer customers (default 20 000)")
    parser.add_argument("--per-customer-runs", type=int, default=200,
                        help="single-customer runs timed for the per-run overhead (default 200)")
    parser.add_argument("--meters", type=int, default=20,
                        help="registered customers with a meter in the load-curve part (default 20)")
    parser.add_argument("--energy-days", type=int, default=365, help="local days of load curve (default 365)")
    parser.add_argument("--sharded-customers", type=int, default=0,
                        help="customers for the two-workers measure (default: --customers)")
    parser.add_argument("--database", default="restitution_bench")
    parser.add_argument("--skip-insurer", action="store_true", help="no insurer part (its three lines: nan)")
    parser.add_argument("--skip-energy", action="store_true", help="no load-curve part (implies --skip-webdav)")
    parser.add_argument("--skip-webdav", action="store_true", help="no WebDAV push")
    parser.add_argument("--skip-sharded", action="store_true", help="no two-workers measure")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    args = parser.parse_args()

    report: dict = {}
    machine: dict = dict.fromkeys(MACHINE_LINES, float("nan"))
    started = time.perf_counter()
    _setup_django(args.database)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp)
            if not args.skip_insurer:
                _insurer(args, out_dir / "insurer", report, machine)
            if not args.skip_energy:
                _energy(args, out_dir, report, machine)
    finally:
        _drop(args.database)
    if not args.skip_sharded:
        _sharded(args, machine)
    report["bench_total_s"] = round(time.perf_counter() - started, 1)

    width = max(len(k) for k in [*report, *machine])
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    print()
    for key in MACHINE_LINES:
        print(f"{key} {machine[key]}")
    if args.json:
        Path(args.json).write_text(json.dumps({**report, **machine}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
