"""Green Button test tools: the offline ESPI validator (the NAESB schemas in ../shared/standards),
records of the day-block shape built here, and a feed read back into numbers."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

STANDARDS = Path(__file__).resolve().parents[2].parent / "shared" / "standards" / "greenbutton"
ATOM, ESPI = "{http://www.w3.org/2005/Atom}", "{http://naesb.org/espi}"
PARIS = ZoneInfo("Europe/Paris")
METER = "12345678901234"


@cache
def schema():
    """atom.xsd with espi-usage.xsd, the W3C xml.xsd mapped to xmlschema's own copy (no network)."""
    import xmlschema

    xml_xsd = os.path.join(os.path.dirname(xmlschema.__file__), "schemas", "XML", "xml.xsd")
    return xmlschema.XMLSchema(str(STANDARDS / "atom.xsd"), locations=[
        ("http://www.w3.org/XML/1998/namespace", xml_xsd),
        ("http://naesb.org/espi", str(STANDARDS / "espi-usage.xsd"))])


def assert_valid(xml: bytes | str) -> None:
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    errors = list(schema().iter_errors(text))
    assert not errors, "\n".join(str(error)[:600] for error in errors[:3])


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_record(day: date, *, meter: str = METER, missing: tuple[int, ...] = (), estimated: tuple[int, ...] = (),
               interval: int = 1800, base: float = 0.4) -> dict:
    """One meter's local day in the day-block shape: every half hour of the day's real length but
    the `missing` slots (indexes), values 0.4, 0.401, 0.402… kW."""
    start = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=PARIS).astimezone(UTC)
    duration = int((end - start).total_seconds())
    expected = duration // interval
    readings, absent = [], []
    for index in range(expected):
        at = start + timedelta(seconds=index * interval)
        if index in missing:
            absent.append(_utc(at))
            continue
        reading = {"start": _utc(at), "value": round(base + index / 1000, 3)}
        if index in estimated:
            reading["quality"] = "estimated"
        readings.append(reading)
    return {"delivery_point": meter, "day": day.isoformat(), "time_zone": "Europe/Paris", "start": _utc(start),
            "duration_seconds": duration, "interval_seconds": interval, "unit": "kW",
            "quantity": "average_power", "expected_readings": expected, "missing_count": len(absent),
            "missing": absent, "readings": readings}


@dataclass
class Block:
    href: str
    start: int
    duration: int
    readings: list[dict]  # {"start", "duration", "value", "quality"}


@dataclass
class Feed:
    root: ET.Element
    blocks: list[Block]
    reading_type: dict[str, int]
    time: dict[str, str]
    ids: list[str]


def read(xml: bytes | str) -> Feed:
    root = ET.fromstring(xml)
    blocks, reading_type, time, ids = [], {}, {}, []
    for entry in root.iter(f"{ATOM}entry"):
        ids.append(entry.findtext(f"{ATOM}id"))
        content = entry.find(f"{ATOM}content")
        href = next(link.get("href") for link in entry.iter(f"{ATOM}link") if link.get("rel") == "self")
        if (element := content.find(f"{ESPI}IntervalBlock")) is not None:
            interval = element.find(f"{ESPI}interval")
            readings = [{
                "start": int(r.findtext(f"{ESPI}timePeriod/{ESPI}start")),
                "duration": int(r.findtext(f"{ESPI}timePeriod/{ESPI}duration")),
                "value": int(r.findtext(f"{ESPI}value")),
                "quality": [int(q.text) for q in r.iter(f"{ESPI}quality")]}
                for r in element.findall(f"{ESPI}IntervalReading")]
            blocks.append(Block(href, int(interval.findtext(f"{ESPI}start")),
                                int(interval.findtext(f"{ESPI}duration")), readings))
        elif (element := content.find(f"{ESPI}ReadingType")) is not None:
            reading_type = {child.tag.removeprefix(ESPI): int(child.text) for child in element}
        elif (element := content.find(f"{ESPI}LocalTimeParameters")) is not None:
            time = {child.tag.removeprefix(ESPI): child.text for child in element}
    return Feed(root, blocks, reading_type, time, ids)


def kw(reading: dict, reading_type: dict[str, int]) -> Decimal:
    """A reading's energy (value × 10^p Wh) back to the average power over its interval, in kW."""
    assert reading_type["uom"] == 72  # Wh
    wh = Decimal(reading["value"]) * Decimal(10) ** reading_type["powerOfTenMultiplier"]
    return wh * 3600 / reading["duration"] / 1000


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
