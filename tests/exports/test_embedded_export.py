"""In the embedded quick start (SQLite, tasks run eagerly, no server) an archive is built too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import json, zipfile
from django.db import transaction
from restitution import exports, portability
from restitution.catalogue import sync_catalogue
from restitution.models import Customer, ExportJob
from tests.api.test_records_api import _contract, write
sync_catalogue()
alice = Customer.objects.create(reference="C-ALICE")
write(alice, "insurance-contracts", [_contract("A1"), _contract("A2")])
with transaction.atomic():
    job = exports.request_export(customer=alice, datasets=exports.customer_datasets(customer=alice),
                                 window=portability.Window(None, None))
job.refresh_from_db()
with exports.open_archive(job=job) as handle:
    archive = zipfile.ZipFile(handle)
    lines = archive.read("insurance-contracts/records.ndjson").decode().splitlines()
    names = sorted(archive.namelist())
print(json.dumps({"status": job.status, "keys": [json.loads(line)["key"] for line in lines], "names": names}))
"""


def test_an_archive_is_built_on_sqlite_with_eager_tasks(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "GATEWAY_", "DJANGO_"))}
    env["GATEWAY_VAR_DIR"] = str(tmp_path / "var")

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)

    assert manage("migrate", "--noinput").returncode == 0
    result = manage("shell", "-c", SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "succeeded"
    assert sorted(outcome["keys"]) == ["A1", "A2"]
    assert "README.txt" in outcome["names"] and "manifest.json" in outcome["names"]
