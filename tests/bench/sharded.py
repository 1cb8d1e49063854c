"""Sharded batch run benchmark: the same sharded run of the demo insurer SQL source performed by
ONE Celery worker process (concurrency 1), then by TWO (concurrency 1 each); throughput ratio.

    .venv/bin/python -m tests.bench.sharded --customers 20000
    .venv/bin/python -m tests.bench.sharded --meters 40 --days 60     # the load-curve CSV files

With --meters, the source is the demo network operator's load-curve files instead (shards by
identity hash: every shard reads every file and keeps its own meters' lines).

`measure(customers)` is what `make bench` calls: it runs this module in a child process (its own
database, restitution_bench_sharded, created and dropped there; the caller's Django and
database are left alone) and returns {"ratio_two_workers_vs_one": x}; `measure_files(meters,
days)` does the same for the load-curve files. Each configuration starts
from an empty store, so both perform the same first run; throughput is legacy rows read per
second between the run's start (its planning into shards) and its end (the last shard and the
whole-run step). A ratio, never an absolute figure: both sides run in the same process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def measure(customers: int) -> dict[str, float]:
    """{"ratio_two_workers_vs_one": throughput with two worker processes ÷ with one}."""
    done = subprocess.run([sys.executable, "-m", "tests.bench.sharded", "--customers", str(customers), "--json"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sharded benchmark failed: {done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"ratio_two_workers_vs_one": report["ratio_two_workers_vs_one"]}


def measure_files(meters: int, days: int) -> dict[str, float]:
    """{"ratio_two_workers_vs_one": x} for the load-curve files of `meters` meters over `days` days."""
    done = subprocess.run([sys.executable, "-m", "tests.bench.sharded", "--meters", str(meters),
                           "--days", str(days), "--json"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sharded load-curve benchmark failed: {done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"ratio_two_workers_vs_one": report["ratio_two_workers_vs_one"]}


def _setup_django(database: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/restitution")
    url = base.rsplit("/", 1)[0] + "/" + database
    os.environ.update({"DATABASE_URL": url, "CELERY_TASK_ALWAYS_EAGER": "false"})
    os.environ.setdefault("GATEWAY_MODE", "test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import psycopg

    with psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def _one_configuration(source, *, workers: int, env: dict[str, str], log_dir: Path) -> dict[str, float]:
    from django.db import connection

    from restitution import extraction
    from restitution.models import ExtractionRun, RunShard
    from tests.conftest import WorkerProcess

    with connection.cursor() as cursor:  # the same first run each time: an empty store
        cursor.execute("TRUNCATE restitution_record, restitution_rejectedrow CASCADE")
    fleet = [WorkerProcess(env, concurrency=1, name=f"bench{workers}-{n}", log_dir=log_dir)
             for n in range(workers)]
    try:
        run = extraction.request_extraction(source=source)
        deadline = time.monotonic() + 3600
        while ExtractionRun.objects.filter(pk=run.pk, status__in=("queued", "running")).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the sharded run did not finish within an hour")
            time.sleep(0.2)
        run.refresh_from_db()
        if run.status != ExtractionRun.Status.SUCCEEDED or not run.sharded:
            raise RuntimeError(f"run {run.pk}: {run.status}, sharded={run.sharded}: {run.error}")
        seconds = (run.finished_at - run.started_at).total_seconds()
        shards = RunShard.objects.filter(run=run)
        busy = sum((s.finished_at - s.started_at).total_seconds() for s in shards)
        return {"rows": run.read, "seconds": seconds, "rows_per_s": run.read / seconds,
                "shards": shards.count(), "shard_busy_s": busy}
    finally:
        for worker in fleet:
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=16, help="shards of the run (customers per shard follow)")
    parser.add_argument("--meters", type=int, default=0,
                        help="measure the load-curve files of this many meters instead of the insurer")
    parser.add_argument("--days", type=int, default=60, help="local days of load curve (with --meters)")
    parser.add_argument("--database", default="restitution_bench_sharded")
    parser.add_argument("--json", action="store_true", help="one JSON line (what measure() reads)")
    args = parser.parse_args()
    database_url = _setup_django(args.database)
    try:
        from demo.generator import generate
        from demo.sources import demo_environment
        from tests.bench.extraction import _install

        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp)
            if args.meters:
                from tests.bench import energy

                energy.generate(out_dir, meters=args.meters, days=args.days)
                demo = demo_environment(out_dir, telco_url="http://127.0.0.1:9")
                os.environ.update(demo)
                source = energy.install(out_dir)
                units = args.meters
            else:
                generate(out_dir, customers=args.customers, systems=("insurer",), malformed=False)
                demo = demo_environment(out_dir, telco_url="http://127.0.0.1:9")
                os.environ.update(demo)
                source = _install(out_dir)
                units = args.customers
            source.max_concurrent_runs = 8  # the cap is not what is measured here
            source.max_requests_per_second = 0
            source.save()
            per_shard = max(1, -(-units // args.shards))
            env = {**os.environ, **demo, "DATABASE_URL": database_url, "GATEWAY_MODE": "test",
                   "CELERY_TASK_ALWAYS_EAGER": "false", "DATABASE_CONN_MAX_AGE": "0",
                   "GATEWAY_RUN_SHARD_CUSTOMERS": str(per_shard)}
            log_dir = out_dir / "logs"
            log_dir.mkdir()
            one = _one_configuration(source, workers=1, env=env, log_dir=log_dir)
            two = _one_configuration(source, workers=2, env=env, log_dir=log_dir)
        report = {
            "source": source.slug, "customers": units, "shards": one["shards"], "rows": one["rows"],
            "one_worker_rows_per_s": round(one["rows_per_s"]), "two_workers_rows_per_s": round(two["rows_per_s"]),
            "one_worker_s": round(one["seconds"], 2), "two_workers_s": round(two["seconds"], 2),
            # Sum of the shards' own durations ÷ wall time: how much the two workers overlapped.
            "two_workers_overlap": round(two["shard_busy_s"] / two["seconds"], 2),
            "ratio_two_workers_vs_one": round(two["rows_per_s"] / one["rows_per_s"], 3),
        }
        if args.json:
            print(json.dumps(report))
        else:
            width = max(len(k) for k in report)
            for key, value in report.items():
                print(f"{key:<{width}}  {value}")
        return 0
    finally:
        from tests.bench.extraction import _drop

        _drop(args.database)


if __name__ == "__main__":
    sys.exit(main())
