"""The fault suite: the gateway under crashes, outages and bad input, against real processes.

    make faults                       # every scenario, full size (about 7 minutes)
    make faults FAULTS_ARGS=--short   # the CI form: fewer kills, shorter outages
    make faults FAULTS_ARGS="--only 2,3"

It starts its own PostgreSQL cluster and Redis server on free loopback ports (never the shared
ones: it stops and restarts them), gunicorn web processes, Celery workers and beat, and the demo
legacy systems. Each scenario prints its figures and its checks; the whole run is written to
tests/artifacts/faults/report.json. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.faults.services import ROOT, Beat, Gunicorn, PrivatePostgres, PrivateRedis, free_port, wait_for

ARTIFACTS = ROOT / "tests" / "artifacts" / "faults"


@dataclass
class Result:
    number: int
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    status: str = "passed"  # passed | failed | not available | error

    def check(self, name: str, ok: bool, detail: Any = "") -> bool:
        self.checks.append((name, bool(ok), str(detail)[:400]))
        if not ok and self.status == "passed":
            self.status = "failed"
        return bool(ok)


class Suite:
    """The private services, the gateway's database, the demo legacy systems."""

    def __init__(self, *, short: bool, workdir: Path) -> None:
        self.short = short
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = PrivatePostgres(free_port(int(os.environ.get("FAULTS_PG_PORT", 5441))))
        self.redis = PrivateRedis(free_port(int(os.environ.get("FAULTS_REDIS_PORT", 6391))), self.logs)
        self.database_url = self.pg.create_database("faults")
        os.environ.update({
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis.url, "GATEWAY_MODE": "test",
            "CELERY_TASK_ALWAYS_EAGER": "false", "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"), "GATEWAY_VAR_DIR": str(workdir / "var"),
        })
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from demo.generator import generate

        self.customers = 3 if short else 6
        self.demo_dir = workdir / "demo"
        generate(self.demo_dir, customers=self.customers)
        self.web_port = free_port(8771)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a gateway process (web, worker, beat)."""
        from tests.conftest import demo_env_for

        env = {**os.environ, **demo_env_for(self.demo_dir, self.telco_url), "PYTHONUNBUFFERED": "1",
               # The API's rate limits stay on (they must fail open) but above the load offered.
               "API_RATE_PER_CUSTOMER": "200/s", "API_RATE_PER_CLIENT": "1000/s"}
        env.update(extra)
        return env

    telco_url = "http://127.0.0.1:9"  # set by the scenarios that start the telco service

    def reset(self) -> None:
        """An empty gateway database and an empty Redis for the next scenario."""
        from django.core.management import call_command
        from django.db import connections

        from restitution.gate import get_gate

        connections.close_all()
        call_command("flush", interactive=False, verbosity=0)
        import redis

        redis.Redis.from_url(self.redis.url).flushall()
        get_gate.cache_clear()

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
        self.redis.close()
        self.pg.close()


# --- helpers ---------------------------------------------------------------------------------

def _telco(suite: Suite, **faults: Any):
    from demo.telco_server import serve_in_thread
    from tests.conftest import TELCO_TOKEN

    server, url = serve_in_thread(suite.demo_dir / "telco", token=TELCO_TOKEN, **faults)
    suite.telco_url = url
    return server, url


def _install(suite: Suite, *, with_users: bool = False) -> None:
    from demo.install import install_demo, install_demo_client

    install_demo(suite.demo_dir, with_users=with_users)
    if with_users:
        install_demo_client()


def _request_all(sources=None) -> list[int]:
    from restitution import extraction
    from restitution.models import Source

    sources = sources or list(Source.objects.order_by("slug"))
    return [extraction.request_extraction(source=s).pk for s in sources]


def _active() -> int:
    from restitution.extraction import ACTIVE
    from restitution.models import ExtractionRun

    return ExtractionRun.objects.filter(status__in=ACTIVE).count()


def _drain(*, timeout: float, recover_every: float = 3.0, stale: float = 15.0, requeue: float = 20.0) -> float:
    """Wait until no run is queued or running, calling the product's stalled-run recovery as
    the beat schedule does (with thresholds shortened so the run stays bounded)."""
    from django.db import connections

    from restitution import extraction

    started = time.monotonic()
    last = 0.0
    while time.monotonic() - started < timeout:
        try:
            if _active() == 0:
                return time.monotonic() - started
            if time.monotonic() - last >= recover_every:
                last = time.monotonic()
                extraction.recover_stalled_runs(stale_after=timedelta(seconds=stale),
                                                requeue_after=timedelta(seconds=requeue))
        except Exception:  # noqa: BLE001 - the database may be coming back
            connections.close_all()
        time.sleep(0.5)
    raise RuntimeError(f"runs still active after {timeout:.0f}s")


def _compare_with_truth(suite: Suite, *, datasets: Callable[[str], bool] = lambda slug: True,
                        exclude: set[tuple[str, str, str]] | None = None) -> dict[str, int]:
    """Stored records against the generator's ground truth: missing, extra, different, duplicated."""
    from django.db import connection

    from tests.conftest import load_ground_truth, stored_records

    expected = {k: v for k, v in load_ground_truth(suite.demo_dir).items()
                if datasets(k[1]) and k not in (exclude or set())}
    actual = {k: v for k, v in stored_records().items() if datasets(k[1])}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - count(DISTINCT (customer_id, dataset_id, key)) FROM restitution_record")
        duplicated = cursor.fetchone()[0]
    missing = set(expected) - set(actual)
    return {"expected": len(expected), "stored": len(actual),
            "missing": len(missing), "extra": len(set(actual) - set(expected)),
            **({"missing_by_dataset": dict(Counter(dataset for _, dataset, _ in missing))} if missing else {}),
            "different": sum(1 for k in set(expected) & set(actual) if expected[k] != actual[k]),
            "duplicated": duplicated}


def _truth_checks(result: Result, comparison: dict[str, int]) -> None:
    result.figures["records"] = comparison
    result.check("every customer's records equal the ground truth",
                 comparison["missing"] == comparison["extra"] == comparison["different"] == 0
                 and comparison["expected"] > 0, comparison)
    result.check("no record duplicated", comparison["duplicated"] == 0, comparison["duplicated"])


def _run_statuses() -> dict[str, int]:
    from django.db.models import Count

    from restitution.models import ExtractionRun

    return dict(ExtractionRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))


def _failed_runs() -> list[str]:
    """What each failed run said, to read in the report without opening the logs."""
    from restitution.models import ExtractionRun

    return [f"{run.source.slug} (attempt {run.attempts}): {run.error[:300]}"
            for run in ExtractionRun.objects.filter(status="failed").select_related("source")]


def _worker(suite: Suite, name: str, *, concurrency: int = 2, **env: str):
    from tests.conftest import WorkerProcess

    return WorkerProcess(suite.env(**env), concurrency=concurrency, name=name, log_dir=suite.logs)


def _clients(suite: Suite, web: Gunicorn) -> list:
    """Every demo customer with a login, connected to the demo personal cloud through the real
    consent flow (over HTTP), all datasets granted."""
    from restitution.models import Customer, Dataset
    from tests.load.traffic import consent_over_http

    slugs = list(Dataset.objects.order_by("slug").values_list("slug", flat=True))
    users = Customer.objects.filter(user__isnull=False).order_by("reference").values_list("user__username", flat=True)
    return [consent_over_http(web.url, username=u, datasets=slugs) for u in users]


def _window(samples, start: float, end: float):
    return [s for s in samples if start <= s.at < end]


# --- 1. a worker SIGKILLed mid-extraction, 20 times -------------------------------------------

def scenario_1(suite: Suite, result: Result) -> None:
    from restitution.models import ExtractionRun

    suite.reset()
    server, _ = _telco(suite, failure_rate=0.03, timeout_rate=0.003, delay_seconds=2.5, seed=7)
    try:
        _install(suite)
        kills = 3 if suite.short else 20
        rng = random.Random(8)
        started = time.monotonic()
        _request_all()
        rounds, mid_run = 1, 0
        for n in range(kills):
            if _active() == 0:
                _request_all()  # the next full round: re-extracting is idempotent
                rounds += 1
            worker = _worker(suite, f"doomed{n}")
            try:
                wait_for(lambda: ExtractionRun.objects.filter(status="running").exists(), timeout=60,
                         what="a run to start")
                time.sleep(rng.uniform(0.2, 2.5))
                running = ExtractionRun.objects.filter(status="running").count()
            finally:
                worker.kill()
                worker.stop()
            mid_run += running > 0
            time.sleep(1.2)  # the killed runs' heartbeats are now older than the threshold below
            from restitution import extraction

            extraction.recover_stalled_runs(stale_after=timedelta(seconds=1), requeue_after=timedelta(seconds=20))
        rescuer = _worker(suite, "rescuer")
        try:
            drain_s = _drain(timeout=400)
        finally:
            rescuer.stop()
        statuses = _run_statuses()
        attempts = sum(ExtractionRun.objects.values_list("attempts", flat=True))
        result.figures.update({"kills": kills, "kills_while_a_run_was_running": mid_run, "rounds": rounds,
                               "runs": sum(statuses.values()), "run_statuses": statuses,
                               "run_attempts": attempts, "drain_after_last_kill_s": round(drain_s, 1),
                               "wall_s": round(time.monotonic() - started, 1)})
        if failed := _failed_runs():
            result.figures["failed_runs"] = failed
        result.check(f"{kills} SIGKILLs, each in the middle of a run", mid_run == kills, f"{mid_run}/{kills}")
        result.check("every run succeeded in the end", set(statuses) == {"succeeded"}, statuses)
        _truth_checks(result, _compare_with_truth(suite))
    finally:
        server.shutdown()


# --- 2. Redis stopped for 60 s under load -----------------------------------------------------

def scenario_2(suite: Suite, result: Result) -> None:
    import httpx
    from django.core.management import call_command

    from restitution.models import ExtractionRun, OutboxMessage
    from tests.load.traffic import BackgroundLoad, consent_over_http, statuses, summarize

    suite.reset()
    server, _ = _telco(suite, failure_rate=0.0, timeout_rate=0.0, delay_seconds=0.0, seed=7)
    outage = 10.0 if suite.short else 60.0
    rate = 15.0 if suite.short else 25.0
    web = worker = beat = load = None
    try:
        _install(suite, with_users=True)
        call_command("setup_schedules", verbosity=0)
        env = suite.env()
        web = Gunicorn(env, port=suite.web_port, log_dir=suite.logs)
        worker = _worker(suite, "w")
        beat = Beat(env, log_dir=suite.logs)
        _request_all()
        _drain(timeout=300)
        clients = _clients(suite, web)
        # One customer connects during the outage, one client only refreshes its tokens.
        newcomer, refresher = clients.pop(), clients.pop()
        load = BackgroundLoad(web.url, clients, refreshers=[refresher], rate=rate)
        time.sleep(5)
        last_run_before = ExtractionRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        queued_before = set(ExtractionRun.objects.filter(status__in=("queued", "running")).values_list("pk", flat=True))
        down_at = time.monotonic()
        suite.redis.stop()
        time.sleep(1)
        # During the outage: a customer connects a personal cloud; every client asks for fresh data.
        consent_started = time.monotonic()
        try:
            consent_over_http(web.url, username=newcomer.username, datasets=newcomer.datasets)
            consent_ok, consent_detail = True, f"{time.monotonic() - consent_started:.2f} s"
        except (AssertionError, httpx.HTTPError) as exc:
            consent_ok, consent_detail = False, str(exc)
        refresh_answers, requested_runs = [], []
        for tokens in clients:
            answer = httpx.post(f"{web.url}/api/v1/extractions", headers={"Authorization": f"Bearer {tokens.access}"},
                                timeout=10)
            refresh_answers.append(answer.status_code)
            if answer.status_code == 202:
                requested_runs += [item["id"] for item in answer.json()["items"]]
        # Every request made during the outage (consent, refreshes) created its runs in the store.
        created = list(ExtractionRun.objects.filter(pk__gt=last_run_before).values_list("pk", flat=True))
        waiting_in_outbox = OutboxMessage.objects.count()
        time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
        suite.redis.start()
        up_at = time.monotonic()
        try:
            wait_for(lambda: not ExtractionRun.objects.filter(pk__in=created,
                                                               status__in=("queued", "running")).exists(),
                     timeout=240, what="the runs requested during the outage")
            drained_s = time.monotonic() - up_at
        except RuntimeError:
            drained_s = float("nan")
        # Runs already queued before the outage lost their broker message with Redis' memory (it
        # has no persistence here): stalled-run recovery re-sends them, after 10 minutes in the
        # beat schedule, after 20 s here to keep the run bounded.
        _drain(timeout=240, stale=30, requeue=20)
        time.sleep(3)
        samples = load.stop()
        load = None
        during = _window(samples, down_at, up_at)
        reads = [s for s in during if s.tier != "token-refresh"]
        run_statuses = dict(ExtractionRun.objects.filter(pk__in=created).values_list("pk", "status"))
        earlier = dict(ExtractionRun.objects.filter(pk__in=queued_before).values_list("pk", "status"))
        result.figures.update({
            "outage_s": round(up_at - down_at, 1), "offered_rate_per_s": rate,
            "during_outage": summarize(during, seconds=up_at - down_at), "status_during_outage": statuses(during),
            "before_outage": summarize(_window(samples, 0, down_at)),
            "after_outage": summarize(_window(samples, up_at, float("inf"))),
            "consent_during_outage": consent_detail, "refresh_answers": refresh_answers,
            "runs_created_during_outage": len(created),
            "runs_in_refresh_answers": len(requested_runs),
            "outbox_messages_waiting_during_outage": waiting_in_outbox,
            "runs_done_s_after_redis_back": round(drained_s, 1),
            "runs_queued_before_the_outage": earlier,
            "outbox_left": OutboxMessage.objects.count(),
        })
        result.check("reads answered 200 during the outage", reads and all(s.status == 200 for s in reads),
                     statuses(reads))
        result.check("token refreshes worked during the outage",
                     all(s.status == 200 for s in during if s.tier == "token-refresh"),
                     statuses([s for s in during if s.tier == "token-refresh"]))
        result.check("consent flow worked during the outage", consent_ok, consent_detail)
        result.check("extraction requests accepted during the outage",
                     refresh_answers and all(code == 202 for code in refresh_answers), refresh_answers)
        result.check("their runs waited in the outbox", waiting_in_outbox >= len(created) > 0,
                     f"{waiting_in_outbox} messages for {len(created)} runs")
        result.check("every run requested during the outage ran once Redis was back",
                     run_statuses and set(run_statuses.values()) == {"succeeded"}, run_statuses)
        result.check("runs queued before the outage ran too (stalled-run recovery)",
                     set(earlier.values()) <= {"succeeded"}, earlier)
        result.check("the outbox is empty afterwards", OutboxMessage.objects.count() == 0,
                     OutboxMessage.objects.count())
        result.check("no errors after the outage", all(200 <= s.status < 300 for s in
                                                       _window(samples, up_at, float("inf"))))
    finally:
        if load is not None:
            load.stop()
        if not suite.redis.is_up():
            suite.redis.start()
        for process in (beat, worker, web):
            if process is not None:
                process.stop()
        server.shutdown()


# --- 3. PostgreSQL restarted under load -------------------------------------------------------

def scenario_3(suite: Suite, result: Result) -> None:
    from django.db import connections

    from restitution.models import ExtractionRun, Record, Source
    from tests.load.traffic import BackgroundLoad, statuses, summarize

    suite.reset()
    server, _ = _telco(suite, failure_rate=0.0, timeout_rate=0.0, delay_seconds=0.0, seed=7)
    down_for = 3.0 if suite.short else 10.0
    after = 10.0 if suite.short else 30.0
    rate = 15.0 if suite.short else 25.0
    web = worker = load = None
    try:
        _install(suite, with_users=True)
        env = suite.env()
        web = Gunicorn(env, port=suite.web_port, log_dir=suite.logs)
        worker = _worker(suite, "w")
        # A first extraction, so the API has data to serve.
        _request_all(list(Source.objects.exclude(kind="csv")))
        _drain(timeout=300)
        clients = _clients(suite, web)
        refresher = clients.pop()
        load = BackgroundLoad(web.url, clients, refreshers=[refresher], rate=rate)
        time.sleep(5)
        # The energy batch run is under way when the database goes.
        energy = Source.objects.get(kind="csv")
        _request_all([energy])
        wait_for(lambda: Record.objects.filter(source=energy).count() > 1000, timeout=120,
                 what="the energy run to be under way")
        running_at_stop = list(ExtractionRun.objects.filter(status="running").values_list("source__slug", flat=True))
        connections.close_all()
        down_at = time.monotonic()
        suite.pg.stop("fast")
        time.sleep(down_for)
        suite.pg.start()
        up_at = time.monotonic()
        time.sleep(after)
        samples = load.stop()
        load = None
        connections.close_all()
        _drain(timeout=300)
        runs_done_at = time.monotonic()
        errors_after = [s for s in samples if s.at >= up_at and not 200 <= s.status < 300]
        last_error = max((s.at + s.seconds for s in samples if not 200 <= s.status < 300), default=None)
        statuses_runs = _run_statuses()
        result.figures.update({
            "database_down_s": round(up_at - down_at, 1), "offered_rate_per_s": rate,
            "before": summarize(_window(samples, 0, down_at)),
            "status_sent_before": statuses(_window(samples, 0, down_at)),
            "status_while_down": statuses(_window(samples, down_at, up_at)),
            "status_after_restart": statuses(_window(samples, up_at, float("inf"))),
            "last_error_s_after_restart": round(last_error - up_at, 2) if last_error else None,
            "after": summarize(_window(samples, up_at + 5, float("inf"))),
            "run_statuses": statuses_runs,
            "runs_running_when_it_stopped": running_at_stop,
            "attempts_of_runs_retried": sorted(ExtractionRun.objects.filter(attempts__gt=1).values_list(
                "source__slug", "attempts")),
            "runs_done_s_after_restart": round(runs_done_at - up_at, 1),
            "web_processes_restarted": web.process.poll() is not None,
            "worker_processes_restarted": worker.process.poll() is not None,
        })
        answered_before = [s for s in samples if s.at + s.seconds < down_at]
        result.check("no error among the answers given before the database stopped",
                     answered_before and all(200 <= s.status < 300 for s in answered_before),
                     statuses(answered_before))
        result.check("while it was down, the API said 503 (retry later), never 500",
                     not [s for s in samples if s.status == 500], statuses(samples))
        result.check("web answers 200 again within 5 s of the restart, by itself",
                     not [s for s in errors_after if s.at >= up_at + 5], statuses(errors_after))
        result.check("the web and worker processes were not restarted",
                     web.process.poll() is None and worker.process.poll() is None)
        result.check("every run succeeded in the end", set(statuses_runs) == {"succeeded"}, statuses_runs)
        _truth_checks(result, _compare_with_truth(suite))
    finally:
        if load is not None:
            load.stop()
        if not suite.pg.is_up():
            suite.pg.start()
        for process in (worker, web):
            if process is not None:
                process.stop()
        server.shutdown()


# --- 4. a legacy source timing out half the time ----------------------------------------------

def scenario_4(suite: Suite, result: Result) -> None:
    import httpx

    from restitution.models import Customer, ExtractionRun, Source

    suite.reset()
    # Half the answers come late: 1 s late against a 0.6 s timeout (halved in the short form).
    scale = 0.5 if suite.short else 1.0
    server, url = _telco(suite, failure_rate=0.0, timeout_rate=0.5, delay_seconds=1.0 * scale, seed=11)
    worker = None
    try:
        _install(suite)
        telco = Source.objects.get(kind="http-json")
        cap = 2
        telco.max_concurrent_runs = cap
        telco.max_requests_per_second = 1000
        # The operator's settings for a slow system: give up on a request early, try 8 times.
        telco.options = {**telco.options, "timeout": 0.6 * scale, "max_attempts": 8, "backoff_base": 0.2}
        telco.save()
        customers = list(Customer.objects.filter(identities__system=telco.identity_system))
        worker = _worker(suite, "w", concurrency=4)
        httpx.post(f"{url}/_stats/reset")
        started = time.monotonic()
        from restitution import extraction

        for customer in customers:
            extraction.request_extraction(source=telco, customer=customer)
        drain_s = _drain(timeout=600, stale=30, requeue=60)
        stats = httpx.get(f"{url}/_stats").json()
        statuses = _run_statuses()
        result.figures.update({
            "runs": len(customers), "run_statuses": statuses,
            "run_attempts": sorted(ExtractionRun.objects.values_list("attempts", flat=True)),
            "requests_at_source": stats["requests"], "timeouts_injected": stats["timeouts"],
            "timeout_share": round(stats["timeouts"] / max(1, stats["requests"]), 2),
            "cap": cap, "max_in_flight_at_source": stats["max_in_flight"],
            "wall_s": round(time.monotonic() - started, 1), "drain_s": round(drain_s, 1),
        })
        result.check("about half of the requests timed out", 0.35 <= stats["timeouts"] / max(1, stats["requests"]),
                     f"{stats['timeouts']}/{stats['requests']}")
        result.check("every run finished through retries", set(statuses) == {"succeeded"}, statuses)
        result.check("the concurrency cap was never exceeded at the source", stats["max_in_flight"] <= cap,
                     f"max {stats['max_in_flight']} for a cap of {cap}")
        _truth_checks(result, _compare_with_truth(suite, datasets=lambda slug: slug.startswith("telco-")))
    finally:
        if worker is not None:
            worker.stop()
        server.shutdown()


# --- 5. malformed legacy input at 1% ----------------------------------------------------------

_CORRUPTIONS = (
    ("non-numeric value", lambda f: f[:2] + ["12,4x"] + f[3:]),
    ("impossible date", lambda f: [f[0], "31/02/2025" + f[1][10:]] + f[2:]),
    ("missing column", lambda f: f[:-1]),
    ("extra column", lambda f: f + ["surplus"]),
    ("empty customer identifier", lambda f: [""] + f[1:]),
)


def _corrupt_energy_exports(metering: Path, *, share: float, seed: int) -> dict[str, tuple[str, str]]:
    """Damage `share` of the data lines of the energy CSV exports, in place; return
    {locator: (kind, original line)} of the damaged lines."""
    from demo.energy import CSV_DELIMITER, CSV_ENCODING, DAILY_PATTERN, LOAD_CURVE_PATTERN

    rng = random.Random(seed)
    damaged: dict[str, tuple[str, str]] = {}
    for pattern in (DAILY_PATTERN, LOAD_CURVE_PATTERN):
        for path in sorted(metering.glob(pattern)):
            text = path.read_bytes().decode(CSV_ENCODING)
            newline = "\r\n" if "\r\n" in text else "\n"
            lines = text.split(newline)
            for index in range(1, len(lines)):
                if not lines[index] or rng.random() >= share:
                    continue
                kind, damage = rng.choice(_CORRUPTIONS)
                original = lines[index]
                lines[index] = CSV_DELIMITER.join(damage(original.split(CSV_DELIMITER)))
                damaged[f"{path.relative_to(metering)}:{index + 1}"] = (kind, original)
            path.write_bytes(newline.join(lines).encode(CSV_ENCODING))
    return damaged


def scenario_5(suite: Suite, result: Result) -> None:
    from restitution.models import ExtractionRun, LegacyIdentity, RejectedRow, Source
    from tests.conftest import load_malformed

    suite.reset()
    demo = suite.workdir / "demo-malformed"
    shutil.rmtree(demo, ignore_errors=True)
    shutil.copytree(suite.demo_dir, demo)
    damaged = _corrupt_energy_exports(demo / "metering", share=0.01, seed=5)
    worker = None
    try:
        _install(suite)
        energy = Source.objects.get(kind="csv")
        worker = _worker(suite, "w", METERING_EXPORT_DIR=str(demo / "metering"))
        started = time.monotonic()
        _request_all([energy])
        _drain(timeout=300)
        run = ExtractionRun.objects.get(source=energy)
        # A file row's locator is "<file>:<line> sha256:<content hash>": matched on file and line.
        rejected = {locator.split(" ")[0]: reason for locator, reason
                    in RejectedRow.objects.filter(run=run).values_list("locator", "reason")}
        planted = [m for m in load_malformed(suite.demo_dir) if m["source"] == energy.slug]
        # The exports also hold people who are not the gateway's customers: their rows are not
        # processed at all (skipped, not quarantined), unless the line cannot even be read or
        # names nobody. Every damaged row of a customer must be quarantined.
        customers = set(LegacyIdentity.objects.filter(system=energy.identity_system).values_list("value", flat=True))
        unreadable = {"missing column", "extra column", "empty customer identifier"}
        of_customers = {loc for loc, (kind, line) in damaged.items() if line.split(";")[0] in customers}
        expected = {loc for loc, (kind, _) in damaged.items() if kind in unreadable} | of_customers
        missed = sorted(expected - set(rejected))
        reasonless = [loc for loc in damaged if loc in rejected and not rejected[loc].strip()]
        by_kind: dict[str, int] = {}
        for kind, _ in damaged.values():
            by_kind[kind] = by_kind.get(kind, 0) + 1
        data_lines = run.read
        result.figures.update({
            "rows_read": data_lines, "rows_damaged": len(damaged),
            "damaged_share": round(len(damaged) / max(1, data_lines), 4), "damage_kinds": by_kind,
            "damaged_rows_of_customers": len(of_customers), "rows_quarantined": len(rejected),
            "damaged_rows_to_quarantine": len(expected), "planted_by_the_generator": len(planted),
            "run_status": run.status, "run_s": round(time.monotonic() - started, 1),
            "reasons_sample": sorted({reason.split(":")[0] for reason in rejected.values()})[:8],
        })
        result.check("about 1% of the rows were damaged", 0.005 <= len(damaged) / max(1, data_lines) <= 0.02,
                     len(damaged))
        result.check("the run finished without crashing", run.status == "succeeded", run.error)
        result.check("every damaged row of a customer (or of nobody) was quarantined", expected and not missed,
                     missed[:5])
        result.check("each with its reason", not reasonless, reasonless[:5])
        result.check("nothing else was quarantined", len(rejected) == len(expected) + len(planted),
                     f"{len(rejected)} quarantined, {len(expected)} damaged + {len(planted)} planted")
        # Every other row is stored as in the ground truth. A damaged daily value is a missing
        # record; a damaged half hour leaves its day block written, with that reading counted
        # missing: the block differs from the truth, and only the blocks of damaged rows do.
        from fnmatch import fnmatch

        from demo.energy import DAILY_PATTERN, LOCAL_FORMAT

        def in_daily_file(locator: str) -> bool:
            return fnmatch(locator.rsplit(":", 1)[0], DAILY_PATTERN)

        damaged_days = {(damaged[loc][1].split(";")[0],
                         datetime.strptime(damaged[loc][1].split(";")[1], LOCAL_FORMAT).date())
                        for loc in of_customers if not in_daily_file(loc)}
        daily_lost = sum(1 for loc in of_customers if in_daily_file(loc))
        comparison = _compare_with_truth(suite, datasets=lambda slug: slug in {"energy-load-curve",
                                                                              "energy-daily-consumption"})
        result.figures["records"] = comparison
        result.figures["day_blocks_with_a_damaged_reading"] = len(damaged_days)
        result.check("every good row stored as in the ground truth",
                     comparison["extra"] == comparison["duplicated"] == 0
                     and comparison["missing"] == daily_lost and comparison["different"] == len(damaged_days),
                     {**comparison, "daily_values_damaged": daily_lost, "day_blocks_damaged": len(damaged_days)})
    finally:
        if worker is not None:
            worker.stop()


# --- 6. a personal-cloud destination down, then up --------------------------------------------

def _cloud_deliveries(destination) -> dict[str, Any]:
    from django.db.models import Count

    from connectors_out.models import Delivery, DeliveryAttempt

    deliveries = Delivery.objects.filter(destination=destination)
    attempts = DeliveryAttempt.objects.filter(delivery__destination=destination)
    return {"deliveries": dict(deliveries.values_list("status").annotate(n=Count("id")).values_list("status", "n")),
            "attempts": dict(attempts.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))}


def scenario_6(suite: Suite, result: Result) -> None:
    from connectors_out import delivery as deliveries
    from connectors_out.models import Delivery, DeliveryAttempt
    from demo.sources import INSURER_ENV, insurer
    from restitution import extraction
    from restitution.models import AccessEvent, Customer, Dataset, Source
    from tests.connectors_out.conftest import CUSTOMER, INSURANCE, DemoCustomer
    from tests.connectors_out.peers import WebDavPeer

    suite.reset()
    # A private copy of the insurer's database: the scenario changes the customer's legacy rows.
    demo_dir = suite.workdir / "demo-cloud"
    shutil.rmtree(demo_dir, ignore_errors=True)
    shutil.copytree(suite.demo_dir, demo_dir)
    # The backoff of a delivery, shortened for the run (30 s doubling up to 20 min in production):
    # the outage lasts a few backoffs, fewer than CONNECTORS_MAX_ATTEMPTS (8) attempts.
    outage, base, cap = (8.0, 1.0, 4.0) if suite.short else (30.0, 2.0, 16.0)
    peer_dir = suite.workdir / "webdav"
    peer_dir.mkdir(exist_ok=True)
    webdav = WebDavPeer(peer_dir, suite.logs)
    worker = None
    try:
        _install(suite)
        source = Source.objects.get(slug="insurer-policies")
        demo = DemoCustomer(Customer.objects.get(reference=CUSTOMER), demo_dir,
                            list(Dataset.objects.filter(slug__in=INSURANCE)))
        worker = _worker(suite, "w", **{INSURER_ENV: f"sqlite:///{demo_dir / insurer.DB_FILENAME}",
                                        "CONNECTORS_RETRY_BASE_SECONDS": str(base),
                                        "CONNECTORS_RETRY_CAP_SECONDS": str(cap)})
        webdav.process.start()
        started = time.monotonic()
        extraction.request_extraction(source=source, customer=demo.customer)
        _drain(timeout=120)
        destination = deliveries.connect_destination(
            customer=demo.customer, kind="webdav", label="Nextcloud", settings_=webdav.connection()[0],
            credentials=webdav.connection()[1], datasets=demo.datasets, duration="3m")

        def settled() -> bool:
            return not Delivery.objects.filter(destination=destination, status__in=deliveries.ACTIVE).exists()

        wait_for(settled, timeout=60, what="the first delivery")
        first = {k: d["data"] for k, d in webdav.read_all().items()}
        result.check("the first delivery wrote the customer's records", first == demo.truth() and first,
                     f"{len(first)} at the destination, {len(demo.truth())} in the ground truth")

        # The store goes down; the legacy data changes twice, each time extracted by the worker,
        # whose successful run queues a delivery that now fails and backs off.
        webdav.process.stop()
        down_at = time.monotonic()
        changed, dropped = demo.change_one_contract_and_drop_one_claim()
        extraction.request_extraction(source=source, customer=demo.customer)
        _drain(timeout=120)
        wait_for(lambda: DeliveryAttempt.objects.filter(delivery__destination=destination, outcome="transient")
                 .count() >= 2, timeout=max(30.0, outage), what="two failed attempts")
        other = next(k for k in sorted(demo.stored()) if k[0] == "insurance-contracts" and k != changed)
        demo.legacy_sql("UPDATE T_CONTRAT SET MT_PRIME_ANNUELLE = MT_PRIME_ANNUELLE + 77 WHERE NUM_CONTRAT = ?",
                        other[1])
        extraction.request_extraction(source=source, customer=demo.customer)
        _drain(timeout=120)
        # A delivery waiting for its next attempt takes the new changes too (one queued delivery per
        # destination); an extraction finishing during an attempt itself queues a second one.
        active_while_down = Delivery.objects.filter(destination=destination, status__in=deliveries.ACTIVE).count()
        time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
        during = _cloud_deliveries(destination)
        webdav.process.start()
        up_at = time.monotonic()
        wait_for(settled, timeout=120, what="the deliveries after the store came back")
        caught_up_s = time.monotonic() - up_at
        # The destination against the store, and the store against the ground truth.
        at_destination = {k: d["data"] for k, d in webdav.read_all().items()}
        stored, truth = demo.stored(), demo.truth()
        after = _cloud_deliveries(destination)
        attempt_rows = list(DeliveryAttempt.objects.filter(delivery__destination=destination)
                            .order_by("started_at").values_list("outcome", "duration_ms"))
        recovered = Delivery.objects.filter(destination=destination, attempts__gt=1)
        result.figures.update({
            "store_down_s": round(up_at - down_at, 1), "backoff_base_s": base, "backoff_cap_s": cap,
            "legacy_changes_while_down": 2, "extractions_while_down": 2,
            "deliveries_active_while_down": active_while_down,
            "while_down": during, "after": after,
            "attempts_of_the_recovered_delivery": list(recovered.values_list("attempts", flat=True)),
            "caught_up_s_after_restart": round(caught_up_s, 1),
            "records_at_destination": len(at_destination), "records_in_store": len(stored),
            "wall_s": round(time.monotonic() - started, 1),
        })
        result.check("deliveries were attempted and failed transiently while the store was down",
                     during["attempts"].get("transient", 0) >= 2 and not during["attempts"].get("permanent"),
                     during)
        result.check("every delivery completed", set(after["deliveries"]) == {"succeeded"}, after)
        result.check("every attempt recorded, with its outcome and duration",
                     attempt_rows and all(o and d is not None for o, d in attempt_rows)
                     and attempt_rows[-1][0] == "succeeded", attempt_rows[-3:])
        result.check("the files at the destination equal the customer's records", at_destination == stored,
                     f"{len(at_destination)} files, {len(stored)} records")
        unchanged = {k for k in truth if k not in (changed, other, dropped)}
        result.check("the customer's records equal the ground truth with the legacy changes",
                     set(stored) == set(truth) - {dropped} and all(stored[k] == truth[k] for k in unchanged)
                     and stored[changed] != truth[changed] and stored[other] != truth[other],
                     f"{len(stored)} stored, {len(truth)} in the ground truth")
        result.check("the deleted claim was removed at the destination", dropped not in at_destination, dropped)
        # read_all() refuses two resources for one record; the store has one file per record.
        result.check("no duplicates at the destination", len(at_destination) == len(stored))
        events = AccessEvent.objects.filter(customer=demo.customer, kind=AccessEvent.Kind.DELIVERY).count()
        result.check("each completed delivery is an access event the customer sees",
                     events == after["deliveries"].get("succeeded", 0), events)
    finally:
        if worker is not None:
            worker.stop()
        webdav.process.stop()


# --- 7. workers SIGKILLed in the middle of a sharded run ------------------------------------------

def scenario_7(suite: Suite, result: Result) -> None:
    """Every source's batch run split into one shard per customer (identity ranges for SQL and
    HTTP, identity hashes for the files); workers are killed while shards run; the runs still
    complete exactly, within the telco's caps."""
    import httpx

    from restitution import extraction
    from restitution.models import ExtractionRun, RunShard, Source

    suite.reset()
    # Every telco answer is slowed down, so shards overlap and a kill lands in one.
    server, url = _telco(suite, timeout_rate=1.0, delay_seconds=0.3, seed=11)
    try:
        _install(suite)
        telco = Source.objects.get(kind="http-json")
        telco.max_concurrent_runs, telco.max_requests_per_second = 2, 1000
        telco.options = {**telco.options, "timeout": 5.0}
        telco.save()
        httpx.post(f"{url}/_stats/reset")
        kills = 2 if suite.short else 6
        rng = random.Random(17)
        started = time.monotonic()
        sources = list(Source.objects.order_by("slug"))
        run_ids = _request_all(sources)
        mid_shard = 0
        for n in range(kills):
            if not ExtractionRun.objects.filter(pk__in=run_ids, status__in=("queued", "running")).exists():
                break
            worker = _worker(suite, f"sharded-doomed{n}", concurrency=2, GATEWAY_RUN_SHARD_CUSTOMERS="1")
            try:
                wait_for(lambda: RunShard.objects.filter(status="running").exists(), timeout=60,
                         what="a shard to start")
                time.sleep(rng.uniform(0.2, 1.5))
                running = RunShard.objects.filter(status="running").count()
            finally:
                worker.kill()
                worker.stop()
            mid_shard += running > 0
            time.sleep(1.2)  # the killed shards' heartbeats are now older than the threshold below
            extraction.recover_stalled_runs(stale_after=timedelta(seconds=1), requeue_after=timedelta(seconds=20))
        rescuer = _worker(suite, "sharded-rescuer", concurrency=2, GATEWAY_RUN_SHARD_CUSTOMERS="1")
        try:
            drain_s = _drain(timeout=400)
        finally:
            rescuer.stop()
        runs = list(ExtractionRun.objects.filter(pk__in=run_ids))
        shards = list(RunShard.objects.filter(run_id__in=run_ids).select_related("run__source"))
        stats = httpx.get(f"{url}/_stats").json()
        result.figures.update({
            "kills": kills, "kills_while_a_shard_was_running": mid_shard,
            "runs": {r.source.slug: r.status for r in runs}, "shards": len(shards),
            "shard_attempts": sum(s.attempts for s in shards),
            "shards_and_attempts_by_source": {
                slug: [sum(1 for s in shards if s.run.source.slug == slug),
                       sum(s.attempts for s in shards if s.run.source.slug == slug)]
                for slug in sorted({s.run.source.slug for s in shards})},
            "telco_max_in_flight": stats.get("max_in_flight"),
            "drain_after_last_kill_s": round(drain_s, 1), "wall_s": round(time.monotonic() - started, 1)})
        if failed := _failed_runs():
            result.figures["failed_runs"] = failed
        result.check(f"{kills} SIGKILLs, each in the middle of a shard", mid_shard == kills and kills > 0,
                     f"{mid_shard}/{kills}")
        result.check("the runs were sharded", all(r.sharded for r in runs) and len(shards) > len(runs),
                     {r.source.slug: r.sharded for r in runs})
        by_hash = [bool(s.hash_of) for s in shards if s.run.source.kind in ("csv", "fixed-width")]
        result.check("the file sources' runs were sharded by identity hash", by_hash and all(by_hash))
        result.check("every sharded run succeeded in the end, with every shard",
                     {r.status for r in runs} == {"succeeded"} and {s.status for s in shards} == {"succeeded"},
                     {r.source.slug: r.error for r in runs})
        result.check("some shard was performed again after a kill", sum(s.attempts for s in shards) > len(shards),
                     sum(s.attempts for s in shards))
        result.check("each run's counters are the sums of its shards'", all(
            r.read == sum(s.read for s in shards if s.run_id == r.pk) for r in runs))
        result.check("the telco's cap held across shards and workers (at the telco itself)",
                     0 < stats.get("max_in_flight", 0) <= 2, stats.get("max_in_flight"))
        _truth_checks(result, _compare_with_truth(suite))
    finally:
        server.shutdown()


SCENARIOS: dict[int, tuple[str, Callable[[Suite, Result], None]]] = {
    1: ("a worker SIGKILLed in the middle of extraction runs", scenario_1),
    2: ("Redis stopped under load", scenario_2),
    3: ("PostgreSQL restarted under load", scenario_3),
    4: ("a legacy source timing out half the time", scenario_4),
    5: ("malformed legacy input at 1%", scenario_5),
    6: ("a personal-cloud destination down, then up", scenario_6),
    7: ("workers SIGKILLed in the middle of a sharded run", scenario_7),
}


def _print(result: Result) -> None:
    print(f"\n== {result.number}. {result.title}: {result.status.upper()}", flush=True)
    for name, value in result.figures.items():
        print(f"   {name}: {json.dumps(value, default=str)}")
    for name, ok, detail in result.checks:
        print(f"   [{'ok' if ok else 'FAIL'}] {name}" + (f" ({detail})" if detail and not ok else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI form: fewer kills, shorter outages")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers")
    args = parser.parse_args(argv)
    chosen = [int(n) for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="faults-", dir=ARTIFACTS))
    started = time.monotonic()
    results: list[Result] = []
    suite = Suite(short=args.short, workdir=workdir)
    try:
        for number in chosen:
            title, scenario = SCENARIOS[number]
            result = Result(number, title)
            scenario_started = time.monotonic()
            try:
                scenario(suite, result)
            except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
                result.status = "error"
                result.figures["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            result.figures["scenario_s"] = round(time.monotonic() - scenario_started, 1)
            results.append(result)
            _print(result)
    finally:
        suite.close()
    report = {"short": args.short, "total_s": round(time.monotonic() - started, 1),
              "scenarios": [{"number": r.number, "title": r.title, "status": r.status, "figures": r.figures,
                             "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in r.checks]}
                            for r in results]}
    (ARTIFACTS / ("report-short.json" if args.short else "report.json")).write_text(
        json.dumps(report, indent=2, default=str))
    failed = [r for r in results if r.status in ("failed", "error")]
    passed = sum(1 for r in results if r.status == "passed")
    print(f"\nfault suite: {report['total_s']} s, logs in {workdir}; not available counts as skipped")
    print(f"faults: {passed} passed, {len(failed)} failed, {len(results) - passed - len(failed)} skipped")
    if not failed and not os.environ.get("FAULTS_KEEP_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    threading.current_thread().name = "faults"
    sys.exit(main())
