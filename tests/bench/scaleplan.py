"""The worked scale plan of docs/scaling.md, computed from the figures of one `make bench` run.

    make bench BENCH_ARGS="--customers 100000 --meters 100 --json var/bench.json"
    .venv/bin/python -m tests.bench.scaleplan var/bench.json           # markdown tables

Inputs (all from that run): the store's bytes per half-hour reading, the load-curve batch run's
legacy lines per second (one worker process), the two-workers ratio (when the run had it), the
per-customer run overhead and the WebDAV files per customer-year. What is assumed rather than
measured is printed as such.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HALF_HOURS_A_DAY = 48
DAYS = 365
YEARS = 2
CUSTOMERS = (1_000_000, 10_000_000)
WORKERS = (4, 16, 64)


def _efficiency(figures: dict) -> tuple[float, str]:
    """Share of a worker's single-process rate each extra worker adds (from 2 workers ÷ 1)."""
    ratio = figures.get("ratio_two_workers_vs_one")
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return 1.0, "assumed linear (the run had no two-workers figure)"
    return min(1.0, float(ratio) / 2), f"from ratio_two_workers_vs_one = {ratio}"


def plan(figures: dict) -> str:
    per_reading = float(figures["store_bytes_per_reading"])
    rate = float(figures["gateway_load_curve_rows_per_s"])
    overhead_ms = float(figures.get("per_customer_run_overhead_ms", float("nan")))
    efficiency, why = _efficiency(figures)
    readings_per_year = HALF_HOURS_A_DAY * DAYS
    lines = [
        f"Inputs: {per_reading:g} B per reading; {rate:,.0f} legacy lines/s per worker process; "
        f"per-worker efficiency {efficiency:.2f} ({why}); per-customer run overhead {overhead_ms:g} ms.",
        "",
        f"Per customer: {readings_per_year:,} readings a year = {readings_per_year * per_reading / 2**20:.2f} MiB "
        f"a year in the store, {YEARS * readings_per_year * per_reading / 2**20:.2f} MiB for {YEARS} years.",
        "",
        "| customers | readings held (2 years) | store size | nightly lines (1 day) | "
        + " | ".join(f"nightly h, {w} workers" for w in WORKERS) + " | "
        + " | ".join(f"backfill h, {w} workers" for w in WORKERS) + " |",
        "|" + " --- |" * (4 + 2 * len(WORKERS)),
    ]
    for customers in CUSTOMERS:
        held = customers * readings_per_year * YEARS
        nightly = customers * HALF_HOURS_A_DAY
        cells = [f"{customers:,}", f"{held / 1e9:,.1f} G", f"{held * per_reading / 1e12:,.1f} TB",
                 f"{nightly / 1e6:,.0f} M"]
        for total in (nightly, held):
            for workers in WORKERS:
                speed = rate * (1 + (workers - 1) * efficiency)
                cells.append(f"{total / speed / 3600:,.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Consent-triggered runs (one per new consent, per-run overhead only): "
              + ", ".join(f"{n:,} a day = {n * overhead_ms / 1000 / 3600:.1f} worker-hours"
                          for n in (10_000, 100_000)) + "."]
    files = figures.get("webdav_files_per_customer_year")
    if files is not None and not (isinstance(files, float) and math.isnan(files)):
        lines.append(f"WebDAV: {files:g} files per customer-year, about {float(files) / DAYS:.1f} a night per "
                     "customer with a destination.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(plan(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
