"""Private, killable service processes for the fault suite: a PostgreSQL cluster and a Redis
server of its own (never the shared ones), gunicorn web processes, Celery workers and beat.

Everything listens on loopback only and is stopped by `Services.close()`.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port from {preferred}")


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.2) -> float:
    """Wait until predicate() is true; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - the thing waited for may raise until it is up
            pass
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary directory (initdb + pg_ctl)."""

    def __init__(self, port: int) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = Path(binaries[-1]).parent
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        # initdb refuses to run as root: run the server as the `postgres` system user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        self.start()

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, cwd=self.dir, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def is_up(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url + "/postgres", connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A Redis server of our own on its own port, with no persistence; stoppable at will."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log = log_dir / "redis.log"
        # A password of this suite's own: a worker left behind by an earlier, interrupted suite
        # (same port) can never take this suite's tasks.
        self.password = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--logfile", str(self.log), "--requirepass", self.password],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.is_up, timeout=20, what="Redis")

    def is_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    close = stop


class Gunicorn:
    """The web processes, as deployed: gunicorn with the image's settings (config/gunicorn.py:
    gthread workers, keep-alive, access log), on a private port."""

    def __init__(self, env: dict[str, str], *, port: int, log_dir: Path, workers: int = 2,
                 threads: int = 4, name: str = "web") -> None:
        self.port = port
        self.log_path = log_dir / f"gunicorn-{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "config.wsgi", "--config", "python:config.gunicorn",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
             "--graceful-timeout", "5", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200,
                     timeout=60, what="gunicorn")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process_group(self.process)
        self._log.close()


class Beat:
    """celery beat with the database scheduler (the schedules of `manage.py setup_schedules`)."""

    def __init__(self, env: dict[str, str], *, log_dir: Path) -> None:
        self.log_path = log_dir / "beat.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        stop_process_group(self.process)
        self._log.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM a process started in its own session, then SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
