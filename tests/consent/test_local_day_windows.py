"""A consent's period is whole days of the customer's calendar (Europe/Paris), DST days included:
a consent for 26 October 2025 gives that day's 50 half-hours, no more, no fewer; for 30 March
2025 its 46. The consent page names the time zone, the holder, the receipt and what stays with
the app after revoking; the login page reached from a client's request names the client."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client

from restitution import consent, store
from restitution.models import Dataset, Record
from tests.api.test_isolation_property import issue_token
from tests.conftest import reset_rate_limits
from tests.personas import CURVE, Flow

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def half_hours(customer, first: datetime, last: datetime) -> None:
    """One load-curve reading every 30 minutes (UTC) from `first` to `last` inclusive."""
    dataset = Dataset.objects.get(slug=CURVE)
    moment, seq = first, Record.objects.count()
    rows = []
    while moment <= last:
        seq += 1
        rows.append(Record(customer=customer, dataset=dataset, key=moment.isoformat(), seq=seq,
                           data={"start": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "kw": 1.0}, content_hash="h",
                           record_at=moment, extracted_at=datetime.now(UTC)))
        moment += timedelta(minutes=30)
    Record.objects.bulk_create(rows)
    # The feed serves records up to its safe point, below the change sequence's last value:
    # the sequence is moved past these hand-numbered records, whatever ran before this test.
    with connection.cursor() as cursor:
        sequence, table = store._PG_SEQUENCE, Record._meta.db_table
        cursor.execute(f"SELECT setval('{sequence}', greatest((SELECT max(seq) FROM {table}), "
                       f"(SELECT last_value FROM {sequence})))")


def read_day(personas, day: date) -> list[datetime]:
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=[Dataset.objects.get(slug=CURVE)], duration="1m",
                                 window_start=day, window_end=day)
    reset_rate_limits()
    body = Client().get(f"/api/v1/datasets/{CURVE}/records?page_size=1000",
                        HTTP_AUTHORIZATION=f"Bearer {issue_token(grant)}").json()
    assert body["next"] is None
    return [datetime.fromisoformat(item["data"]["start"].replace("Z", "+00:00")) for item in body["items"]]


@pytest.mark.parametrize(("day", "readings"), [(date(2025, 10, 26), 50), (date(2025, 3, 30), 46),
                                               (date(2025, 1, 15), 48)])
def test_a_consent_for_one_day_gives_that_whole_paris_day(personas, day, readings):
    # Readings from two days before to two days after, in UTC.
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=2)
    half_hours(personas.alice, start, start + timedelta(days=5))
    half_hours(personas.bob, start, start + timedelta(days=5))  # never alice's
    got = read_day(personas, day)
    local_days = {moment.astimezone(PARIS).date() for moment in got}
    assert local_days == {day}
    assert len(got) == len(set(got)) == readings


def test_the_consent_page_names_the_time_zone_the_holder_the_receipt_and_what_stays(personas):
    browser = Client()
    browser.force_login(personas.alice.user)
    flow = Flow(browser, Client())
    texts = {
        "en": ("Europe/Paris", "Demo data holder gives the data; Trusted cloud receives it",
               "receipt of this consent", "what it has already copied stays with it"),
        "fr": ("Europe/Paris", "Demo data holder fournit les données ; Trusted cloud les reçoit",
               "reçu de ce consentement", "ce qu'il a déjà copié reste chez lui"),
    }
    for language, expected in texts.items():
        page = browser.get("/o/authorize/?" + urlencode(flow.authorize_params()), HTTP_ACCEPT_LANGUAGE=language)
        html = page.content.decode().replace("&#x27;", "'")
        assert page.status_code == 200
        for text in expected:
            assert text in html, (language, text)


def test_the_login_page_reached_from_a_client_names_it(personas):
    flow = Flow(Client(), Client())
    authorize = "/o/authorize/?" + urlencode(flow.authorize_params())
    html = Client().get(f"/accounts/login/?next={quote(authorize)}").content.decode()
    assert 'id="asking-client"' in html and "Trusted cloud asks to access your data at Demo data holder" in html
    # Not for a client that is not approved, nor for any other page to go back to.
    intruder = Flow(Client(), Client(), client_id="intruder", redirect_uri="https://intruder.example/callback")
    other = "/o/authorize/?" + urlencode(intruder.authorize_params())
    assert "asking-client" not in Client().get(f"/accounts/login/?next={quote(other)}").content.decode()
    assert "asking-client" not in Client().get("/accounts/login/?next=/account/").content.decode()
    outside = "https://evil.example/o/authorize/?client_id=trusted-cloud"
    assert "asking-client" not in Client().get(f"/accounts/login/?next={quote(outside)}").content.decode()
