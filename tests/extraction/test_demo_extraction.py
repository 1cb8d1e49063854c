"""Extraction of the demo legacy systems equals the generator's ground truth, to the half hour."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from demo.install import install_demo
from restitution import extraction, store
from restitution.models import Customer, ExtractionRun, Record, RejectedRow, Source
from tests.conftest import assert_matches_ground_truth, load_ground_truth, load_malformed, missing, per_worker

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def extract_all(customer: Customer | None = None) -> list[ExtractionRun]:
    runs = []
    for source in Source.objects.order_by("slug"):
        run = extraction.request_extraction(source=source, customer=customer)
        run = extraction.run_synchronously(run=run)
        assert run.status == ExtractionRun.Status.SUCCEEDED, (source.slug, run.error)
        runs.append(run)
    return runs


@pytest.fixture
def installed(demo_dir, demo_env, flush_gate):
    return install_demo(demo_dir, with_users=False)


def test_a_full_extraction_equals_the_ground_truth(demo_dir, installed):
    extract_all()
    assert_matches_ground_truth(demo_dir)


def test_the_load_curve_has_46_and_50_readings_on_the_dst_days(demo_dir, installed):
    extract_all()
    alice = Customer.objects.get(identities__system="energy", identities__value__isnull=False,
                                 reference=load_alice(demo_dir))
    blocks = {data["day"]: data for data in Record.objects.filter(
        customer=alice, dataset__slug="energy-load-curve", deleted=False).values_list("data", flat=True)}
    for day, count, duration in (("2025-03-30", 46, 82800), ("2025-10-26", 50, 90000),
                                 ("2025-01-15", 48, 86400)):
        block = blocks[day]
        assert (block["expected_readings"], block["duration_seconds"]) == (count, duration)
        starts = [r["start"] for r in block["readings"]] + block["missing"]
        assert len(set(starts)) == len(starts) == count
        assert all(
            datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(PARIS).date().isoformat() == day
            for s in starts)


def test_days_with_gaps_say_which_half_hours_are_missing(demo_dir, installed):
    extract_all()
    gappy = [line for line in load_ground_truth(demo_dir).items()
             if line[0][1] == "energy-load-curve" and line[1]["missing_count"]]
    assert gappy, "the demo has days with gaps"
    stored = {(c, k): d for c, k, d in Record.objects.filter(
        dataset__slug="energy-load-curve", deleted=False).values_list("customer__reference", "key", "data")}
    for (customer, _, key), data in gappy:
        block = stored[(customer, key)]
        assert block["missing_count"] == len(block["missing"]) == data["missing_count"] > 0
        assert len(block["readings"]) + block["missing_count"] == block["expected_readings"]


def load_alice(demo_dir) -> str:
    import json

    customers = json.loads((demo_dir / "ground_truth" / "customers.json").read_text())
    return next(c["reference"] for c in customers if c["username"] == "alice")


def test_a_second_run_changes_nothing(demo_dir, installed):
    extract_all()
    seq_before = store.current_seq()
    snapshot = dict(Record.objects.values_list("id", "seq"))
    runs = extract_all()
    assert sum(r.created + r.updated + r.deleted for r in runs) == 0
    assert sum(r.unchanged for r in runs) == len(load_ground_truth(demo_dir))
    assert store.current_seq() == seq_before
    assert dict(Record.objects.values_list("id", "seq")) == snapshot
    assert_matches_ground_truth(demo_dir)


def test_per_customer_runs_give_the_same_records(demo_dir, installed):
    for customer in Customer.objects.order_by("reference"):
        extract_all(customer)
    assert_matches_ground_truth(demo_dir)


def test_a_consents_run_over_unchanged_data_writes_nothing_in_few_statements(installed):
    # A customer's own run (a consent's) is the gateway's most frequent run: over data already
    # stored it writes nothing (no transaction, staging table, or cursor held across
    # transactions) and costs the run row's four statements, the identities, and one read of
    # the stored records per dataset.
    source = Source.objects.get(kind="sql")
    customer = Customer.objects.filter(identities__system=source.identity_system).order_by("reference").first()
    extraction.run_synchronously(run=extraction.request_extraction(source=source, customer=customer))
    run = extraction.request_extraction(source=source, customer=customer, trigger=ExtractionRun.Trigger.CONSENT)
    seq = store.current_seq()
    with CaptureQueriesContext(connection) as queries:
        assert extraction.execute_run(run_id=run.pk).status == "succeeded"
    run.refresh_from_db()
    assert run.unchanged > 0 and run.created == run.updated == run.deleted == 0
    assert store.current_seq() == seq
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= 5 + source.datasets.count(), statements
    assert not [s for s in statements if s.split()[0] in ("SAVEPOINT", "BEGIN", "CREATE", "COPY", "DECLARE")]


def test_malformed_rows_are_quarantined_with_their_reason(demo_dir, installed):
    runs = extract_all()
    expected = load_malformed(demo_dir)
    assert expected, "the demo must inject malformed rows"
    rejected = list(RejectedRow.objects.select_related("source", "dataset", "customer"))
    assert sum(r.rejected for r in runs) == len(rejected) == len(expected)
    reasons = {"missing-key": ("missing",), "impossible-date": ("impossible",),
               "bad-encoding": ("bad encoding",)}
    unmatched = list(rejected)
    for item in expected:
        match = next(
            (r for r in unmatched
             if r.source.slug == item["source"] and r.dataset.slug == item["dataset"]
             and r.customer is not None and r.customer.reference == item["customer"]
             and any(word in r.reason for word in reasons[item["kind"]])),
            None,
        )
        assert match is not None, f"not quarantined as expected: {item}; got {[r.reason for r in unmatched]}"
        assert match.raw and match.locator
        unmatched.remove(match)
    # …and every good row is stored all the same.
    assert_matches_ground_truth(demo_dir)


def test_a_legacy_change_yields_exactly_the_changes_and_deletions(fresh_demo_dir, telco_server,
                                                                  monkeypatch, flush_gate):
    from demo.generator import apply_changes
    from tests.conftest import demo_env_for

    for name, value in demo_env_for(fresh_demo_dir, telco_server).items():
        monkeypatch.setenv(name, value)
    install_demo(fresh_demo_dir, with_users=False)
    extract_all()
    since = store.current_seq()
    change = apply_changes(fresh_demo_dir)
    extract_all()
    assert_matches_ground_truth(fresh_demo_dir)
    changed = Record.objects.filter(seq__gt=since)
    seen = {(r.dataset.slug, r.key, r.deleted) for r in changed.select_related("dataset")}
    expected = (
        {(d, k, False) for d, k in _pairs(change["updated"])}
        | {(d, k, False) for d, k in _pairs(change["created"])}
        | {(d, k, True) for d, k in _pairs(change["deleted"])}
    )
    assert seen == expected


def _pairs(items) -> set[tuple[str, str]]:
    result = set()
    for item in items:
        if isinstance(item, dict):
            result.add((item["dataset"], item["key"]))
        else:
            result.add(tuple(item))
    return result


def test_an_unknown_token_is_a_permanent_failure(installed, monkeypatch):
    monkeypatch.setenv("TELCO_API_TOKEN", "not-the-token")
    source = Source.objects.get(kind="http-json")
    alice = Customer.objects.filter(identities__system=source.identity_system).first()
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source, customer=alice))
    assert run.status == ExtractionRun.Status.FAILED
    assert run.attempts == 1
    assert "not-the-token" not in run.error


def test_a_missing_connection_is_a_permanent_failure_that_names_the_variable(installed, monkeypatch):
    source = Source.objects.get(kind="sql")
    monkeypatch.delenv(source.connection_env)
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    assert run.status == ExtractionRun.Status.FAILED
    assert source.connection_env in run.error


def test_a_source_down_is_retried_then_fails(installed, monkeypatch):
    monkeypatch.setattr(extraction, "RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setenv("INSURER_DB_URL", "mysql+pymysql://root@127.0.0.1:1/nowhere")
    source = Source.objects.get(kind="sql")
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    assert run.status == ExtractionRun.Status.FAILED
    assert run.attempts == extraction.MAX_ATTEMPTS
    assert "root@" not in run.error


def test_a_second_request_reuses_the_queued_run(installed):
    source = Source.objects.order_by("slug").first()
    first = extraction.request_extraction(source=source)
    second = extraction.request_extraction(source=source)
    assert first.pk == second.pk


@pytest.mark.mariadb
def test_the_insurer_database_on_mariadb_gives_the_same_records(demo_dir, demo_env, flush_gate,
                                                                monkeypatch):
    import os

    from sqlalchemy.engine import make_url

    from demo.insurer import copy_to

    url = os.environ.get("TEST_MARIADB_URL")
    if not url:
        missing("TEST_MARIADB_URL is not set")
    url = make_url(url)  # parallel workers: one database each (legacy_insurer_gw0, …)
    url = url.set(database=per_worker(url.database)).render_as_string(hide_password=False)
    copy_to(url, demo_dir / "insurer.sqlite3")
    monkeypatch.setenv("INSURER_DB_URL", url)
    install_demo(demo_dir, with_users=False)
    source = Source.objects.get(kind="sql")
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source))
    assert run.status == ExtractionRun.Status.SUCCEEDED, run.error
    slugs = set(source.datasets.values_list("slug", flat=True))
    truth = {k: v for k, v in load_ground_truth(demo_dir).items() if k[1] in slugs}
    stored = {(c, d, k): data for c, d, k, data in Record.objects.filter(deleted=False).values_list(
        "customer__reference", "dataset__slug", "key", "data")}
    assert stored == truth
