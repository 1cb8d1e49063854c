"""Extraction benchmark: gateway records/s against a raw SELECT → COPY baseline, same data, same run.

    make bench                      # 20 000 insurer customers
    make bench BENCH_ARGS="--customers 100000"

Reports ratios, never absolute targets: both sides run on the same machine in the same run.
Uses its own database (restitution_bench), created and dropped here.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--per-customer-runs", type=int, default=200)
    parser.add_argument("--database", default="restitution_bench")
    args = parser.parse_args()

    _setup_django(args.database)
    try:
        from demo.generator import generate
        from demo.sources import demo_environment
        from restitution import extraction
        from restitution.models import Customer, ExtractionRun, Record

        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp)
            t0 = time.perf_counter()
            generate(out_dir, customers=args.customers, systems=("insurer",), malformed=False)
            generated_in = time.perf_counter() - t0
            os.environ.update(demo_environment(out_dir, telco_url="http://127.0.0.1:9"))
            source = _install(out_dir)

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
            per_records = 0
            for customer in sample:
                r = extraction.run_synchronously(
                    run=extraction.request_extraction(source=source, customer=customer))
                per_records += r.read
            per_seconds = time.perf_counter() - t0
            # What the same rows cost inside a batch run; the rest is per-run overhead.
            per_record_cost = idem_seconds / max(1, again.read)
            overhead_ms = (per_seconds - per_records * per_record_cost) / len(sample) * 1000

        report = {
            "customers": args.customers,
            "generation_s": round(generated_in, 2),
            "rows_read": run.read,
            "records_stored": stored,
            "baseline_select_copy_rows_per_s": round(raw_rows / raw_seconds),
            "gateway_first_run_records_per_s": round(run.read / batch_seconds),
            "gateway_idempotent_rerun_records_per_s": round(again.read / idem_seconds),
            "ratio_first_run_vs_baseline": round((run.read / batch_seconds) / (raw_rows / raw_seconds), 3),
            "ratio_rerun_vs_baseline": round((again.read / idem_seconds) / (raw_rows / raw_seconds), 3),
            "per_customer_runs": len(sample),
            "per_customer_run_overhead_ms": round(overhead_ms, 1),
        }
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        return 0
    finally:
        _drop(args.database)


if __name__ == "__main__":
    sys.exit(main())
