"""Shared fixtures: the demo legacy systems, the telco service, real Celery workers.

Tests run against the real PostgreSQL and Redis when `make test` configures them
(DATABASE_URL, REDIS_URL); tests that need a worker or MariaDB fail, naming the missing service, otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

pytest_plugins = ["tests.personas"]

# Property tests run on shared 2-core machines, beside another xdist worker, Celery workers and
# Chromium: an example that takes long there says how busy the machine is, not how slow the code is.
# No per-example deadline and no "too slow" health check, then (what each test asserts is unchanged).
hypothesis_settings.register_profile("gateway", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("gateway")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
TELCO_TOKEN = "telco-test-token-3f9a"  # noqa: S105
DEMO_CUSTOMERS = 4


# --- Parallel runs (pytest-xdist) ------------------------------------------------------------
# `make test` runs the suite in several xdist workers at once. PostgreSQL needs nothing more:
# pytest-django gives each worker its own test database (test_<name>_gw0, _gw1, …), and the
# subprocesses tests start (Celery workers, gunicorn, probes) are handed that name from
# settings.DATABASES. Everything else a worker writes to must be its own as well:
# - Redis (REDIS_URL): tests flush it, and it is the Celery broker, the caches and the source
#   gate. Worker i uses database N - i, N being the database of the REDIS_URL given (so 15, 14, …
#   from the Makefile). Django's settings read REDIS_URL when pytest-django loads them, before any
#   conftest is imported, so the value goes into each worker's environment before it starts
#   (execnet applies a spec's env: entries ahead of pytest); the worker's own subprocesses inherit
#   it.
# - MariaDB databases the tests create and drop: per_worker() names them.
# Ports are free_port()'s and files tmp_path's, so they are private already.

def per_worker(name: str) -> str:
    """`name` suffixed with this xdist worker's id (`legacy_insurer_gw1`), as pytest-django names the
    test database; `name` itself in a serial run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}_{worker}" if worker else name


def redis_url_for_worker(url: str, index: int) -> str:
    """REDIS_URL with database N - index, N being `url`'s own (0 when it names none)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if base - index < 0:
        raise pytest.UsageError(f"REDIS_URL {url}: no Redis database {base} - {index} for xdist "
                                f"worker gw{index}; give a higher database or fewer workers (-n)")
    return urlunsplit(parts._replace(path=f"/{base - index}"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """Before the xdist workers start: worker i (gw<i>) gets its own Redis database."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return  # no Redis: caches are per process, Celery eager
    for index, spec in enumerate(specs):
        spec.env["REDIS_URL"] = redis_url_for_worker(url, index)


def on_real_services() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(settings.REDIS_URL)


def missing(what: str) -> None:
    """A service a test needs is absent: a failure, never a skip — the suite must not pass by
    leaving things out."""
    pytest.fail(f"{what} (run `make test`, which .ci/run calls with every service up)")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo legacy systems, generated once per session (do not modify: see fresh_demo_dir)."""
    from demo.generator import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=DEMO_CUSTOMERS)
    return out


@pytest.fixture
def fresh_demo_dir(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo legacy systems, for tests that change them."""
    target = tmp_path / "demo"
    shutil.copytree(demo_dir, target)
    return target


@pytest.fixture(scope="session")
def telco_server(demo_dir: Path) -> Iterator[str]:
    """The telco billing service, flaky as in life: some 503s and some slow answers."""
    from demo.telco_server import serve_in_thread

    server, url = serve_in_thread(demo_dir / "telco", token=TELCO_TOKEN, failure_rate=0.03,
                                  timeout_rate=0.003, delay_seconds=2.5, seed=7)
    yield url
    server.shutdown()


def demo_env_for(out_dir: Path, telco_url: str, insurer_url: str | None = None) -> dict[str, str]:
    from demo.sources import demo_environment

    env = demo_environment(out_dir, insurer_url=insurer_url, telco_url=telco_url)
    env["TELCO_API_TOKEN"] = TELCO_TOKEN
    return env


@pytest.fixture
def demo_env(demo_dir: Path, telco_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = demo_env_for(demo_dir, telco_server)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(autouse=True)
def fresh_registration_counters() -> None:
    """Open client registration is limited per address (most tests register from 127.0.0.1):
    each test starts with no registration counted, whatever ran before it."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from restitution.api.throttling import CACHE_DOWN

    cache = caches["throttle"]
    try:
        if isinstance(cache, RedisCache):
            client = cache._cache.get_client(write=True)
            for key in client.scan_iter("*throttle:registration:*"):
                client.delete(key)
        else:
            cache.clear()
    except CACHE_DOWN:
        pass  # a test that stopped Redis: the counters fail open anyway


@pytest.fixture
def flush_gate() -> Iterator[None]:
    """Each test starts with no source leases or rate state left in Redis by another."""
    from restitution.gate import get_gate

    get_gate.cache_clear()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("restitution:gate:*"):
            client.delete(key)
    yield
    get_gate.cache_clear()


@pytest.fixture(autouse=True)
def fresh_consent_flow_budget() -> None:
    """Each test starts with the test client's address owing no anonymous consent flows."""
    from django.core.cache import caches

    from restitution.metrics import anonymous_budget_key

    try:
        caches["throttle"].delete(anonymous_budget_key("127.0.0.1"))
    except Exception:  # noqa: BLE001 - tests of a cache outage set their own cache
        pass


def load_ground_truth(out_dir: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(customer reference, dataset slug, key) → expected record, from the generator."""
    truth: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted((out_dir / "ground_truth").glob("*.ndjson")):
        if path.stem == "malformed":
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                item = json.loads(line)
                truth[(item["customer"], path.stem, item["key"])] = item["data"]
    return truth


def load_malformed(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "ground_truth" / "malformed.ndjson"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def stored_records() -> dict[tuple[str, str, str], dict[str, Any]]:
    from restitution.models import Record

    rows = Record.objects.filter(deleted=False).values_list(
        "customer__reference", "dataset__slug", "key", "data")
    return {(c, d, k): data for c, d, k, data in rows.iterator(chunk_size=5000)}


def assert_matches_ground_truth(out_dir: Path) -> None:
    """Stored records equal the ground truth: same keys, same content, nothing extra."""
    expected = load_ground_truth(out_dir)
    actual = stored_records()
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"{len(missing)} records missing, e.g. {missing[:3]}"
    assert not extra, f"{len(extra)} unexpected records, e.g. {extra[:3]}"
    different = [k for k in expected if expected[k] != actual[k]]
    assert not different, (
        f"{len(different)} records differ, e.g. {different[0]}: "
        f"expected {expected[different[0]]}, stored {actual[different[0]]}"
    )


# --- Real Celery workers ---------------------------------------------------------------------

class WorkerProcess:
    """A real `celery worker` process against the test database and Redis."""

    def __init__(self, env: dict[str, str], *, concurrency: int, name: str, log_dir: Path) -> None:
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = self.log_path.open("w")
        # Readiness is the worker's own INFO line ("… ready."): a quieter LOG_LEVEL would hide it.
        env = {**env, "LOG_LEVEL": "INFO"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "extraction,default",
             "--pool", "prefork", "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self.wait_ready()
        except BaseException:
            # Never leave a worker behind: it would take later tasks with this run's settings.
            self.kill()
            self._log.close()
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if " ready." in self.log_path.read_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crash or the OOM killer would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_worker(tmp_path: Path, flush_gate: None) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory of real workers sharing the test database; all stopped at teardown."""
    if not on_real_services():
        missing("needs PostgreSQL and Redis")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no message left by another test
    db = settings.DATABASES["default"]
    database_url = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                    f"{db['NAME']}")
    workers: list[WorkerProcess] = []

    def start(*, concurrency: int = 2, env: dict[str, str] | None = None,
              name: str | None = None) -> WorkerProcess:
        full_env = {**os.environ, **(env or {}), "DATABASE_URL": database_url,
                    "REDIS_URL": settings.REDIS_URL, "GATEWAY_MODE": "test",
                    "CELERY_TASK_ALWAYS_EAGER": "false", "DATABASE_CONN_MAX_AGE": "0"}
        worker = WorkerProcess(full_env, concurrency=concurrency,
                               name=name or f"w{len(workers)}", log_dir=tmp_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def deliver_events() -> int:
    """What the after-commit publish and a worker do with the domain events (restitution/events.py)
    a test wrote: a test's transaction never commits, so its on-commit callbacks never run. Runs
    each waiting subscriber message here, oldest first (other outbox messages stay); how many."""
    from django.utils.module_loading import import_string

    from restitution import events
    from restitution.models import OutboxMessage

    done = 0
    for message in OutboxMessage.objects.filter(task__in=events.subscriber_tasks()).order_by("id"):
        import_string(message.task)(*message.args)
        message.delete()
        done += 1
    return done


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2,
               message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def reset_rate_limits() -> None:
    """Forget API rate-limit counters (only those: the rest of Redis — broker, source leases —
    may be in use by a worker)."""

    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("restitution:1:*"):
            client.delete(key)
    else:  # no Redis: the counters live in the process's own throttle cache (config/settings.py)
        from django.core.cache import caches

        caches["throttle"].clear()


@pytest.fixture(autouse=True)
def fresh_scope_catalogue() -> Iterator[None]:
    """Each test starts and ends without the per-process scope catalogue: a rolled-back test
    database sends no signal to empty it."""
    from restitution.oauth import forget_published_scopes

    forget_published_scopes()
    yield
    forget_published_scopes()
