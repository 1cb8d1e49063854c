"""Load run: a CDR-like request mix against gunicorn on loopback, at increasing offered rates.

    make load                      # rates 10 → 150 req/s, 20 s each (about 6 minutes)
    make load LOAD_ARGS=--short    # rates 10 → 40 req/s, 6 s each
    make load LOAD_ARGS=--without-exports   # the mix without archives (no worker), for comparison

Sets up like the fault suite (its own PostgreSQL and Redis, the demo legacy systems extracted by
a real worker, PIMS clients connected through the real consent flow), then:

1. open loop: the mix (record pages, dataset lists, change feeds, token refreshes, archives
   asked for, polled and downloaded) at each offered rate; per endpoint tier, throughput,
   p50/p95/p99 latency, errors by HTTP status (or by failure name when there was no answer:
   `read-timeout`, `connect-error`…) and, for downloads, the bytes read; a Celery worker (one
   process) builds the archives meanwhile;
2. closed loop: record pages back to back, then the bare Django JSON view of tests/load/urls.py
   back to back, same gunicorn, same concurrency: the ratio of their throughputs.

Writes tests/artifacts/load/report.json. Reports figures; it asserts nothing (goal: p95 ≤ 100 ms
for record pages at the highest sustained rate, 0 errors).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.services import ROOT, Gunicorn

ARTIFACTS = ROOT / "tests" / "artifacts" / "load"
GOAL_P95_MS = 100.0


def _by_status(errors: dict[str, int]) -> str:
    """`503: 2, read-timeout: 1`, or `-` when there was none."""
    return ", ".join(f"{status}: {count}" for status, count in errors.items()) or "-"


def _table(rows: list[dict]) -> str:
    head = (f"{'rate':>6} {'tier':<15} {'req':>6} {'per_s':>7} {'err':>4} {'p50':>7} {'p95':>7} {'p99':>7} "
            f"{'bytes':>11}  errors by status")
    lines = [head]
    for row in rows:
        for tier, figures in row["tiers"].items():
            lines.append(f"{row['offered']:>6} {tier:<15} {figures['requests']:>6} {figures['per_s']:>7} "
                         f"{figures['errors']:>4} {figures['p50_ms']:>7} {figures['p95_ms']:>7} {figures['p99_ms']:>7} "
                         f"{figures.get('bytes', ''):>11}  {_by_status(figures['errors_by_status'])}")
    return "\n".join(lines)


def _without_nan(value):
    """A percentile of nothing is NaN, which JSON cannot hold: null instead."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--rates", default="", help="comma-separated offered rates (req/s)")
    parser.add_argument("--step-seconds", type=float, default=0)
    parser.add_argument("--warmup-seconds", type=float, default=0,
                        help="requests sent first and not reported (20 req/s, the mix without archives); "
                        "default 10 s, 3 s with --short")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--without-exports", action="store_true",
                        help="the mix without archives (and no worker building them), for comparison")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r] or ([10, 20, 40] if args.short
                                                              else [10, 20, 30, 40, 60, 80, 100, 120, 150])
    step = args.step_seconds or (6.0 if args.short else 20.0)
    args.warmup_seconds = args.warmup_seconds or (3.0 if args.short else 10.0)

    from tests.faults import run as faults

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="load-", dir=ARTIFACTS))
    suite = faults.Suite(short=args.short, workdir=workdir)  # sets Django up
    from tests.load.traffic import LOAD_MIX, Mix, closed_loop, open_loop, percentile, summarize

    server, _ = faults._telco(suite, failure_rate=0.0, timeout_rate=0.0, delay_seconds=0.0, seed=7)
    web = worker = None
    try:
        faults._install(suite, with_users=True)
        worker = faults._worker(suite, "w")
        faults._request_all()
        faults._drain(timeout=300)
        worker.stop()
        # The archives asked for during the open loop are built by one worker process.
        worker = None if args.without_exports else faults._worker(suite, "exports", concurrency=1)
        load_mix = {k: v for k, v in LOAD_MIX.items() if k != "export" or not args.without_exports}
        env = suite.env(DJANGO_SETTINGS_MODULE="tests.load.settings")
        web = Gunicorn(env, port=suite.web_port, log_dir=suite.logs, workers=args.workers, threads=args.threads)
        clients = faults._clients(suite, web)
        refresher = clients.pop()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM restitution_record")
            records = cursor.fetchone()[0]
        print(f"load: {records} records, {len(clients)} data clients + 1 refreshing client, gunicorn "
              f"{args.workers}×{args.threads} (gthread) on 127.0.0.1:{web.port}", flush=True)

        # 0. Warm-up, not reported: the first requests of a fresh server pay for lazy imports, cold
        # PostgreSQL caches and plans, and the statistics autovacuum gathers after the extraction.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        warmup = Mix(clients, refreshers=[refresher], mix={k: v for k, v in load_mix.items() if k != "export"},
                     seed=0)
        open_loop(web.url, warmup, rate=20, duration=args.warmup_seconds, max_in_flight=128)
        print(f"  warm-up: {args.warmup_seconds:.0f} s at 20/s (not reported)", flush=True)

        # 1. Open loop at increasing rates.
        steps = []
        exports_pending: dict = {}
        downloads_pending: dict = {}
        for rate in rates:
            mix = Mix(clients, refreshers=[refresher], mix=load_mix, seed=rate)
            # An archive still being built when the last step ended is polled in this one (a client
            # has one export at a time: asking again would be 429); one seen ready and not yet
            # downloaded is downloaded in this one.
            mix.exports = {name: job for name, job in exports_pending.items() if job[0]}
            mix.downloads = dict(downloads_pending)
            samples, skipped = open_loop(web.url, mix, rate=rate, duration=step, max_in_flight=128)
            exports_pending, downloads_pending = mix.exports, mix.downloads
            tiers = summarize(samples, seconds=step)
            everything = tiers["all"]
            sustained = (everything["errors"] == 0 and skipped == 0
                         and everything["per_s"] >= 0.95 * rate)
            ready = [s * 1000 for s in mix.export_ready_s]
            downloads = [s for s in samples if s.tier == "export-download"]
            fetched = [s for s in downloads if s.ok]
            steps.append({"offered": rate, "sustained": sustained, "not_sent_overload": skipped,
                          "errors_by_status": everything["errors_by_status"], "tiers": tiers,
                          "archives": {"ready": len(ready), "failed": mix.exports_failed,
                                       "ready_p50_ms": round(percentile(ready, 50), 1),
                                       "ready_p95_ms": round(percentile(ready, 95), 1),
                                       "downloaded": len(fetched), "download_errors": len(downloads) - len(fetched),
                                       "bytes_downloaded": sum(s.bytes for s in fetched),
                                       "download_p50_ms": round(percentile([s.seconds * 1000 for s in fetched],
                                                                           50), 1)}})
            archives = steps[-1]["archives"]
            print(f"  offered {rate}/s: served {everything['per_s']}/s, errors {everything['errors']} "
                  f"(by status: {_by_status(everything['errors_by_status'])}), "
                  f"record pages p95 {tiers.get('record-page', {}).get('p95_ms')} ms"
                  f"{'' if sustained else '  (not sustained)'}; archives ready {len(ready)}, "
                  f"p50 {archives['ready_p50_ms']} ms from request to ready; downloaded {len(fetched)} "
                  f"({archives['bytes_downloaded']} bytes, p50 {archives['download_p50_ms']} ms, "
                  f"{archives['download_errors']} failed)", flush=True)
            time.sleep(1)
        print(_table(steps))
        if worker is not None:
            worker.stop()
            worker = None

        # 2. Saturation: record pages vs the bare JSON view, same server, same concurrency.
        concurrency = 8
        saturation_s = 5.0 if args.short else 12.0
        rng = random.Random(3)

        async def record_page(http):
            tokens = rng.choice(clients)
            slug = rng.choice(tokens.datasets)
            response = await http.get(f"/api/v1/datasets/{slug}/records?page_size=100",
                                      headers={"Authorization": f"Bearer {tokens.access}"})
            return response.status_code

        async def bare(http):
            return (await http.get("/bare")).status_code

        pages = summarize(closed_loop(web.url, record_page, concurrency=concurrency, duration=saturation_s,
                                      tier="record-page"), seconds=saturation_s)["record-page"]
        baseline = summarize(closed_loop(web.url, bare, concurrency=concurrency, duration=saturation_s,
                                         tier="bare-json"), seconds=saturation_s)["bare-json"]
        ratio = round(pages["per_s"] / baseline["per_s"], 3) if baseline["per_s"] else None
        sustained = [s for s in steps if s["sustained"]]
        best = sustained[-1] if sustained else None
        best_p95 = best["tiers"].get("record-page", {}).get("p95_ms") if best else None
        report = {
            "short": args.short, "without_exports": args.without_exports, "records": records,
            "clients": len(clients) + 1,
            "gunicorn": {"workers": args.workers, "threads": args.threads, "class": "gthread"},
            "step_seconds": step, "steps": steps,
            "saturation": {"concurrency": concurrency, "seconds": saturation_s, "record_page": pages,
                           "bare_json": baseline, "ratio_record_page_to_bare": ratio},
            "highest_sustained_rate": best["offered"] if best else None,
            "record_page_p95_ms_at_that_rate": best_p95,
            "goal_met": bool(best and best_p95 is not None and best_p95 <= GOAL_P95_MS),
        }
        print(f"saturation ({concurrency} concurrent): record pages {pages['per_s']}/s "
              f"(p95 {pages['p95_ms']} ms, errors {pages['errors']}: {_by_status(pages['errors_by_status'])}), "
              f"bare JSON view {baseline['per_s']}/s (p95 {baseline['p95_ms']} ms, errors {baseline['errors']}: "
              f"{_by_status(baseline['errors_by_status'])}): ratio {ratio}")
        print(f"highest sustained rate: {report['highest_sustained_rate']}/s, record pages p95 {best_p95} ms "
              f"(goal ≤ {GOAL_P95_MS:.0f} ms: {'met' if report['goal_met'] else 'NOT met'})")
        name = f"report{'-short' if args.short else ''}{'-without-exports' if args.without_exports else ''}.json"
        (ARTIFACTS / name).write_text(json.dumps(_without_nan(report), indent=2, allow_nan=False))
        return 0
    finally:
        for process in (web, worker):
            if process is not None:
                process.stop()
        server.shutdown()
        suite.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
