"""The served OpenAPI description, judged by tools nobody here wrote: spectral (`spectral:oas`)
and redocly (`recommended`) lint it clean, openapi-spec-validator accepts it, and a client
generated from it by openapi-python-client (generated here, never committed) pages every
dataset in every format and keeps a mirror exact across a change and a deletion."""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from openapi_spec_validator import validate

from restitution import consent
from restitution.models import Dataset
from tests.api.api_tools_install import api_tools
from tests.api.test_isolation_property import issue_token
from tests.api.test_records_api import _contract, write
from tests.conftest import load_ground_truth, reset_rate_limits
from tests.personas import CONTRACTS

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def served_schema(client, personas, tmp_path) -> Path:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    path = tmp_path / "openapi.yaml"
    path.write_bytes(response.content)
    return path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.django_db
def test_spectral_oas_finds_no_error_and_no_warning(served_schema, tmp_path):
    (tmp_path / ".spectral.yaml").write_text('extends: ["spectral:oas"]\n')
    result = _run([str(api_tools() / "spectral"), "lint", "--ruleset", ".spectral.yaml", "--format", "json",
                   "--quiet", "--fail-severity", "hint", served_schema.name], tmp_path)
    findings = json.loads(result.stdout or "[]")
    assert [f for f in findings if f["severity"] <= 1] == [], result.stdout[:3000]  # 0 error, 1 warning
    assert result.returncode == 0 or all(f["severity"] > 1 for f in findings), result.stderr[-2000:]


@pytest.mark.django_db
def test_redocly_recommended_finds_no_error(served_schema, tmp_path):
    result = _run([str(api_tools() / "redocly"), "lint", "--extends", "recommended", "--format", "json",
                   served_schema.name], tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    report = json.loads(result.stdout)
    assert report["totals"]["errors"] == 0, result.stdout[:3000]


@pytest.mark.django_db
def test_openapi_spec_validator_accepts_it(served_schema):
    spec = yaml.safe_load(served_schema.read_text())
    validate(spec)  # raises on an invalid description
    assert spec["openapi"].startswith("3.1")


@pytest.mark.django_db
def test_the_description_says_what_the_api_does(served_schema):
    spec = yaml.safe_load(served_schema.read_text())
    schemas, paths = spec["components"]["schemas"], spec["paths"]
    # A deletion is a shape of its own: a tombstone validates without a date, a record needs one.
    assert "date" not in schemas["Tombstone"]["required"] and "deleted" in schemas["Tombstone"]["required"]
    assert "date" in schemas["Record"]["required"] and "deleted" not in schemas["Record"]["properties"]
    records = paths["/api/v1/datasets/{slug}/records"]["get"]["responses"]["200"]
    assert set(records["content"]) == {"application/json", "application/x-ndjson", "text/csv",
                                       "application/atom+xml"}
    assert records["content"]["text/csv"]["schema"]["type"] == "string"
    assert "Green Button" in records["content"]["application/atom+xml"]["schema"]["description"]
    formats = next(p for p in paths["/api/v1/datasets/{slug}/records"]["get"]["parameters"] if p["name"] == "format")
    assert set(formats["schema"]["enum"]) == {"json", "ndjson", "csv", "espi"}
    changes = paths["/api/v1/changes"]["get"]["responses"]["200"]
    assert "application/atom+xml" not in changes["content"]  # one dataset per feed: records only
    assert records["content"]["application/x-ndjson"]["schema"]["type"] == "string"
    assert {"ETag", "Link"} <= set(records["headers"])
    refresh = paths["/api/v1/extractions"]["post"]["responses"]["202"]
    assert refresh["content"]["application/json"]["schema"]["$ref"].endswith("/ExtractionList")
    # Every error is a problem document; every 429 says how long to wait.
    for path, item in paths.items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (path, method, code)
                if code == "429":
                    assert response["headers"]["Retry-After"]["required"] is True
            if path == "/api/v1/exports/{export_id}/archive":
                assert operation["security"] == []  # the signed link is the credential
            else:
                assert operation["security"] == [{"oauth2": []}, {"bearer": []}]
            assert "validator" not in operation.get("description", "")  # no code comment as API text
    assert paths["/api/v1/exports/{export_id}/archive"]["get"]["responses"]["200"]["headers"]["Repr-Digest"]
    assert paths["/api/v1/exports/{export_id}"]["get"]["responses"]["202"]["headers"]["X-Progress"]
    assert paths["/api/v1/exports"]["post"]["responses"]["202"]["headers"]["Content-Location"]
    assert paths["/api/v1/datasets/{slug}/schema"]["get"]["responses"]["200"]["headers"]["X-Schema-Version"]
    assert spec["servers"] and spec["info"]["contact"] and spec["info"]["license"]
    assert {t["name"] for t in spec["tags"]} >= {"datasets", "changes", "exports", "extractions", "me"}
    # The key format is published: each dataset's key fields, and how they are joined.
    for dataset in Dataset.objects.filter(is_published=True):
        name = "".join(part.capitalize() for part in dataset.slug.split("-")) + "Data"
        assert schemas[name]["x-natural-key"] == dataset.natural_key
        assert f"`{dataset.slug}`: `{'|'.join(dataset.natural_key)}`" in schemas["Record"]["properties"]["key"][
            "description"]
    assert schemas["Tombstone"]["properties"]["key"] == schemas["Record"]["properties"]["key"]
    # Redoc shows the description: how to start and how to authenticate; Swagger UI takes a token.
    assert "## Getting started" in spec["info"]["description"] and "## Authentication" in spec["info"]["description"]
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "An access token you already hold, pasted as is (RFC 6750)."}


@pytest.mark.django_db
def test_the_schema_downloads_under_a_plain_ascii_file_name(client, personas):
    for query, suffix in (("", "yaml"), ("?format=json", "json")):
        disposition = client.get("/api/schema/" + query)["Content-Disposition"]
        assert disposition == f'inline; filename="restitution-gateway-openapi.{suffix}"'
        disposition.encode("ascii")


# --- a client generated from the served description, against the live test server --------------

def _generated_client(live_server, tmp_path, monkeypatch):
    """openapi-python-client's package for the served description, imported from tmp_path."""
    spec = tmp_path / "openapi.json"
    import httpx

    spec.write_bytes(httpx.get(live_server.url + "/api/schema/?format=json").content)
    config = tmp_path / "generator.yaml"
    config.write_text("package_name_override: gateway_client\n")
    result = _run([str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none",
                   "--config", str(config), "--output-path", str(tmp_path / "gateway_client")], tmp_path)
    assert (tmp_path / "gateway_client" / "client.py").exists(), (result.stdout + result.stderr)[-3000:]
    assert "Unable to generate" not in result.stdout, result.stdout[-3000:]
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "gateway_client" or m.startswith("gateway_client.")]:
        del sys.modules[name]
    return importlib.import_module("gateway_client")


def _instants(value):
    """Values with their RFC 3339 texts read as moments: the typed models print `+00:00` where the
    API prints `Z`, the same instant."""
    if isinstance(value, dict):
        return {k: _instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_instants(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
        return datetime.fromisoformat(value)
    return value


def _cursor(next_url: str | None):
    return parse_qs(urlsplit(next_url).query)["cursor"][0] if next_url else None


def _page_json(records, client, slug, **query) -> tuple[list, int]:
    """Every page through the generated client's typed models: the items (as models), last_seq."""
    items, cursor = [], None
    while True:
        reset_rate_limits()
        page = records.sync(slug=slug, client=client, page_size=7, **({"cursor": cursor} if cursor else {}),
                            **query)
        assert page is not None and page.__class__.__name__ == "RecordPage", page
        items += page.items
        cursor = _cursor(page.next_)
        if cursor is None:
            return items, page.last_seq


def _page_raw(client, slug: str, fmt: str) -> list[bytes]:
    """Every page in NDJSON or CSV, following `Link`: the generated functions parse only JSON bodies
    (they read every 200 as a RecordPage), so these go through the client's own authenticated
    HTTP session, as its README says to do for what it does not model."""
    bodies, url = [], f"/api/v1/datasets/{slug}/records?page_size=7&format={fmt}"
    while url:
        reset_rate_limits()
        response = client.get_httpx_client().get(url)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith({"ndjson": "application/x-ndjson", "csv": "text/csv"}[fmt])
        bodies.append(response.content)
        url = response.links.get("next", {}).get("url")
    return bodies


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_pages_every_dataset_in_every_format_and_syncs_across_a_deletion(
        live_server, personas, demo_dir, tmp_path, monkeypatch):
    # Every dataset holds records: the demo generator's, up to 23 each (over several pages of 7);
    # the contracts are written here, to change one and delete one below.
    truth = load_ground_truth(demo_dir)
    for slug in sorted({k[1] for k in truth} - {CONTRACTS}):
        write(personas.alice, slug, [v for k, v in sorted(truth.items()) if k[1] == slug][:23])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2"), _contract("A3")])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    datasets = list(Dataset.objects.filter(is_published=True))
    personas.trusted.allowed_datasets.set(datasets)
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets,
                                 duration="12m")
    token = issue_token(grant)

    sdk = _generated_client(live_server, tmp_path, monkeypatch)
    records = importlib.import_module("gateway_client.api.datasets.datasets_records_retrieve")
    listing = importlib.import_module("gateway_client.api.datasets.datasets_retrieve")
    changes = importlib.import_module("gateway_client.api.changes.changes_retrieve")
    models = importlib.import_module("gateway_client.models")
    client = sdk.AuthenticatedClient(base_url=live_server.url, token=token, raise_on_unexpected_status=True)

    reset_rate_limits()
    offered = listing.sync(client=client)
    assert sorted(d.slug for d in offered.items) == sorted(d.slug for d in datasets)
    mirror, last_seq = {}, {}
    for summary in offered.items:
        slug = models.DatasetsRecordsRetrieveSlug(summary.slug)
        items, last_seq[summary.slug] = _page_json(records, client, slug)
        assert all(isinstance(i, models.Record) for i in items)
        assert len(items) == summary.record_count
        mirror.update({(summary.slug, i.key): _instants(i.data.to_dict()) for i in items})
        # NDJSON: one item a line, the same items; CSV: a header and one row a record.
        lines = [json.loads(line) for body in _page_raw(client, summary.slug, "ndjson")
                 for line in body.decode().splitlines()]
        assert {(summary.slug, i["key"]): _instants(i["data"]) for i in lines} == {
            k: v for k, v in mirror.items() if k[0] == summary.slug}
        rows = [row for body in _page_raw(client, summary.slug, "csv")
                for row in csv.DictReader(io.StringIO(body.decode()))]
        assert sorted(r["key"] for r in rows) == sorted(i.key for i in items)
    assert {slug for slug, _ in mirror} == {d.slug for d in datasets}  # every dataset, none empty
    assert len([k for k in mirror if k[0] == CONTRACTS]) == 3

    # A change and a deletion at the holder: A2's premium changes, A3 is gone.
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2", premium=250.0)])
    delta, _ = _page_json(records, client, models.DatasetsRecordsRetrieveSlug(CONTRACTS), since=last_seq[CONTRACTS])
    kinds = {(type(i).__name__, i.key) for i in delta}
    assert kinds == {("Record", "A2"), ("Tombstone", "A3")}
    for item in delta:
        if isinstance(item, models.Tombstone):
            assert item.deleted is True
            del mirror[(CONTRACTS, item.key)]
        else:
            mirror[(CONTRACTS, item.key)] = _instants(item.data.to_dict())
    assert mirror[(CONTRACTS, "A2")]["annual_premium"] == 250.0
    assert sorted(k[1] for k in mirror if k[0] == CONTRACTS) == ["A1", "A2"]

    # The change feed, through its own generated function, tells the same.
    reset_rate_limits()
    feed = changes.sync(client=client, since=max(last_seq.values()))
    assert {(type(i).__name__, i.dataset, i.key) for i in feed.items} == {
        ("Record", CONTRACTS, "A2"), ("Tombstone", CONTRACTS, "A3")}
    client.get_httpx_client().close()  # the live server's thread lets go of its connection
