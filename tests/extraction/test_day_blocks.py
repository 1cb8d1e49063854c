"""Interval data folded into day blocks by the mapping's "group" section (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from restitution.catalogue import BY_SLUG
from restitution.mapping import MappingContext, MappingError, compile_mapping
from restitution.validation import record_validator

PARIS = ZoneInfo("Europe/Paris")
CURVE = BY_SLUG["energy-load-curve"].schema
GROUP = {"by": ["delivery_point"], "start": "start", "value": "value", "time_zone": "Europe/Paris",
         "interval_seconds": 1800, "unit": "kW", "quantity": "average_power", "order": "block"}
LOCAL = {"from": "when", "convert": "datetime_local", "format": "%d/%m/%Y %H:%M", "tz": "Europe/Paris"}
FIELDS = {"delivery_point": {"from": "pdl"}, "start": LOCAL,
          "value": {"from": "kw", "convert": "decimal", "decimal_comma": True, "scale": 3}}
PDL = "01234567890123"


def mapping(**group):
    return compile_mapping({"customer": "pdl", "fields": FIELDS, "group": {**GROUP, **group}}, CURVE)


def local_rows(day: date, *, pdl: str = PDL, value: str = "0,500") -> list[dict[str, str]]:
    """What a naive-local-time export writes for one day: each wall-clock half hour, in order
    (the repeated hour twice in October, the skipped hour absent in March)."""
    first = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    rows, moment = [], first
    while moment.astimezone(PARIS).date() == day:
        rows.append({"pdl": pdl, "when": moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"), "kw": value})
        moment += timedelta(minutes=30)
    return rows


def fold(rows, *, compiled=None, customer_id=1):
    """Map and fold rows as the pipeline does; (records, rejections)."""
    compiled = compiled or mapping()
    blocks, ctx = compiled.blocks(), MappingContext(customer_key=PDL)
    records, rejected = [], []
    for number, row in enumerate(rows, start=1):
        locator = f"file.csv:{number}"
        try:
            data, _ = compiled.apply(row, ctx)
        except MappingError as exc:
            records += blocks.arriving(customer_id, exc.partial)
            blocks.touch(customer_id, exc.partial, locator)
            rejected.append((locator, str(exc)))
            continue
        records += blocks.arriving(customer_id, data)
        problem = blocks.add(customer_id, data, locator)
        if problem:
            rejected.append((locator, problem))
    records += blocks.drain()
    return [r.data for r in records], rejected


@pytest.mark.parametrize(("day", "count", "start", "duration"), [
    (date(2025, 3, 30), 46, "2025-03-29T23:00:00Z", 82800),
    (date(2025, 10, 26), 50, "2025-10-25T22:00:00Z", 90000),
    (date(2025, 1, 15), 48, "2025-01-14T23:00:00Z", 86400),
    (date(2025, 7, 1), 48, "2025-06-30T22:00:00Z", 86400),
])
def test_a_local_day_is_one_block_exact_on_clock_change_days(day, count, start, duration):
    (block,), rejected = fold(local_rows(day))
    assert rejected == []
    assert block["day"] == day.isoformat() and block["start"] == start
    assert block["duration_seconds"] == duration and block["expected_readings"] == count
    assert block["missing_count"] == 0 and block["missing"] == []
    starts = [r["start"] for r in block["readings"]]
    assert len(starts) == count == len(set(starts)) and starts == sorted(starts)
    assert starts[0] == start
    assert record_validator(CURVE)(block) is None


def test_the_repeated_october_hour_gives_two_distinct_readings_in_file_order():
    rows = local_rows(date(2025, 10, 26))
    assert [r["when"][-5:] for r in rows[4:8]] == ["02:00", "02:30", "02:00", "02:30"]
    rows[4]["kw"], rows[6]["kw"] = "1,000", "2,000"  # summer-time 02:00, then winter-time 02:00
    (block,), _ = fold(rows)
    values = {r["start"]: r["value"] for r in block["readings"]}
    assert values["2025-10-26T00:00:00Z"] == 1.0  # 02:00 CEST
    assert values["2025-10-26T01:00:00Z"] == 2.0  # 02:00 CET


def test_a_third_occurrence_of_the_repeated_hour_is_quarantined_and_the_day_still_written():
    rows = local_rows(date(2025, 10, 26))
    rows.insert(8, dict(rows[4]))  # a third 02:00
    (block,), rejected = fold(rows)
    assert [locator for locator, _ in rejected] == ["file.csv:9"]
    assert "appears more than twice" in rejected[0][1]
    assert block["missing_count"] == 0 and len(block["readings"]) == 50


def test_gaps_are_listed_never_silent():
    rows = local_rows(date(2025, 1, 15))
    del rows[20:23]  # 10:00, 10:30 and 11:00 local
    (block,), rejected = fold(rows)
    assert rejected == []
    assert block["missing_count"] == 3 and len(block["readings"]) == 45
    assert block["missing"] == ["2025-01-15T09:00:00Z", "2025-01-15T09:30:00Z", "2025-01-15T10:00:00Z"]
    assert record_validator(CURVE)(block) is None


def test_a_bad_row_is_quarantined_alone_and_its_reading_counted_missing():
    rows = local_rows(date(2025, 1, 15))
    rows[10]["kw"] = "0.5"  # a decimal point where the export writes a comma
    (block,), rejected = fold(rows)
    assert rejected == [("file.csv:11", "value: expected a decimal comma, got '0.5'")]
    assert block["missing"] == ["2025-01-15T04:00:00Z"] and block["missing_count"] == 1
    assert len(block["readings"]) == 47


def test_duplicate_readings_keep_the_first_and_quarantine_the_others():
    rows = local_rows(date(2025, 1, 15))
    rows.insert(3, {**rows[2], "kw": "9,999"})
    (block,), rejected = fold(rows)
    assert rejected == [("file.csv:4", "duplicate reading for 2025-01-15T00:00:00Z (first at file.csv:3)")]
    assert block["readings"][2] == {"start": "2025-01-15T00:00:00Z", "value": 0.5}
    assert block["missing_count"] == 0


def test_a_reading_off_the_interval_grid_is_quarantined():
    rows = local_rows(date(2025, 1, 15))
    rows.append({"pdl": PDL, "when": "15/01/2025 10:15", "kw": "0,100"})
    (block,), rejected = fold(rows)
    assert len(rejected) == 1 and "not on the 1800 s grid" in rejected[0][1]
    assert len(block["readings"]) == 48


def test_quality_appears_only_when_the_source_gives_one():
    fields = {**FIELDS, "quality": {"from": "q", "convert": "code", "nullable": True,
                                    "codes": {"R": "measured", "E": "estimated"}}}
    compiled = compile_mapping({"customer": "pdl", "fields": fields, "group": {**GROUP, "quality": "quality"}},
                               CURVE)
    rows = local_rows(date(2025, 1, 15))
    for number, row in enumerate(rows):
        row["q"] = "E" if number == 1 else ("R" if number == 2 else "")
    (block,), _ = fold(rows, compiled=compiled)
    assert block["readings"][:3] == [{"start": "2025-01-14T23:00:00Z", "value": 0.5},
                                     {"start": "2025-01-14T23:30:00Z", "value": 0.5, "quality": "estimated"},
                                     {"start": "2025-01-15T00:00:00Z", "value": 0.5, "quality": "measured"}]
    assert record_validator(CURVE)(block) is None


def test_block_order_emits_each_block_as_soon_as_the_next_one_starts():
    compiled = mapping()
    blocks, ctx = compiled.blocks(), MappingContext(customer_key=PDL)
    emitted = []
    for row in local_rows(date(2025, 1, 15)) + local_rows(date(2025, 1, 16)):
        data, _ = compiled.apply(row, ctx)
        emitted += blocks.arriving(1, data)
        assert blocks.add(1, data, "x") is None
    assert [b.data["day"] for b in emitted] == ["2025-01-15"]  # the 16th is still open
    assert [b.data["day"] for b in blocks.drain()] == ["2025-01-16"]
    assert blocks.drain() == []


def test_without_a_declared_order_blocks_wait_for_the_end_of_the_read():
    rows = local_rows(date(2025, 1, 16)) + local_rows(date(2025, 1, 15), pdl="99999999999999")
    rows += local_rows(date(2025, 1, 15))
    records, rejected = fold(rows, compiled=mapping(order="none"))
    assert rejected == []
    assert sorted((r["delivery_point"], r["day"]) for r in records) == [
        (PDL, "2025-01-15"), (PDL, "2025-01-16"), ("99999999999999", "2025-01-15")]


def test_utc_sources_group_too():
    fields = {"delivery_point": {"from": "pdl"}, "start": {"from": "at", "convert": "datetime_utc"},
              "value": {"from": "kw", "convert": "decimal"}}
    compiled = compile_mapping({"customer": "pdl", "fields": fields, "group": GROUP}, CURVE)
    first = datetime(2025, 3, 29, 23, tzinfo=UTC)
    rows = [{"pdl": PDL, "at": (first + timedelta(minutes=30 * n)).isoformat(), "kw": "1.5"} for n in range(46)]
    rows.append({"pdl": PDL, "at": "2025-03-30T22:00:00+00:00", "kw": "1"})  # local 31 March, 00:00
    records, _ = fold(rows, compiled=compiled)
    assert [(r["day"], len(r["readings"]), r["missing_count"]) for r in records] == [
        ("2025-03-30", 46, 0), ("2025-03-31", 1, 47)]


@pytest.mark.parametrize(("group", "message"), [
    ({"interval_seconds": 1000}, "dividing one hour"),
    ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
    ({"order": "random"}, "group.order"),
    ({"by": ["pdl_unmapped"]}, "not a mapped field"),
    ({"value": "power"}, "not a mapped field"),
    ({"colour": "blue"}, "unknown option 'colour'"),
])
def test_a_bad_group_section_is_refused_with_its_reason(group, message):
    with pytest.raises(ValueError, match=message):
        mapping(**group)


def test_a_group_start_must_be_a_timestamp():
    fields = {**FIELDS, "start": {"from": "when"}}
    with pytest.raises(ValueError, match="datetime_local or datetime_utc"):
        compile_mapping({"customer": "pdl", "fields": fields, "group": GROUP}, CURVE)


def test_a_group_needs_a_dataset_made_for_day_blocks():
    with pytest.raises(ValueError, match="no field 'readings'"):
        compile_mapping({"customer": "pdl", "fields": FIELDS, "group": GROUP},
                        BY_SLUG["energy-daily-consumption"].schema)
