"""Per-customer run overhead: statements and milliseconds of the run a consent triggers.

    .venv/bin/python -m tests.bench.per_customer [--customers 200] [--runs 100]

Queues and performs one run of the demo insurer SQL source per customer, as a consent does
(request_extraction, whose committed message runs the task: eagerly here, so the call returns
once the run is over), and reports per run: the statements sent to the gateway's database
(django's CaptureQueriesContext) and the wall time, median and mean. Each run's outcome is read
back after its timing: checking the bench is not part of the run.
Uses its own database (restitution_bench_customer), created and dropped here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def measure(*, customers: int = 200, runs: int = 100, verbose: bool = False) -> dict[str, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from demo.generator import generate
    from demo.sources import demo_environment
    from restitution import extraction
    from restitution.models import Customer, ExtractionRun
    from tests.bench.extraction import _install

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        generate(out_dir, customers=customers, systems=("insurer",), malformed=False)
        os.environ.update(demo_environment(out_dir, telco_url="http://127.0.0.1:9"))
        source = _install(out_dir)
        source.max_requests_per_second = 0  # the demo's cap is the legacy system's, not a cost (extraction.py)
        source.save(update_fields=["max_requests_per_second"])
        first = extraction.run_synchronously(run=extraction.request_extraction(source=source))
        assert first.status == ExtractionRun.Status.SUCCEEDED, first.error
        sample = list(Customer.objects.filter(identities__system="insurer").order_by("reference")[:runs])
        # One warm-up run: imports and first connections are not per-run costs.
        extraction.run_synchronously(run=extraction.request_extraction(source=source, customer=sample[-1]))
        times, counts, kinds = [], [], Counter()
        for customer in sample:
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                run = extraction.request_extraction(source=source, customer=customer,
                                                    trigger=ExtractionRun.Trigger.CONSENT)
                times.append((time.perf_counter() - t0) * 1000)
            run.refresh_from_db()
            assert run.status == ExtractionRun.Status.SUCCEEDED, run.error
            counts.append(len(queries.captured_queries))
            for q in queries.captured_queries:
                kinds[q["sql"].split()[0].upper()] += 1
        if verbose:
            for q in queries.captured_queries:
                print("   ", q["sql"][:160])
    return {
        "per_customer_run_ms_median": round(statistics.median(times), 2),
        "per_customer_run_ms_mean": round(statistics.fmean(times), 2),
        "per_customer_run_statements": round(statistics.fmean(counts), 1),
        **{f"statements_{k.lower()}": round(v / len(sample), 1) for k, v in sorted(kinds.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database", default="restitution_bench_customer")
    parser.add_argument("--verbose", action="store_true", help="print the last run's statements")
    args = parser.parse_args()
    from tests.bench.extraction import _drop, _setup_django

    _setup_django(args.database)
    try:
        report = measure(customers=args.customers, runs=args.runs, verbose=args.verbose)
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        return 0
    finally:
        _drop(args.database)


if __name__ == "__main__":
    sys.exit(main())
