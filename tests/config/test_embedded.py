"""The embedded default keeps working: no database server, no broker, the demo end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_runs_on_sqlite_with_eager_tasks(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "GATEWAY_", "DJANGO_", "INSURER_",
                                "METERING_", "TELCO_"))}
    tmp_path = tmp_path / "var"  # does not exist yet, as in a fresh clone
    env["GATEWAY_VAR_DIR"] = str(tmp_path)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    assert manage("migrate", "--noinput").returncode == 0
    demo = manage("demo", "--customers", "3", "--telco-port", str(_free_port()))
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert demo.stdout.count(": succeeded") == 4, demo.stdout
    assert (tmp_path / "gateway.sqlite3").exists()
    counts = manage("shell", "-c", "import json; from restitution.models import Record; "
                    "from django.db.models import Count; print(json.dumps(dict("
                    "Record.objects.filter(deleted=False).values_list('dataset__slug')"
                    ".annotate(n=Count('id')))))")
    assert counts.returncode == 0, counts.stderr
    stored = json.loads(counts.stdout.strip().splitlines()[-1])
    truth = {}
    for path in (tmp_path / "demo" / "ground_truth").glob("*.ndjson"):
        if path.stem != "malformed":
            truth[path.stem] = sum(1 for _ in path.open())
    assert stored == {k: v for k, v in truth.items() if v}
    # Running it again is harmless and changes nothing.
    again = manage("demo", "--telco-port", str(_free_port()))
    assert again.returncode == 0, again.stderr[-3000:]
    assert " 0 created, 0 updated" in again.stdout
