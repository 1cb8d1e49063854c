"""Property: a page printed by PostgreSQL (JSON and NDJSON, the hot path) holds exactly what the
ORM page gives (CSV, the change feed's shape, SQLite) — same items, same order, same cursor —
for random windows, cursors, `since` and page sizes, with deletions and keys that need escaping."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restitution import consent, portability
from restitution.models import Dataset
from tests.api.test_records_api import _contract, _curve, write
from tests.personas import CONTRACTS, CURVE

days = st.dates(min_value=date(2024, 12, 30), max_value=date(2025, 1, 12))
#: Keys a naive printer would break: quotes, backslashes, the text that marks a sequence, control
#: characters, non-ASCII.
AWKWARD_IDS = ['A"1', "A\\2", 'A,"seq":7', "A\u0001\t4", "Aé€5", "A6"]


@pytest.fixture
def changed_data(personas):
    write(personas.alice, CURVE, [_curve(d, h) for d in range(1, 13) for h in (0, 12)])
    write(personas.alice, CONTRACTS, [_contract(cid) for cid in AWKWARD_IDS])
    # A second snapshot: some readings gone (tombstones), some changed, a contract deleted.
    write(personas.alice, CURVE, [_curve(d, h, kw=2.0 if d % 3 else 1.0) for d in range(1, 13) for h in (0, 12)
                                  if (d, h) not in {(2, 0), (5, 12), (9, 0)}])
    write(personas.alice, CONTRACTS, [_contract(cid, premium=120.0) for cid in AWKWARD_IDS if cid != "A\\2"])
    write(personas.bob, CURVE, [_curve(d, 6, kw=9.9) for d in range(1, 4)])
    return personas


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slug=st.sampled_from([CURVE, CONTRACTS]),
       window=st.tuples(st.none() | days, st.none() | days),
       request_window=st.tuples(st.none() | days.map(str), st.none() | days.map(str)),
       after=st.integers(min_value=0, max_value=90),
       since=st.none() | st.integers(min_value=0, max_value=90),
       size=st.integers(min_value=1, max_value=40))
def test_the_printed_page_equals_the_orm_page(changed_data, slug, window, request_window, after, since, size):
    start, end = sorted(window, key=lambda d: d or date.min) if all(window) else window
    dataset = Dataset.objects.get(slug=slug)
    grant = consent.create_grant(customer=changed_data.alice, client=changed_data.trusted, datasets=[dataset],
                                 duration="1m", window_start=start, window_end=end)
    try:
        scope = portability.request_window(grant, since_date=request_window[0], until_date=request_window[1])
    except portability.BadParameter:
        return
    expected = portability.record_page(grant, dataset, scope, after=after, since=since, size=size)
    reference = json.loads(json.dumps(expected.items))
    for separator in ("\n", ",\n"):
        printed = portability.record_page_text(grant, dataset, scope, after=after, since=since, size=size,
                                               separator=separator)
        if separator == "\n":
            assert [json.loads(line) for line in printed.text.splitlines()] == reference
        else:
            assert json.loads("[" + printed.text + "]") == reference
        assert printed.count == len(expected.items)
        assert (printed.next_after, printed.last_seq) == (expected.next_after, expected.last_seq)


def test_the_data_set_has_what_the_property_needs(changed_data):
    """The property above is only worth something if deletions, escapes and windows occur."""
    dataset = Dataset.objects.get(slug=CONTRACTS)
    grant = consent.create_grant(customer=changed_data.alice, client=changed_data.trusted, datasets=[dataset],
                                 duration="1m")
    everything = portability.request_window(grant, since_date=None, until_date=None)
    page = portability.record_page_text(grant, dataset, everything, after=0, since=0, size=100, separator="\n")
    items = [json.loads(line) for line in page.text.splitlines()]
    deleted = [item["key"] for item in items if item.get("deleted")]
    assert len(deleted) == 1 and "A\\2" in deleted[0]
    assert any('"' in item["key"] for item in items) and any("\u0001" in item["key"] for item in items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(granted=st.sets(st.sampled_from([CURVE, CONTRACTS]), min_size=1),
       window=st.tuples(st.none() | days, st.none() | days),
       after=st.integers(min_value=0, max_value=90),
       size=st.integers(min_value=1, max_value=40))
def test_the_printed_change_feed_equals_the_orm_feed(changed_data, granted, window, after, size):
    start, end = sorted(window, key=lambda d: d or date.min) if all(window) else window
    grant = consent.create_grant(customer=changed_data.alice, client=changed_data.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=granted)), duration="1m",
                                 window_start=start, window_end=end)
    scope = portability.request_window(grant, since_date=None, until_date=None)
    expected = portability.change_page(grant, scope, after=after, size=size)
    reference = json.loads(json.dumps(expected.items))
    counts = {slug: sum(item["dataset"] == slug for item in expected.items) for slug in granted}
    counts = {slug: n for slug, n in counts.items() if n}
    for separator in ("\n", ",\n"):
        printed, printed_counts = portability.change_page_text(grant, scope, after=after, size=size,
                                                               separator=separator)
        text = "[" + printed.text + "]" if separator == ",\n" else "[" + ",".join(printed.text.splitlines()) + "]"
        assert json.loads(text) == reference
        assert (printed.count, printed.next_after, printed.last_seq) == (
            len(expected.items), expected.next_after, expected.last_seq)
        assert printed_counts == counts
