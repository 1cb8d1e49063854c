"""Real Celery workers: runs complete, a killed worker loses and duplicates nothing, caps hold."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db import connection

from demo.install import install_demo
from restitution import extraction
from restitution.models import Customer, ExtractionRun, Record, Source
from tests.conftest import (
    TELCO_TOKEN,
    assert_matches_ground_truth,
    demo_env_for,
    load_ground_truth,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _statuses() -> dict[int, str]:
    return dict(ExtractionRun.objects.values_list("pk", "status"))


def _all_done() -> bool:
    return all(s in {"succeeded", "failed"} for s in _statuses().values())


def test_a_killed_worker_loses_and_duplicates_nothing(demo_dir, telco_server, start_worker,
                                                      monkeypatch):
    env = demo_env_for(demo_dir, telco_server)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    install_demo(demo_dir, with_users=False)
    runs = [extraction.request_extraction(source=s) for s in Source.objects.order_by("slug")]
    energy = Source.objects.get(kind="csv")
    first = start_worker(concurrency=2, env=env, name="doomed")
    # Kill it in the middle of the biggest run: after its first chunk of records is written (the
    # load curve's day blocks and the daily values are still to come), before the end.
    wait_until(lambda: Record.objects.filter(source=energy).exists(), timeout=120,
               message="the energy run to be part-way")
    first.kill()
    energy_run = ExtractionRun.objects.get(source=energy)
    assert energy_run.status == ExtractionRun.Status.RUNNING  # orphaned by the crash
    assert Record.objects.filter(source=energy).count() < sum(
        1 for k in load_ground_truth(demo_dir) if k[1].startswith("energy-"))

    start_worker(concurrency=2, env=env, name="rescuer")
    time.sleep(2.5)  # the orphan's heartbeat is now older than the stale threshold below
    # The beat's recovery, with its delays shortened: the orphan comes back, and so does a run
    # whose message the dead worker had taken but not yet started (still queued, its message
    # gone with the process: re-sent after `requeue_after`).
    recovered = extraction.recover_stalled_runs(stale_after=timedelta(seconds=2),
                                                requeue_after=timedelta(seconds=2))
    assert energy_run.pk in recovered
    wait_until(_all_done, timeout=240, message="every run to finish")
    assert set(_statuses().values()) == {"succeeded"}, ExtractionRun.objects.values("source__slug", "error")
    assert_matches_ground_truth(demo_dir)
    assert {r.pk for r in runs} == set(_statuses())


@pytest.fixture(scope="module")
def telco_demo_dir(tmp_path_factory):
    """A telco-only demo with enough account holders to run many runs in parallel."""
    from demo.generator import generate

    out = tmp_path_factory.mktemp("telco-demo")
    generate(out, customers=10, systems=("telco",), malformed=False)
    return out


def test_the_per_source_concurrency_cap_holds_under_parallel_runs(telco_demo_dir, start_worker,
                                                                  monkeypatch):
    from demo.telco_server import serve_in_thread

    demo_dir = telco_demo_dir
    # Every answer of this telco service is slowed down, so runs overlap as long as they can.
    server, url = serve_in_thread(demo_dir / "telco", token=TELCO_TOKEN, timeout_rate=1.0,
                                  delay_seconds=0.15, seed=3)
    try:
        env = demo_env_for(demo_dir, url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        install_demo(demo_dir, with_users=False)
        telco = Source.objects.get(kind="http-json")
        telco.max_concurrent_runs = 2
        telco.max_requests_per_second = 1000
        telco.options = {**telco.options, "timeout": 5.0}
        telco.save()
        httpx.post(f"{url}/_stats/reset")
        customers = list(Customer.objects.filter(identities__system=telco.identity_system))
        assert len(customers) >= 5
        for customer in customers:
            extraction.request_extraction(source=telco, customer=customer)

        peak_running = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_running
            while not stop.is_set():
                running = ExtractionRun.objects.filter(source=telco, status="running").count()
                peak_running = max(peak_running, running)
                time.sleep(0.02)
            connection.close()  # this thread's own connection

        sampler = threading.Thread(target=sample)
        start_worker(concurrency=4, env=env, name="parallel")
        sampler.start()
        try:
            wait_until(_all_done, timeout=240, message="every telco run to finish")
        finally:
            stop.set()
            sampler.join()
        assert set(_statuses().values()) == {"succeeded"}
        stats = httpx.get(f"{url}/_stats").json()
        # Measured at the legacy system itself: never more than 2 requests at once…
        assert stats["max_in_flight"] <= 2
        # …while the runs did overlap up to the cap (so this test can see a broken cap).
        assert peak_running == 2
    finally:
        server.shutdown()
