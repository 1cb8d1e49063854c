"""Export benchmark: peak memory of the export task for 100 000 vs 1 000 000 records (streaming
means it must not grow: goal ratio ≤ 1.2), and its speed compared, in the same run, with
`COPY (…) TO STDOUT | gzip` of the same rows.

    make bench-export                                 # 100 000 and 1 000 000 records
    make bench-export BENCH_ARGS="--small 20000 --large 200000"

Each export runs in a fresh process (`python -m tests.bench.exports --job N`), so its peak RSS
(VmHWM) is the task's own. Uses its own database (restitution_bench_exports, dropped at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

DATABASE = "restitution_bench_exports"
ROOT = Path(__file__).resolve().parents[2]


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run_job(job_id: int) -> int:
    """Child process: set Django up on the existing bench database, run one export, report."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from restitution import exports
    from restitution.models import ExportJob

    ready_kib = _peak_rss_kib()
    started = time.perf_counter()
    status = exports.execute_export(job_id=job_id) if job_id else "idle"
    elapsed = time.perf_counter() - started
    job = ExportJob.objects.filter(pk=job_id).first()
    print(json.dumps({"status": status, "seconds": elapsed, "peak_rss_kib": _peak_rss_kib(),
                      "ready_rss_kib": ready_kib, "records": job.records_total if job else 0,
                      "size": job.size if job else 0}))
    return 0


def _child(job_id: int, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.exports", "--job", str(job_id)], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _insert_readings(customer_id: int, dataset_id: int, count: int, first_seq: int) -> None:
    """`count` half-hourly readings for one customer, written by PostgreSQL itself (fast setup)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO restitution_record (customer_id, dataset_id, source_id, key, data, content_hash,
                                            record_at, extracted_at, seq, deleted)
            SELECT %s, %s, NULL, '12345678901234|' || s.start, jsonb_build_object(
                       'delivery_point', '12345678901234', 'start', s.start, 'end', s.stop,
                       'average_power_kw', round((0.2 + (n %% 48) / 30.0)::numeric, 3)),
                   md5(n::text), s.at, now(), %s + n, false
            FROM generate_series(1, %s) AS n,
                 LATERAL (SELECT timestamptz '1970-01-01 00:00Z' + n * interval '30 minutes' AS at) AS t,
                 LATERAL (SELECT to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS start,
                                 to_char((t.at + interval '30 minutes') AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS stop,
                                 t.at AS at) AS s
        """, [customer_id, dataset_id, first_seq, count])
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval('restitution_change_seq', (SELECT max(seq) FROM restitution_record))")
        cursor.execute("ANALYZE restitution_record")


def _copy_gzip(database_url: str, customer_id: int, dataset_id: int) -> tuple[float, int]:
    """The baseline: PostgreSQL prints the same rows, gzip compresses them (seconds, bytes)."""
    query = (f"COPY (SELECT key, seq, record_at, extracted_at, data FROM restitution_record WHERE customer_id = "
             f"{customer_id} AND dataset_id = {dataset_id} AND NOT deleted ORDER BY seq) TO STDOUT")
    url = database_url.replace("postgres://", "postgresql://", 1)
    started = time.perf_counter()
    out = subprocess.run(f"psql {shlex.quote(url)} -c {shlex.quote(query)} | gzip | wc -c", shell=True,  # noqa: S602
                         check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--job", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job is not None:
        return _run_job(args.job)

    from tests.bench.extraction import _drop, _setup_django

    media = tempfile.mkdtemp(prefix="bench-exports-")
    os.environ["GATEWAY_MEDIA_ROOT"] = media
    _setup_django(DATABASE)
    try:
        from restitution import portability
        from restitution.catalogue import sync_catalogue
        from restitution.models import Customer, Dataset, ExportJob

        sync_catalogue()
        curve = Dataset.objects.get(slug="energy-load-curve")
        env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "true"}
        report: dict[str, object] = {}
        idle = _child(0, env)
        report["idle_process_peak_rss_mib"] = round(idle["peak_rss_kib"] / 1024, 1)
        first_seq = 0
        results = {}
        for label, count in (("small", args.small), ("large", args.large)):
            customer = Customer.objects.create(reference=f"C-{label.upper()}")
            started = time.perf_counter()
            _insert_readings(customer.pk, curve.pk, count, first_seq)
            first_seq += count
            print(f"inserted {count} records in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            window = portability.Window(None, None)
            job = ExportJob.objects.create(public_id=uuid.uuid4(), customer=customer, datasets=[curve.slug],
                                           window_start=window.start, window_end=window.end)
            result = _child(job.pk, env)
            assert result["status"] == "succeeded" and result["records"] == count, result
            copy_s, copy_bytes = _copy_gzip(os.environ["DATABASE_URL"], customer.pk, curve.pk)
            results[label] = result
            report[f"{label}_records"] = count
            report[f"{label}_peak_rss_mib"] = round(result["peak_rss_kib"] / 1024, 1)
            report[f"{label}_export_s"] = round(result["seconds"], 2)
            report[f"{label}_export_records_per_s"] = round(count / result["seconds"])
            report[f"{label}_archive_mib"] = round(result["size"] / 2**20, 1)
            report[f"{label}_copy_gzip_s"] = round(copy_s, 2)
            report[f"{label}_copy_gzip_records_per_s"] = round(count / copy_s)
            report[f"{label}_copy_gzip_mib"] = round(copy_bytes / 2**20, 1)
            report[f"{label}_ratio_export_time_vs_copy_gzip"] = round(result["seconds"] / copy_s, 2)
        ratio = results["large"]["peak_rss_kib"] / results["small"]["peak_rss_kib"]
        report["ratio_peak_rss_large_vs_small"] = round(ratio, 3)
        report["goal_peak_rss_ratio_at_most_1.2"] = "met" if ratio <= 1.2 else "NOT MET"
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        return 0 if ratio <= 1.2 else 1
    finally:
        _drop(DATABASE)
        subprocess.run(["rm", "-rf", media], check=False)


if __name__ == "__main__":
    sys.exit(main())
