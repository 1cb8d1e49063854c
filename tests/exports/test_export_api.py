"""Exports through the API, FHIR Bulk Data style: ask (202), poll (202 + progress, then 200 with the
manifest), download through a signed link, cancel; and every refusal, from the refused side."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import signing
from django.core.files.storage import storages
from django.utils import timezone

from restitution import exports
from restitution.models import AccessEvent, ExportJob, Grant
from tests.conftest import reset_rate_limits
from tests.exports.archive_reader import csv_rows, ndjson_items, open_checked
from tests.personas import CONTRACTS, CURVE, Flow

pytestmark = pytest.mark.django_db(transaction=True)


def api(flow: Flow, method: str, path: str, token: str | None, **kwargs):
    reset_rate_limits()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return getattr(flow.api, method)(path, **headers, **kwargs)


def ask(flow: Flow, token: str, **body):
    return api(flow, "post", "/api/v1/exports", token, data=body, content_type="application/json")


def poll_to_end(flow: Flow, token: str, url: str, timeout: float = 60) -> tuple[object, list[int]]:
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api(flow, "get", url, token)
        if response.status_code != 202:
            return response, seen
        assert response["Retry-After"] and response["X-Progress"].endswith("%")
        seen.append(response.json()["progress"])
        time.sleep(0.2)
    raise AssertionError("export did not finish")


def build_now(job_url: str) -> None:
    """Run the queued job in this process (tests that need no worker)."""
    job = ExportJob.objects.get(public_id=job_url.rstrip("/").rsplit("/", 1)[1])
    assert exports.execute_export(job_id=job.pk) == ExportJob.Status.SUCCEEDED


@pytest.mark.worker
def test_a_client_polls_its_export_to_the_manifest_and_downloads_it(data, flow, start_worker, media):
    start_worker(concurrency=1, env={"GATEWAY_MEDIA_ROOT": str(media)})
    token = flow.tokens()["access_token"]
    asked = ask(flow, token)
    assert asked.status_code == 202, asked.content
    url = asked["Content-Location"]
    assert url == asked.json()["url"]

    done, progress = poll_to_end(flow, token, url)
    assert done.status_code == 200, done.content
    body = done.json()
    assert progress == sorted(progress)
    manifest = body["manifest"]
    assert {d["slug"]: d["records"] for d in manifest["datasets"]} == {CURVE: 10, CONTRACTS: 2}
    assert manifest["grant"]["client_id"] == "trusted-cloud"
    assert manifest["transaction_time"] and body["transaction_time"]

    link = body["archive"]["url"]
    download = flow.api.get(link)  # no token: the signed link is enough
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["archive"]["sha256"]
    assert download["Repr-Digest"] == "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"
    archive, inner = open_checked(content)
    assert inner == manifest
    keys = {item["key"] for item in ndjson_items(archive, CONTRACTS)}
    assert keys == {"A1", "A2"}  # nothing of bob's
    assert {row["key"] for row in csv_rows(archive, CONTRACTS)} == keys
    # The spreadsheet table: one row per half hour of each day, the missing ones said so.
    curve_rows = csv_rows(archive, CURVE)
    assert len(curve_rows) == 10 * 48
    assert sorted(row["value"] for row in curve_rows if row["missing"] == "false") == ["1.0"] * 20
    assert all(row["value"] == "" for row in curve_rows if row["missing"] == "true")
    first_day = [row for row in curve_rows if row["day"] == "2025-01-01"]
    assert [row["reading_start"] for row in first_day][:2] == ["2024-12-31T23:00:00Z", "2024-12-31T23:30:00Z"]
    assert {row["delivery_point"] for row in curve_rows} == {"12345678901234"}
    kinds = list(AccessEvent.objects.filter(customer=data.alice, kind__startswith="export")
                 .values_list("kind", "record_count"))
    assert sorted(kinds) == [(AccessEvent.Kind.EXPORT, 12), (AccessEvent.Kind.EXPORT_DOWNLOADED, 12)]
    assert not AccessEvent.objects.filter(customer=data.bob, kind__startswith="export").exists()


def test_a_second_export_while_one_runs_is_429_until_it_is_cancelled(data, flow):
    token = flow.tokens()["access_token"]
    first = ask(flow, token, datasets=[CURVE])
    assert first.status_code == 202
    second = ask(flow, token)
    assert second.status_code == 429
    assert second["Content-Type"] == "application/problem+json"
    assert second.json()["code"] == "export_in_progress" and int(second["Retry-After"]) > 0
    assert second.json()["export"] == first["Content-Location"]

    assert api(flow, "delete", first["Content-Location"], token).status_code == 202
    assert api(flow, "get", first["Content-Location"], token).status_code == 404
    assert api(flow, "delete", first["Content-Location"], token).status_code == 404
    assert ask(flow, token).status_code == 202


def test_the_window_and_dataset_choice_are_honoured(data, flow):
    token = flow.tokens(window_start="2025-01-03", window_end="2025-01-08")["access_token"]
    asked = ask(flow, token, datasets=[CURVE], **{"from": "2025-01-02", "to": "2025-01-05"})
    build_now(asked["Content-Location"])
    body = api(flow, "get", asked["Content-Location"], token).json()
    # Clipped to the consent, whose days are the customer's (Paris midnight of 3 January is 23:00
    # UTC); the request's own dates are the customer's days too (5 January ends at 23:00 UTC).
    assert body["manifest"]["request"] == {"datasets": [CURVE], "from": "2025-01-02T23:00:00Z",
                                           "to": "2025-01-05T23:00:00Z"}
    archive, _ = open_checked(b"".join(flow.api.get(body["archive"]["url"]).streaming_content))
    # A day block is dated by its start, its local midnight: exactly the days asked for.
    days = sorted({item["data"]["day"] for item in ndjson_items(archive, CURVE)})
    assert days == ["2025-01-03", "2025-01-04", "2025-01-05"]
    assert not any(name.startswith(CONTRACTS) for name in archive.namelist())


def test_what_is_outside_the_consent_or_malformed_is_refused(data, flow):
    token = flow.tokens(datasets=(CURVE,))["access_token"]
    for body, status, code in [
        ({"datasets": [CONTRACTS]}, 404, "not_found"),  # not granted
        ({"datasets": ["telco-call-log"]}, 404, "not_found"),
        ({"datasets": "energy-load-curve"}, 400, "invalid_parameter"),
        ({"datasets": []}, 400, "invalid_parameter"),
        ({"from": "yesterday"}, 400, "invalid_parameter"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, 400, "invalid_parameter"),
        ({"to": 20250101}, 400, "invalid_parameter"),
    ]:
        response = ask(flow, token, **body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert response["Content-Type"] == "application/problem+json"
    for raw, code in (('["energy-load-curve"]', "invalid_parameter"), ("42", "invalid_parameter"),
                      ('{"datasets": [', "invalid_body")):
        response = api(flow, "post", "/api/v1/exports", token, data=raw, content_type="application/json")
        assert (response.status_code, response.json()["code"]) == (400, code), raw
        assert response["Content-Type"] == "application/problem+json"
    assert not ExportJob.objects.exists()
    assert ask(flow, None).status_code == 401
    assert ask(flow, "not-a-token").status_code == 401


def test_another_customer_or_client_cannot_see_or_cancel_alices_export(data, flow):
    alice_token = flow.tokens()["access_token"]
    url = ask(flow, alice_token)["Content-Location"]
    build_now(url)
    bob_browser = flow.browser.__class__()
    bob_browser.force_login(data.bob.user, backend="django.contrib.auth.backends.ModelBackend")
    bob_token = Flow(bob_browser, flow.api).tokens()["access_token"]
    for method in ("get", "delete"):
        refused = api(flow, method, url, bob_token)
        assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert api(flow, "get", url, alice_token).status_code == 200


def test_a_forged_or_expired_link_downloads_nothing(data, flow, monkeypatch):
    token = flow.tokens()["access_token"]
    url = ask(flow, token)["Content-Location"]
    build_now(url)
    link = api(flow, "get", url, token).json()["archive"]["url"]
    signed = parse_qs(urlparse(link).query)["token"][0]
    path = urlparse(link).path
    forged = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    assert flow.api.get(path, {"token": forged}).status_code == 404
    assert flow.api.get(path).status_code == 404
    other = ExportJob.objects.get()
    other_path = path.replace(str(other.public_id), "00000000-0000-0000-0000-000000000000")
    assert flow.api.get(other_path, {"token": signed}).status_code == 404  # a link opens one archive only

    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 6 * 3600 - 5)
    stale = exports.download_token(job=other)
    monkeypatch.setattr(signing.time, "time", real_time)
    expired = flow.api.get(path, {"token": stale})
    assert expired.status_code == 410 and expired.json()["code"] == "link_expired"
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.EXPORT_DOWNLOADED).exists()


def test_a_one_time_consent_ends_when_its_manifest_is_delivered_but_the_link_still_works(data, flow):
    token = flow.tokens(duration="one-time")["access_token"]
    url = ask(flow, token)["Content-Location"]
    build_now(url)
    assert Grant.objects.get().status() == "active"
    link = api(flow, "get", url, token).json()["archive"]["url"]
    assert Grant.objects.get().status() == "used"
    assert api(flow, "get", url, token).status_code == 401  # the token died with the consent
    assert ask(flow, token).status_code == 401
    assert flow.api.get(link).status_code == 200


def test_archives_are_deleted_after_their_retention(data, flow):
    token = flow.tokens()["access_token"]
    url = ask(flow, token)["Content-Location"]
    build_now(url)
    link = api(flow, "get", url, token).json()["archive"]["url"]
    job = ExportJob.objects.get()
    assert storages["exports"].exists(job.file_name)
    assert exports.purge_expired_exports() == 0  # not yet
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now())
    assert exports.purge_expired_exports() == 1
    assert not storages["exports"].exists(job.file_name)
    gone = api(flow, "get", url, token)
    assert gone.status_code == 410 and gone.json()["code"] == "export_expired"
    assert flow.api.get(link).status_code == 410


def test_an_export_cancelled_while_it_is_built_leaves_no_file(data, flow, monkeypatch, media):
    token = flow.tokens()["access_token"]
    url = ask(flow, token)["Content-Location"]
    job = ExportJob.objects.get()
    real_count = exports._count

    def count_then_cancel(snapshot, queryset):  # a DELETE arrives while the archive is written
        exports.cancel_export(job=ExportJob.objects.get(pk=job.pk))
        return real_count(snapshot, queryset)

    monkeypatch.setattr(exports, "_count", count_then_cancel)
    assert exports.execute_export(job_id=job.pk) == ExportJob.Status.CANCELLED
    assert ExportJob.objects.get().status == ExportJob.Status.CANCELLED
    assert not list(media.rglob("*.zip"))
    assert api(flow, "get", url, token).status_code == 404
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.EXPORT).exists()


def test_a_job_whose_worker_died_is_claimed_again_and_a_finished_one_is_not(data, flow):
    token = flow.tokens()["access_token"]
    ask(flow, token)
    job = ExportJob.objects.get()
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING,
                                               heartbeat_at=timezone.now() - exports.STALE_AFTER * 2)
    assert exports.requeue_stalled_exports() == [job.pk]
    assert exports.execute_export(job_id=job.pk) == ExportJob.Status.SUCCEEDED
    assert exports.execute_export(job_id=job.pk) == "skipped"
    assert ExportJob.objects.get().status == ExportJob.Status.SUCCEEDED



def test_the_archive_shows_one_instant_while_an_extraction_writes(data, flow, monkeypatch):
    from tests.api.test_records_api import _contract, write

    token = flow.tokens()["access_token"]
    url = ask(flow, token, datasets=[CONTRACTS])["Content-Location"]
    real_count = exports._count

    def count_while_the_store_changes(snapshot, queryset):  # after the snapshot was taken
        write(data.alice, CONTRACTS, [_contract("A1", premium=999.0), _contract("A2"), _contract("A3")])
        return real_count(snapshot, queryset)

    monkeypatch.setattr(exports, "_count", count_while_the_store_changes)
    build_now(url)
    body = api(flow, "get", url, token).json()
    archive, _ = open_checked(b"".join(flow.api.get(body["archive"]["url"]).streaming_content))
    items = {item["key"]: item["data"] for item in ndjson_items(archive, CONTRACTS)}
    assert set(items) == {"A1", "A2"} and items["A1"]["annual_premium"] == 100.0
    assert body["manifest"]["record_count"] == 2
    listed = api(flow, "get", f"/api/v1/datasets/{CONTRACTS}/records", token).json()["items"]
    assert {i["key"] for i in listed} == {"A1", "A2", "A3"}  # the change did happen
