"""The embedded default keeps working: no database server, no broker, the demo end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT

EMBEDDED_API_SCRIPT = """
import json, secrets
from datetime import timedelta
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value
from restitution import consent
from demo.install import install_demo_client
from restitution.models import Customer, Record

client = install_demo_client()
customer = max(Customer.objects.exclude(user=None), key=lambda c: c.records.filter(deleted=False).count())
datasets = list(client.allowed_datasets.filter(records__customer=customer).distinct())
grant = consent.create_grant(customer=customer, client=client, datasets=datasets, duration="1m")
raw = secrets.token_urlsafe(24)
token = get_access_token_model()(user=customer.user, application=client, scope=" ".join(d.scope for d in datasets),
                                 expires=timezone.now() + timedelta(minutes=5))
set_token_value(token, raw)
token.save()
http, auth = Client(), {"HTTP_AUTHORIZATION": "Bearer " + raw}
statuses, counts = set(), {"json": 0, "ndjson": 0, "changes": 0}
for dataset in datasets:
    for fmt in ("json", "ndjson"):
        url = f"/api/v1/datasets/{dataset.slug}/records?page_size=400&format={fmt}"
        while url:
            response = http.get(url, **auth)
            statuses.add(response.status_code)
            text = response.content.decode()
            counts[fmt] += len(json.loads(text)["items"]) if fmt == "json" else len(text.splitlines())
            link = response.get("Link")
            url = link[1:link.index(">")] if link else None
url = "/api/v1/changes?page_size=900"
while url:
    body = http.get(url, **auth).json()
    counts["changes"] += len(body["items"])
    url = body["next"]
stored = Record.objects.filter(customer=customer, dataset__in=datasets, deleted=False).count()
counts["feed_expected"] = Record.objects.filter(customer=customer, dataset__in=datasets).count()  # deletions too
refused = Client().get("/api/v1/me", HTTP_AUTHORIZATION="Bearer nope").status_code
print(json.dumps({"statuses": sorted(statuses), "stored": stored, "refused": refused, **counts}))
"""


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

    def manage(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**env, **extra_env},
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
    # The API answers on SQLite too (no PostgreSQL-only SQL on its paths): a customer with data
    # consents, the client pages every granted dataset in JSON and NDJSON and reads the feed.
    # (Pages of a few hundred records, to walk cursors: more calls than the default 10/s allows.)
    api = manage("shell", "-c", EMBEDDED_API_SCRIPT, API_RATE_PER_CUSTOMER="10000/s", API_RATE_PER_CLIENT="10000/s")
    assert api.returncode == 0, api.stderr[-3000:]
    read = json.loads(api.stdout.strip().splitlines()[-1])
    assert read["statuses"] == [200] and read["refused"] == 401, read
    assert read["json"] == read["ndjson"] == read["stored"] > 0 and read["changes"] == read["feed_expected"], read
    # Running it again is harmless and changes nothing.
    again = manage("demo", "--telco-port", str(_free_port()))
    assert again.returncode == 0, again.stderr[-3000:]
    assert " 0 created, 0 updated" in again.stdout
