"""restitution/greenbutton.py: feeds valid against the NAESB ESPI schema (offline), one block per
local day with the DST days exact, values that read back to the records, stable identifiers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from restitution import greenbutton
from tests.greenbutton.espi import METER, STANDARDS, assert_valid, day_record, epoch, kw, read, schema

CONTEXT = greenbutton.FeedContext(holder="Demo data holder", subject="pairwise-subject-of-alice",
                                  time_zone="Europe/Paris", updated=datetime(2025, 11, 1, 8, 0, tzinfo=UTC))
SPRING, FALL, ORDINARY = date(2025, 3, 30), date(2025, 10, 26), date(2025, 10, 27)


def _feed(kind: str, records: list[dict], context: greenbutton.FeedContext = CONTEXT) -> bytes:
    return b"".join(greenbutton.feed_bytes(kind, records, context))


def test_the_validator_accepts_the_green_button_alliance_reference_feed():
    assert schema().is_valid(str(STANDARDS / "gba-test-usage-data.xml"))


def test_the_validator_refuses_what_the_schema_forbids():
    """The ESPI content is checked, not skipped: a value that is not an integer, readings out of
    their schema order."""
    good = _feed(greenbutton.ESPI_DAY_BLOCKS, [day_record(ORDINARY)]).decode()
    assert_valid(good)
    not_an_integer = good.replace("<value>", "<value>1.5", 1)
    assert not schema().is_valid(not_an_integer)
    period = good.split("<timePeriod>", 1)[1].split("</timePeriod>", 1)[0]
    swapped = good.replace(f"<timePeriod>{period}</timePeriod>", "", 1).replace(
        "</IntervalReading>", f"<timePeriod>{period}</timePeriod></IntervalReading>", 1)
    assert not schema().is_valid(swapped)


def test_one_block_per_local_day_with_the_dst_days_exact():
    records = [day_record(SPRING), day_record(FALL), day_record(ORDINARY)]
    xml = _feed(greenbutton.ESPI_DAY_BLOCKS, records)
    assert_valid(xml)
    feed = read(xml)
    assert [(b.duration, len(b.readings)) for b in feed.blocks] == [(82800, 46), (90000, 50), (86400, 48)]
    for record, block in zip(records, feed.blocks, strict=True):
        assert block.start == epoch(record["start"])
        assert sum(r["duration"] for r in block.readings) == block.duration
        assert [r["start"] for r in block.readings] == [epoch(r["start"]) for r in record["readings"]]
        assert all(r["duration"] == 1800 for r in block.readings)
        assert block.href.endswith(f"/MeterReading/01/IntervalBlock/{record['day'].replace('-', '')}")
    # Spring forward: Paris midnight is 23:00Z the day before; the block ends at the next midnight, 22:00Z.
    assert feed.blocks[0].start == epoch("2025-03-29T23:00:00Z")
    assert feed.blocks[0].start + feed.blocks[0].duration == epoch("2025-03-30T22:00:00Z")
    assert feed.blocks[1].start == epoch("2025-10-25T22:00:00Z")


def test_missing_readings_are_absent_and_the_rest_keep_their_own_times():
    record = day_record(ORDINARY, missing=(6, 7, 30), estimated=(8,))
    assert record["missing_count"] == 3
    xml = _feed(greenbutton.ESPI_DAY_BLOCKS, [record])
    assert_valid(xml)
    block = read(xml).blocks[0]
    assert block.duration == 86400  # the day's length, whatever is missing
    assert len(block.readings) == 45
    starts = {r["start"] for r in block.readings}
    assert not starts & {epoch(moment) for moment in record["missing"]}
    assert [r["quality"] for r in block.readings if r["quality"]] == [[8]]  # estimated, and only it
    assert block.readings[6]["start"] == epoch(record["readings"][6]["start"]) == block.start + 8 * 1800


def test_values_read_back_equal_the_records():
    records = [day_record(SPRING, base=0.412), day_record(FALL, base=7.5), day_record(ORDINARY, missing=(1,))]
    records[2]["readings"][0]["value"] = 0.398
    records[2]["readings"][1]["value"] = 12.34567
    feed = read(_feed(greenbutton.ESPI_DAY_BLOCKS, records))
    assert feed.reading_type["uom"] == 72 and feed.reading_type["powerOfTenMultiplier"] == -3
    assert feed.reading_type["intervalLength"] == 1800 and feed.reading_type["kind"] == 12
    for record, block in zip(records, feed.blocks, strict=True):
        assert [kw(r, feed.reading_type) for r in block.readings] == [
            Decimal(str(r["value"])) for r in record["readings"]]
    assert feed.blocks[2].readings[0]["value"] == 199000  # 0.398 kW for half an hour = 199 Wh


def test_local_time_parameters_of_paris_and_of_the_reference_feed():
    feed = read(_feed(greenbutton.ESPI_DAY_BLOCKS, [day_record(ORDINARY)]))
    # Last Sunday of March at 02:00, last Sunday of October at 03:00 (local time), one hour.
    assert feed.time == {"dstEndRule": "AE0E3000", "dstOffset": "3600", "dstStartRule": "3E0E2000",
                         "tzOffset": "3600"}
    # The same encoding gives the Green Button Alliance's North American rules.
    new_york = greenbutton.time_parameters("America/New_York", 2012)
    assert (new_york.dst_start_rule, new_york.dst_end_rule, new_york.tz_offset, new_york.dst_offset) == (
        "360E2000", "B40E2000", -18000, 3600)
    tokyo = greenbutton.time_parameters("Asia/Tokyo", 2025)
    assert (tokyo.dst_start_rule, tokyo.dst_offset, tokyo.tz_offset) == ("FFFFFFFF", 0, 32400)


def test_identifiers_are_stable_and_say_nothing_about_the_customer():
    records = [day_record(FALL), day_record(ORDINARY), day_record(ORDINARY, meter="98765432109876")]
    records.sort(key=lambda r: (r["delivery_point"], r["day"]))
    first = read(_feed(greenbutton.ESPI_DAY_BLOCKS, records))
    later = read(_feed(greenbutton.ESPI_DAY_BLOCKS, records, greenbutton.FeedContext(
        **{**CONTEXT.__dict__, "updated": datetime(2026, 1, 1, tzinfo=UTC)})))
    other = read(_feed(greenbutton.ESPI_DAY_BLOCKS, records, greenbutton.FeedContext(
        **{**CONTEXT.__dict__, "subject": "pairwise-subject-for-another-client"})))
    assert first.ids == later.ids
    assert len(set(first.ids)) == len(first.ids) == 1 + 2 * 3 + 3  # time, 2 meters × 3 resources, 3 blocks
    assert all(i.startswith("urn:uuid:") for i in first.ids)
    assert not set(first.ids) & set(other.ids)
    xml = _feed(greenbutton.ESPI_DAY_BLOCKS, records).decode()
    assert "pairwise-subject-of-alice" not in xml
    hrefs = [link.get("href") for link in first.root.iter("{http://www.w3.org/2005/Atom}link")]
    assert all(h.startswith("/espi/1_1/resource/") for h in hrefs)
    assert any("/Subscription/" in h and "/UsagePoint/" in h and h.endswith("/MeterReading/01") for h in hrefs)


def test_daily_consumption_is_a_second_meter_reading_of_whole_local_days():
    days = [date(2025, 3, 29), SPRING, date(2025, 3, 31), date(2025, 4, 1)]
    records = [{"delivery_point": METER, "day": d.isoformat(), "energy_kwh": 11.25 + i, "max_power_kva": None}
               for i, d in enumerate(days)]
    xml = _feed(greenbutton.ESPI_DAILY_ENERGY, records)
    assert_valid(xml)
    feed = read(xml)
    assert feed.reading_type["intervalLength"] == 86400 and feed.reading_type["timeAttribute"] == 11
    march, april = feed.blocks
    assert march.href.endswith("/MeterReading/02/IntervalBlock/202503")
    assert march.start == epoch("2025-02-28T23:00:00Z") and march.duration == 31 * 86400 - 3600
    assert [r["duration"] for r in march.readings] == [86400, 82800, 86400]
    assert [r["start"] for r in march.readings[:2]] == [epoch("2025-03-28T23:00:00Z"), epoch("2025-03-29T23:00:00Z")]
    values = [Decimal(r["value"]) * Decimal(10) ** feed.reading_type["powerOfTenMultiplier"] / 1000
              for r in march.readings + april.readings]
    assert values == [Decimal(str(r["energy_kwh"])) for r in records]


def test_an_empty_feed_is_still_valid():
    xml = _feed(greenbutton.ESPI_DAY_BLOCKS, [])
    assert_valid(xml)
    assert read(xml).blocks == [] and read(xml).time["tzOffset"] == "3600"


@pytest.mark.parametrize("change", [{"unit": "kVA"}, {"quantity": "voltage"}, {"interval_seconds": 0},
                                    {"start": "2025-10-27"}])
def test_records_that_cannot_be_written_are_refused_clearly(change):
    record = {**day_record(ORDINARY), **change}
    with pytest.raises(greenbutton.EspiError):
        _feed(greenbutton.ESPI_DAY_BLOCKS, [record])


def test_records_out_of_order_are_refused_rather_than_written_twice():
    records = [{"delivery_point": METER, "day": d, "energy_kwh": 1.0, "max_power_kva": None}
               for d in ("2025-03-01", "2025-04-01", "2025-03-02")]
    with pytest.raises(greenbutton.EspiError):
        _feed(greenbutton.ESPI_DAILY_ENERGY, records)


def test_each_resource_has_one_self_link_and_the_meter_reading_points_to_its_reading_type():
    records = [day_record(ORDINARY), day_record(ORDINARY, meter="98765432109876")]
    feed = read(_feed(greenbutton.ESPI_DAY_BLOCKS, records))
    atom = "{http://www.w3.org/2005/Atom}"
    selves = {}
    for entry in feed.root.iter(f"{atom}entry"):
        self_link = next(link.get("href") for link in entry.iter(f"{atom}link") if link.get("rel") == "self")
        assert self_link not in selves, self_link  # no two entries share a resource URL
        selves[self_link] = entry
    meter_readings = [href for href in selves if href.endswith("/MeterReading/01")]
    assert len(meter_readings) == 2
    for href in meter_readings:
        related = [link.get("href") for link in selves[href].iter(f"{atom}link") if link.get("rel") == "related"]
        assert f"{href}/IntervalBlock" in related
        reading_type = next(r for r in related if "/ReadingType/" in r)
        assert reading_type in selves
