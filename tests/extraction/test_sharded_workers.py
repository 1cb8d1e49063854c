"""Sharded batch runs on real Celery workers: the same records as the ground truth, and the
per-source caps held across every shard of every worker."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connection

from demo.install import install_demo
from restitution import extraction
from restitution.models import ExtractionRun, LegacyIdentity, RunShard, Source
from tests.conftest import TELCO_TOKEN, assert_matches_ground_truth, demo_env_for, wait_until
from tests.extraction.test_workers import telco_demo_dir  # noqa: F401 (fixture: a telco-only demo)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _all_done() -> bool:
    return not ExtractionRun.objects.filter(status__in=("queued", "running")).exists()


def test_workers_perform_sharded_runs_to_the_ground_truth(demo_dir, start_worker, monkeypatch):
    from demo.telco_server import serve_in_thread

    server, url = serve_in_thread(demo_dir / "telco", token=TELCO_TOKEN, delay_seconds=0.0)
    try:
        env = {**demo_env_for(demo_dir, url), "GATEWAY_RUN_SHARD_CUSTOMERS": "1"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        install_demo(demo_dir, with_users=False)
        sources = list(Source.objects.all())  # ranges for SQL and HTTP, hashes for the files
        runs = [extraction.request_extraction(source=s) for s in sources]
        start_worker(concurrency=2, env=env, name="fleet-a")
        start_worker(concurrency=1, env=env, name="fleet-b")
        wait_until(_all_done, timeout=180, message="the sharded runs to finish")
        for run in runs:
            run.refresh_from_db()
            assert run.status == "succeeded", run.error
            assert run.sharded
            shards = RunShard.objects.filter(run=run)
            assert shards.count() == LegacyIdentity.objects.filter(
                system=run.source.identity_system).count() > 1
            assert set(shards.values_list("status", flat=True)) == {"succeeded"}
            assert run.read == sum(shards.values_list("read", flat=True))
            assert all(shards.values_list("hash_of", flat=True)) is (run.source.kind in ("csv", "fixed-width"))
        assert_matches_ground_truth(demo_dir)
    finally:
        server.shutdown()


def test_the_source_caps_hold_across_the_shards_of_every_worker(telco_demo_dir, start_worker,  # noqa: F811
                                                                monkeypatch):
    from demo.telco_server import serve_in_thread

    server, url = serve_in_thread(telco_demo_dir / "telco", token=TELCO_TOKEN, timeout_rate=1.0,
                                  delay_seconds=0.15, seed=3)
    try:
        env = {**demo_env_for(telco_demo_dir, url), "GATEWAY_RUN_SHARD_CUSTOMERS": "1"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        install_demo(telco_demo_dir, with_users=False)
        telco = Source.objects.get(kind="http-json")
        telco.max_concurrent_runs = 2
        telco.max_requests_per_second = 1000
        telco.options = {**telco.options, "timeout": 5.0}
        telco.save()
        httpx.post(f"{url}/_stats/reset")
        run = extraction.request_extraction(source=telco)

        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, RunShard.objects.filter(run=run, status="running").count())
                time.sleep(0.02)
            connection.close()

        sampler = threading.Thread(target=sample)
        start_worker(concurrency=2, env=env, name="caps-a")
        start_worker(concurrency=2, env=env, name="caps-b")
        sampler.start()
        try:
            wait_until(_all_done, timeout=240, message="the sharded telco run to finish")
        finally:
            stop.set()
            sampler.join()
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        assert RunShard.objects.filter(run=run).count() >= 4  # more shards than the cap
        stats = httpx.get(f"{url}/_stats").json()
        assert stats["max_in_flight"] <= 2  # measured at the legacy system itself
        assert peak == 2  # the shards did overlap up to the cap, so a broken cap would show
    finally:
        server.shutdown()
