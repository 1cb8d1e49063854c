"""The sync contract across consent changes: a `since` from an earlier consent of the customer to
the client (below the new consent's first sequence) is read from the start, so the records that
entered a widened period are sent again, never silently missed; a `since` of the consent in
force gives only the changes, even when the consent was given after the records were written."""

from __future__ import annotations

from restitution.models import Grant
from tests.api.test_records_api import _curve, write
from tests.api.test_records_api import get as _get
from tests.conftest import reset_rate_limits
from tests.personas import CURVE

RECORDS = f"/api/v1/datasets/{CURVE}/records"


def get(flow, token, path):
    reset_rate_limits()  # many calls in a row; the rate limits have tests of their own
    return _get(flow, token, path)


def all_pages(flow, token, path) -> list[dict]:
    items = []
    while path:
        body = get(flow, token, path).json()
        items += body["items"]
        path = body["next"]
    return items


def test_a_since_from_a_narrower_consent_sends_again_what_entered_the_window(flow, personas):
    write(personas.alice, CURVE, [_curve(d, h) for d in range(1, 11) for h in (0, 12)])  # 20 readings
    old = flow.tokens(datasets=[CURVE], window_start="2025-01-06", window_end="")["access_token"]
    first = get(flow, old, RECORDS).json()
    assert len(first["items"]) == 10 and first["next"] is None
    old_since = first["last_seq"]
    assert get(flow, old, f"{RECORDS}?since={old_since}").json()["items"] == []  # in force: accepted

    # The customer gives a new consent with a wider period: the ten older readings enter the window
    # with their old sequences, below old_since.
    new = flow.tokens(datasets=[CURVE], window_start="", window_end="")["access_token"]
    for path in (f"{RECORDS}?since={old_since}", f"/api/v1/changes?since={old_since}"):
        again = all_pages(flow, new, path + "&page_size=7")
        assert len(again) == 20, path  # the ten readings that entered the window are among them
        assert {i["key"] for i in again} >= {f"12345678901234|2025-01-0{d}T00:00:00Z" for d in range(1, 6)}
    ndjson = get(flow, new, f"{RECORDS}?since={old_since}&format=ndjson").content.decode().splitlines()
    assert len(ndjson) == 20

    # A full read under the new consent gives a last_seq its next `since` may use.
    everything = get(flow, new, RECORDS).json()
    assert len(everything["items"]) == 20 and everything["next"] is None
    since = everything["last_seq"]
    assert since == Grant.objects.get(customer=personas.alice, revoked_at__isnull=True).first_seq > old_since
    assert get(flow, new, f"{RECORDS}?since={since}").json() == {"items": [], "next": None, "last_seq": since}
    assert get(flow, new, f"/api/v1/changes?since={since}").json()["items"] == []
    assert get(flow, new, "/api/v1/changes?since=0").status_code == 200  # a full read is always allowed

    # Then only what changes.
    write(personas.alice, CURVE, [_curve(d, h, kw=2.0 if d == 1 and h == 0 else 1.0)
                                  for d in range(1, 11) for h in (0, 12)])
    delta = all_pages(flow, new, f"{RECORDS}?since={since}")
    assert [i["key"] for i in delta] == ["12345678901234|2025-01-01T00:00:00Z"]


def test_a_since_under_the_only_consent_gives_only_the_changes(flow, personas):
    write(personas.alice, CURVE, [_curve(d) for d in range(1, 4)])
    token = flow.tokens(datasets=[CURVE])["access_token"]
    page = get(flow, token, RECORDS).json()
    write(personas.alice, CURVE, [_curve(d) for d in range(1, 5)])
    # Either cursor a client may keep: last_seq, or the highest seq it has seen (below the
    # consent's first sequence here: the records were written before the consent).
    for since in (page["last_seq"], max(i["seq"] for i in page["items"])):
        response = get(flow, token, f"{RECORDS}?since={since}")
        assert response.status_code == 200 and [i["key"] for i in response.json()["items"]] == [
            "12345678901234|2025-01-04T00:00:00Z"]
