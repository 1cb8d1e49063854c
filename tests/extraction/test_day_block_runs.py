"""Day blocks through real extraction runs: quarantine one row at a time, corrections re-emitted."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from demo.install import install_customers, install_sources
from demo.sources import METERING_ENV, METERING_SOURCE
from restitution import extraction, store
from restitution.models import Customer, ExtractionRun, Record, RejectedRow, Source

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
PDL, OTHER = "01234567890123", "05555555555555"
HEADER = "Identifiant PDL;Date et heure;Puissance moyenne (kW)"


def day_lines(pdl: str, day: date, *, skip: tuple[int, ...] = ()) -> list[str]:
    first = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    lines, moment, index = [], first, 0
    while moment.astimezone(PARIS).date() == day:
        if index not in skip:
            watts = 200 + index
            lines.append(f"{pdl};{moment.astimezone(PARIS):%d/%m/%Y %H:%M};{watts // 1000},{watts % 1000:03d}")
        moment += timedelta(minutes=30)
        index += 1
    return lines


def write_day(base: Path, day: date, lines: list[str]) -> None:
    path = base / "courbe_de_charge" / f"{day:%Y}" / f"{day:%m}" / f"CDC_{day:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([HEADER, *lines]) + "\r\n").encode("latin-1"))


DAYS = (date(2025, 3, 30), date(2025, 3, 31), date(2025, 10, 26))


@pytest.fixture
def metering(tmp_path, monkeypatch, flush_gate):
    base = tmp_path / "metering"
    for day in DAYS:
        write_day(base, day, day_lines(PDL, day) + day_lines(OTHER, day))
    monkeypatch.setenv(METERING_ENV, str(base))
    call_command("publish_catalogue", verbosity=0)
    definition = copy.deepcopy(METERING_SOURCE)
    definition["datasets"] = ["energy-load-curve"]
    install_sources([definition])
    install_customers([{"reference": "C1", "identities": {"energy": PDL}},
                       {"reference": "C2", "identities": {"energy": OTHER}}], with_users=False)
    return base


def run(customer: Customer | None = None) -> ExtractionRun:
    source = Source.objects.get(slug=METERING_SOURCE["slug"])
    done = extraction.run_synchronously(run=extraction.request_extraction(source=source, customer=customer))
    assert done.status == ExtractionRun.Status.SUCCEEDED, done.error
    return done


def blocks(reference: str = "C1") -> dict[str, Record]:
    return {r.data["day"]: r for r in Record.objects.filter(customer__reference=reference, deleted=False)}


def test_a_run_stores_one_block_per_meter_and_local_day(metering):
    first = run()
    assert (first.read, first.created, first.rejected) == (2 * (46 + 48 + 50), 6, 0)
    mine = blocks()
    assert sorted(mine) == ["2025-03-30", "2025-03-31", "2025-10-26"]
    assert [(b.data["expected_readings"], len(b.data["readings"])) for _, b in sorted(mine.items())] == [
        (46, 46), (48, 48), (50, 50)]
    spring = mine["2025-03-30"]
    assert spring.key == f"{PDL}|2025-03-30" and spring.data["start"] == "2025-03-29T23:00:00Z"
    assert spring.record_at == datetime(2025, 3, 29, 23, tzinfo=UTC)
    assert spring.data["readings"][0] == {"start": "2025-03-29T23:00:00Z", "value": 0.2}
    again = run()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)


def test_a_per_customer_run_gives_the_same_blocks(metering):
    run()
    full = {day: r.data for day, r in blocks().items()}
    Record.objects.all().delete()
    run(Customer.objects.get(reference="C1"))
    assert {day: r.data for day, r in blocks().items()} == full
    assert not Record.objects.filter(customer__reference="C2").exists()


def test_a_bad_row_is_quarantined_alone_and_its_day_written_with_the_reading_missing(metering):
    day = date(2025, 3, 31)
    lines = day_lines(PDL, day)
    lines[20] = lines[20].replace(",", ".")  # 0,220 → 0.220: not the export's decimal comma
    write_day(metering, day, lines + day_lines(OTHER, day))
    done = run()
    assert done.rejected == 1
    (rejected,) = RejectedRow.objects.all()
    assert rejected.customer.reference == "C1" and "decimal comma" in rejected.reason
    assert rejected.locator.startswith("courbe_de_charge/2025/03/CDC_20250331.csv:22 ")
    block = blocks()["2025-03-31"].data
    assert block["missing"] == ["2025-03-31T08:00:00Z"] and block["missing_count"] == 1
    assert len(block["readings"]) == 47
    assert blocks("C2")["2025-03-31"].data["missing_count"] == 0


def test_a_gap_in_the_source_is_said_in_the_block(metering):
    day = date(2025, 10, 26)
    write_day(metering, day, day_lines(PDL, day, skip=(3, 8, 9)) + day_lines(OTHER, day))
    run()
    block = blocks()["2025-10-26"].data
    # 01:30 summer time, then 03:00 and 03:30 winter time.
    assert block["missing"] == ["2025-10-25T23:30:00Z", "2025-10-26T02:00:00Z", "2025-10-26T02:30:00Z"]
    assert len(block["readings"]) == 47 and block["expected_readings"] == 50


def test_a_gap_inside_the_repeated_hour_reads_a_lone_local_time_as_summer_time(metering):
    """Naive local times cannot say which 02:30 a lone one is: the first occurrence in file
    order is summer time (the documented rule), so the half hours said missing are those."""
    day = date(2025, 10, 26)
    write_day(metering, day, day_lines(PDL, day, skip=(4, 5, 6)) + day_lines(OTHER, day))
    run()
    block = blocks()["2025-10-26"].data
    assert block["missing"] == ["2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z", "2025-10-26T01:30:00Z"]
    assert block["missing_count"] == 3


def test_a_corrected_reading_re_emits_its_day_in_the_change_feed(metering):
    run()
    before = {day: (r.seq, r.data) for day, r in blocks().items()}
    since = store.current_seq()
    day = date(2025, 3, 31)
    lines = day_lines(PDL, day)
    lines[7] = lines[7].rsplit(";", 1)[0] + ";1,500"
    write_day(metering, day, lines + day_lines(OTHER, day))
    done = run()
    assert (done.updated, done.unchanged, done.created, done.deleted) == (1, 5, 0, 0)
    changed = list(Record.objects.filter(seq__gt=since))
    assert [(r.customer.reference, r.key) for r in changed] == [("C1", f"{PDL}|2025-03-31")]
    after = blocks()
    assert after["2025-03-31"].seq > before["2025-03-31"][0]
    assert after["2025-03-31"].data["readings"][7]["value"] == 1.5
    assert after["2025-03-30"].seq == before["2025-03-30"][0]


def test_a_day_no_longer_exported_becomes_a_tombstone(metering):
    run()
    day = date(2025, 3, 31)
    dated = Record.objects.get(key=f"{PDL}|2025-03-31").record_at
    write_day(metering, day, day_lines(OTHER, day))
    done = run()
    assert done.deleted == 1
    tombstone = Record.objects.get(key=f"{PDL}|2025-03-31")
    # It keeps its day's date: a client whose consent covers that day sees the deletion.
    assert tombstone.deleted and dated is not None and tombstone.record_at == dated


def test_a_day_whose_readings_come_twice_in_separate_places_is_refused_not_merged(metering):
    """The mapping declares order "block": a block that comes back later is a source fault
    the run shows (quarantined as a duplicate natural key), never a silent half day."""
    day = date(2025, 3, 31)
    lines = day_lines(PDL, day)
    write_day(metering, day, lines[:10] + day_lines(OTHER, day) + lines[10:])
    done = run()
    assert done.rejected == 1
    (rejected,) = RejectedRow.objects.all()
    assert "duplicate natural key" in rejected.reason and "day block 2025-03-31" in rejected.locator
    assert blocks()["2025-03-31"].data["missing_count"] == 38  # the first part, written as it was
