"""Green Button "Download My Data": energy records as an ESPI (NAESB REQ.21) Atom feed.

Pure: records in, XML text out (streamed, one entry at a time); no database, no HTTP. The API
(`format=espi`) and the archives (`<slug>.espi.xml`) feed it the records of one dataset.

Two shapes of records are understood, named by the catalogue's `espi` flag:

- `day-blocks` (`ESPI_DAY_BLOCKS`): one record per meter and local day (`delivery_point`, `day`,
  `time_zone`, `start`, `duration_seconds`, `interval_seconds`, `unit`, `quantity`, `readings`
  [{`start`, `value`, `quality`?}], `missing` …). Each record becomes ONE IntervalBlock whose
  interval is the day's real length (82 800 s on a spring-forward day, 90 000 s on a fall-back
  day), with one IntervalReading per present reading; a missing reading is simply absent.
- `daily-energy` (`ESPI_DAILY_ENERGY`): one record per meter and local day (`delivery_point`,
  `day`, `energy_kwh`). Each record becomes one IntervalReading spanning the local day (its real
  length); the readings of one meter and local month form one IntervalBlock.

Values are energy in Wh × 10^-3 (uom 72, powerOfTenMultiplier -3): average power over an
interval is converted to the energy of that interval (kW × seconds / 3.6 = mWh), exactly for
any value with up to five decimals of kW over intervals that are multiples of 9 s (15 and
30 minutes, one hour), rounded half-even to the mWh otherwise. Energy is what Green Button
readers add up; the milli-Wh multiplier keeps the holder's precision.

Identifiers are stable: every Atom id is a name-based UUID (RFC 9562 v5) of the holder, the
customer's pairwise subject, the meter and the kind of resource, and every link follows the
ESPI resource pattern (`…/Subscription/{id}/UsagePoint/{id}/MeterReading/{id}/IntervalBlock/{id}`).
Nothing else about the customer is written: no name, no address, only what the records hold.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

ESPI_DAY_BLOCKS = "day-blocks"
ESPI_DAILY_ENERGY = "daily-energy"
KINDS = (ESPI_DAY_BLOCKS, ESPI_DAILY_ENERGY)

MEDIA_TYPE = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
RESOURCE_ROOT = "/espi/1_1/resource"

#: Values are in Wh × 10^POWER_OF_TEN (milli-watt-hours).
UOM_WH = 72
POWER_OF_TEN = -3
_PER_UNIT = Decimal(10) ** -POWER_OF_TEN  # integer units per Wh

#: The records' `quality` words → ESPI QualityOfReading codes. A word not listed is 16 (other).
QUALITY_CODES = {
    "valid": 0, "measured": 0, "real": 0,
    "edited": 7, "corrected": 7,
    "estimated": 8,
    "interpolated": 9,
    "questionable": 10,
    "derived": 11,
    "projected": 12,
    "raw": 14,
    "validated": 17,
    "verified": 18,
}
QUALITY_OTHER = 16

#: One-unit factors to Wh (energy) or W (average power) of the units a record may name.
_ENERGY_UNITS = {"Wh": Decimal(1), "kWh": Decimal(1000), "MWh": Decimal(1_000_000)}
_POWER_UNITS = {"W": Decimal(1), "kW": Decimal(1000), "MW": Decimal(1_000_000)}

#: ESPI ReadingType codes used here.
_ENERGY_READING = {"accumulationBehaviour": 4, "commodity": 1, "dataQualifier": 12, "flowDirection": 1,
                   "kind": 12, "phase": 769}
_RULE_DISABLED = "FFFFFFFF"


class EspiError(ValueError):
    """Records that cannot be written as ESPI (an unknown unit, a malformed reading)."""


@dataclass(frozen=True)
class FeedContext:
    """Who the feed is about and when it is made.

    `subject` is the customer's pairwise identifier for the audience of the feed (a client, or
    the customer's own archive): it only enters the identifiers, hashed.
    """

    holder: str
    subject: str
    time_zone: str
    updated: datetime
    title: str = "Green Button Download My Data"


# --- Identifiers and links ------------------------------------------------------------------------

_NAMESPACE = uuid.UUID("6f1c2f0e-2b1e-5d0a-9d43-6a1f3c0b8e21")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _short_id(*parts: str) -> str:
    """A 16-hex-digit path segment derived from its parts (stable, reveals none of them)."""
    return _digest(*parts)[:16].upper()


def atom_id(context: FeedContext, *parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, _digest(context.holder, context.subject, *parts))}"


@dataclass(frozen=True)
class _Paths:
    subscription: str
    usage_point: str

    def usage_points(self) -> str:
        return f"{RESOURCE_ROOT}/Subscription/{self.subscription}/UsagePoint"

    def usage_point_self(self) -> str:
        return f"{self.usage_points()}/{self.usage_point}"

    def meter_readings(self) -> str:
        return f"{self.usage_point_self()}/MeterReading"

    def meter_reading(self, reading: str) -> str:
        return f"{self.meter_readings()}/{reading}"

    def interval_blocks(self, reading: str) -> str:
        return f"{self.meter_reading(reading)}/IntervalBlock"


def _paths(context: FeedContext, meter: str) -> _Paths:
    return _Paths(subscription=_short_id(context.holder, context.subject),
                  usage_point=_short_id(context.holder, context.subject, meter))


# --- Time ----------------------------------------------------------------------------------------

def epoch(moment: str | datetime) -> int:
    """Seconds since 1970-01-01T00:00:00Z of an RFC 3339 text or an aware datetime."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise EspiError(f"{moment!r} has no offset")
    return int(moment.timestamp())


def _atom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[int, int]:
    """(start in epoch seconds, real length in seconds) of a local day: 82 800 or 90 000 s on the
    days the clocks change."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return epoch(start), epoch(end) - epoch(start)


@dataclass(frozen=True)
class TimeParameters:
    """ESPI LocalTimeParameters of a time zone (for one year's rules)."""

    tz_offset: int  # standard time's offset from UTC, seconds
    dst_offset: int  # what daylight saving time adds, seconds
    dst_start_rule: str  # DstRuleType, 8 hex digits
    dst_end_rule: str


def _rule(local: datetime) -> str:
    """A DstRuleType for a change at this local wall time (before the change): month, the
    weekday's occurrence (last, or first to fourth) and the time of day.

    Bits 0-11 seconds, 12-16 hours, 17-19 weekday (Monday = 1), 20-24 day of month (0: n/a),
    25-27 operator (2-5: first to fourth such weekday of the month, 7: last), 28-31 month.
    """
    last = (local + timedelta(days=7)).month != local.month
    operator = 7 if last else 1 + (local.day + 6) // 7
    seconds = local.minute * 60 + local.second
    value = (local.month << 28) | (operator << 25) | (local.isoweekday() << 17) | (local.hour << 12) | seconds
    return f"{value:08X}"


@lru_cache(maxsize=64)
def time_parameters(time_zone: str, year: int) -> TimeParameters:
    """The zone's standard offset, its DST offset and the rules of its changes in `year`
    (Europe/Paris: +3600, +3600, last Sunday of March at 02:00, last Sunday of October at 03:00);
    a zone without DST that year gets dstOffset 0 and rules FFFFFFFF (disabled)."""
    zone = ZoneInfo(time_zone)
    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=30)
    offset = moment.astimezone(zone).utcoffset() or timedelta(0)
    changes: list[tuple[datetime, timedelta, timedelta]] = []  # (UTC moment, offset before, after)
    while moment < end:
        following = moment + step
        next_offset = following.astimezone(zone).utcoffset() or timedelta(0)
        if next_offset != offset:
            probe = moment
            while probe.astimezone(zone).utcoffset() == offset:
                probe += timedelta(minutes=1)
            changes.append((probe, offset, next_offset))
            offset = next_offset
        moment = following
    if len(changes) != 2:
        standard = offset - (moment.astimezone(zone).dst() or timedelta(0))
        return TimeParameters(int(standard.total_seconds()), 0, _RULE_DISABLED, _RULE_DISABLED)
    start, finish = sorted(changes, key=lambda change: change[2] < change[1])  # the forward change first
    standard = start[1]
    return TimeParameters(
        tz_offset=int(standard.total_seconds()), dst_offset=int((start[2] - start[1]).total_seconds()),
        # Each rule names the local wall time before its change.
        dst_start_rule=_rule((start[0] + start[1]).replace(tzinfo=None)),
        dst_end_rule=_rule((finish[0] + finish[1]).replace(tzinfo=None)))


# --- Values --------------------------------------------------------------------------------------

def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise EspiError(f"{what}: {value!r} is not a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise EspiError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise EspiError(f"{what}: {value!r} is not a number")
    return number


def _units(number: Decimal) -> int:
    return int(number.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def energy_units(value: Any, *, unit: str, quantity: str, seconds: int) -> int:
    """A reading as an integer in Wh × 10^POWER_OF_TEN: energy as is, average power over
    `seconds` as the energy of that interval."""
    number = _decimal(value, "value")
    if quantity == "energy" and unit in _ENERGY_UNITS:
        wh = number * _ENERGY_UNITS[unit]
    elif quantity == "average_power" and unit in _POWER_UNITS:
        wh = number * _POWER_UNITS[unit] * seconds / Decimal(3600)
    else:
        raise EspiError(f"cannot write {quantity!r} in {unit!r} as energy")
    return _units(wh * _PER_UNIT)


def quality_code(word: str) -> int:
    return QUALITY_CODES.get(str(word).lower(), QUALITY_OTHER)


# --- Writing -------------------------------------------------------------------------------------

def _link(rel: str, href: str) -> str:
    return f"<link rel={quoteattr(rel)} href={quoteattr(href)}/>"


def _entry(context: FeedContext, *, entry_id: str, links: list[tuple[str, str]], title: str, content: str) -> str:
    stamp = _atom_time(context.updated)
    return ("<entry>"
            f"<id>{entry_id}</id>"
            + "".join(_link(rel, href) for rel, href in links)
            + f"<title>{escape(title)}</title>"
            f"<content>{content}</content>"
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            "</entry>\n")


def _espi(element: str, body: str) -> str:
    return f'<{element} xmlns="{ESPI_NS}">{body}</{element}>'


def _reading_type_body(*, interval: int, time_attribute: int = 0) -> str:
    codes = _ENERGY_READING
    return (f"<accumulationBehaviour>{codes['accumulationBehaviour']}</accumulationBehaviour>"
            f"<commodity>{codes['commodity']}</commodity>"
            f"<dataQualifier>{codes['dataQualifier']}</dataQualifier>"
            f"<flowDirection>{codes['flowDirection']}</flowDirection>"
            f"<intervalLength>{interval}</intervalLength>"
            f"<kind>{codes['kind']}</kind>"
            f"<phase>{codes['phase']}</phase>"
            f"<powerOfTenMultiplier>{POWER_OF_TEN}</powerOfTenMultiplier>"
            f"<timeAttribute>{time_attribute}</timeAttribute>"
            f"<uom>{UOM_WH}</uom>")


def _interval(start: int, duration: int) -> str:
    return f"<duration>{duration}</duration><start>{start}</start>"


def _reading(start: int, duration: int, value: int, quality: int | None) -> str:
    quality_xml = f"<ReadingQuality><quality>{quality}</quality></ReadingQuality>" if quality is not None else ""
    return (f"<IntervalReading>{quality_xml}<timePeriod>{_interval(start, duration)}</timePeriod>"
            f"<value>{value}</value></IntervalReading>")


@dataclass(frozen=True)
class _MeterReadingKind:
    reading_id: str  # the MeterReading's path segment
    title: str
    reading_type_title: str


_METER_READINGS = {
    ESPI_DAY_BLOCKS: _MeterReadingKind("01", "Electricity consumption per interval",
                                       "Energy per interval (Wh x 10^-3)"),
    ESPI_DAILY_ENERGY: _MeterReadingKind("02", "Daily electricity consumption", "Energy per day (Wh x 10^-3)"),
}


class _Writer:
    def __init__(self, kind: str, context: FeedContext) -> None:
        if kind not in KINDS:
            raise EspiError(f"unknown ESPI kind {kind!r}")
        self.kind = kind
        self.context = context
        self.meters: set[str] = set()
        self.zones: set[str] = set()
        self.blocks: set[tuple[str, str]] = set()

    def head(self) -> str:
        context = self.context
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<feed xmlns="{ATOM_NS}">'
                f"<id>{atom_id(context, 'feed', self.kind)}</id>"
                f"<title>{escape(context.title)}</title>"
                f"<updated>{_atom_time(context.updated)}</updated>"
                + _link("self", f"{RESOURCE_ROOT}/Subscription/{_short_id(context.holder, context.subject)}")
                + "\n")

    @staticmethod
    def tail() -> str:
        return "</feed>\n"

    def time_parameters(self, time_zone: str, year: int) -> str:
        if time_zone in self.zones:
            return ""
        self.zones.add(time_zone)
        try:
            rules = time_parameters(time_zone, year)
        except (KeyError, ValueError) as error:
            raise EspiError(f"unknown time zone {time_zone!r}") from error
        body = (f"<dstEndRule>{rules.dst_end_rule}</dstEndRule><dstOffset>{rules.dst_offset}</dstOffset>"
                f"<dstStartRule>{rules.dst_start_rule}</dstStartRule><tzOffset>{rules.tz_offset}</tzOffset>")
        return _entry(self.context, entry_id=atom_id(self.context, "time", time_zone),
                      links=[("self", self._time_path(time_zone)), ("up", f"{RESOURCE_ROOT}/LocalTimeParameters")],
                      title=f"Local time: {time_zone}", content=_espi("LocalTimeParameters", body))

    def _time_path(self, time_zone: str) -> str:
        return f"{RESOURCE_ROOT}/LocalTimeParameters/{_short_id(self.context.holder, time_zone)}"

    def _reading_type_path(self, meter: str) -> str:
        """One ReadingType per meter and kind, like its entry's id."""
        context = self.context
        return f"{RESOURCE_ROOT}/ReadingType/{_short_id(context.holder, context.subject, meter, self.kind)}"

    def meter(self, meter: str, time_zone: str, interval: int) -> str:
        """The UsagePoint, MeterReading and ReadingType of a meter, the first time it is seen."""
        if meter in self.meters:
            return ""
        self.meters.add(meter)
        context = self.context
        paths = _paths(context, meter)
        kind = _METER_READINGS[self.kind]
        reading_type_path = self._reading_type_path(meter)
        usage_point = _entry(
            context, entry_id=atom_id(context, "usage-point", meter),
            links=[("self", paths.usage_point_self()), ("up", paths.usage_points()),
                   ("related", paths.meter_readings()), ("related", self._time_path(time_zone))],
            title=f"Delivery point {meter}",
            content=_espi("UsagePoint", "<ServiceCategory><kind>0</kind></ServiceCategory>"))
        meter_reading = _entry(
            context, entry_id=atom_id(context, "meter-reading", meter, self.kind),
            links=[("self", paths.meter_reading(kind.reading_id)), ("up", paths.meter_readings()),
                   ("related", paths.interval_blocks(kind.reading_id)), ("related", reading_type_path)],
            title=kind.title, content=_espi("MeterReading", ""))
        reading_type = _entry(
            context, entry_id=atom_id(context, "reading-type", meter, self.kind),
            links=[("self", reading_type_path), ("up", f"{RESOURCE_ROOT}/ReadingType")],
            title=kind.reading_type_title,
            content=_espi("ReadingType", _reading_type_body(
                interval=interval, time_attribute=11 if self.kind == ESPI_DAILY_ENERGY else 0)))
        return usage_point + meter_reading + reading_type

    def block(self, meter: str, block_id: str, start: int, duration: int, readings: str) -> str:
        if (meter, block_id) in self.blocks:
            raise EspiError(f"two blocks {block_id} for one meter: records must come sorted by meter and day")
        self.blocks.add((meter, block_id))
        paths = _paths(self.context, meter)
        reading_id = _METER_READINGS[self.kind].reading_id
        return _entry(
            self.context, entry_id=atom_id(self.context, "interval-block", meter, self.kind, block_id),
            links=[("self", f"{paths.interval_blocks(reading_id)}/{block_id}"),
                   ("up", paths.interval_blocks(reading_id))],
            title="", content=_espi("IntervalBlock", f"<interval>{_interval(start, duration)}</interval>{readings}"))


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise EspiError(f"a record without {name!r}")
    return value


def _int(record: dict[str, Any], name: str) -> int:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise EspiError(f"{name}: {value!r} is not a positive integer")
    return value


def day_block(record: dict[str, Any]) -> tuple[int, int, list[tuple[int, int, int, int | None]]]:
    """A day record → (block start, block duration, [(start, duration, value, quality code)]),
    every reading inside the block."""
    start = epoch(_text(record, "start"))
    duration = _int(record, "duration_seconds")
    interval = _int(record, "interval_seconds")
    unit, quantity = _text(record, "unit"), _text(record, "quantity")
    readings = []
    for reading in record.get("readings") or []:
        at = epoch(_text(reading, "start"))
        if not start <= at <= start + duration - interval:
            raise EspiError(f"reading {reading.get('start')!r} outside its day {record.get('day')!r}")
        quality = reading.get("quality")
        readings.append((at, interval, energy_units(reading.get("value"), unit=unit, quantity=quantity,
                                                    seconds=interval),
                         None if quality in (None, "") else quality_code(quality)))
    return start, duration, readings


def _day_blocks(writer: _Writer, records: Iterable[dict[str, Any]], context: FeedContext) -> Iterator[str]:
    for record in records:
        meter = _text(record, "delivery_point")
        day = _text(record, "day")
        time_zone = record.get("time_zone") or context.time_zone
        start, duration, readings = day_block(record)
        yield writer.time_parameters(time_zone, int(day[:4]))
        yield writer.meter(meter, time_zone, _int(record, "interval_seconds"))
        body = "".join(_reading(*reading) for reading in readings)
        yield writer.block(meter, day.replace("-", ""), start, duration, body)


def _daily(writer: _Writer, records: Iterable[dict[str, Any]], context: FeedContext) -> Iterator[str]:
    """One block per meter and local month (records sorted by meter, then day)."""
    zone = ZoneInfo(context.time_zone)
    current: tuple[str, str] | None = None
    readings: list[str] = []
    first = last = 0

    def flush() -> str:
        assert current is not None
        return writer.block(current[0], current[1], first, last - first, "".join(readings))

    for record in records:
        meter = _text(record, "delivery_point")
        try:
            day = date.fromisoformat(_text(record, "day"))
        except ValueError:
            raise EspiError(f"day: {record.get('day')!r} is not a date") from None
        start, length = local_day_bounds(day, zone)
        value = energy_units(record.get("energy_kwh"), unit="kWh", quantity="energy", seconds=length)
        yield writer.time_parameters(context.time_zone, day.year)
        yield writer.meter(meter, context.time_zone, 86400)
        month = f"{day.year:04d}{day.month:02d}"
        if current != (meter, month):
            if current is not None:
                yield flush()
            current, readings = (meter, month), []
            month_start = date(day.year, day.month, 1)
            first = local_day_bounds(month_start, zone)[0]
            following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            last = local_day_bounds(following, zone)[0]
        readings.append(_reading(start, length, value, None))
    if current is not None:
        yield flush()


def feed(kind: str, records: Iterable[dict[str, Any]], context: FeedContext) -> Iterator[str]:
    """The ESPI Atom feed of one dataset's records, as text chunks (stream them as they come).

    Records must come sorted by meter, then day. The LocalTimeParameters come first (the
    context's zone when there is no record), then per meter its UsagePoint, MeterReading and
    ReadingType, then its IntervalBlocks.
    """
    writer = _Writer(kind, context)
    yield writer.head()
    produce = _day_blocks if kind == ESPI_DAY_BLOCKS else _daily
    empty = True
    for chunk in produce(writer, records, context):
        if chunk:
            empty = False
            yield chunk
    if empty:
        yield writer.time_parameters(context.time_zone, context.updated.year)
    yield writer.tail()


def feed_bytes(kind: str, records: Iterable[dict[str, Any]], context: FeedContext) -> Iterator[bytes]:
    for chunk in feed(kind, records, context):
        yield chunk.encode("utf-8")
