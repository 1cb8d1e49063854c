"""Declarative legacy-field → dataset-field mapping, and the converters it may name.

A mapping is plain JSON stored with its Source (editable in the admin):

    {"customer": "NUM_SOCIETAIRE",
     "fields": {"contract_id": {"from": "NUM_CONTRAT"},
                "start_date":  {"from": "DT_EFFET", "convert": "date", "format": "%Y%m%d"},
                "end_date":    {"from": "DT_FIN", "convert": "date", "nullable": true,
                                "null_values": ["", "00000000"]},
                "currency":    {"const": "EUR"}}}

Converting never guesses: a value that cannot be converted raises MappingError with the field
and the reason, and the row is quarantined by the caller. This module never touches the database.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .items import utc_text
from .legacy_values import Attachment, lookup  # noqa: F401 - Attachment: part of this module's interface


class MappingError(ValueError):
    """A legacy value that cannot become a dataset value."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message
        # The fields mapped before the failure: lets the caller tell which record it was.
        self.partial: dict[str, Any] = {}


@dataclass
class MappingContext:
    """Per-run state some converters need (repeated local times on DST fall-back days)."""

    seen_local_times: dict[tuple[str, str, str], int] = field(default_factory=dict)
    customer_key: str = ""


Converter = Callable[[Any, dict[str, Any], MappingContext, str], Any]
_CONVERTERS: dict[str, Converter] = {}
# Options each converter requires, checked when a mapping is compiled.
_REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {}


def converter(name: str, *, requires: tuple[str, ...] = ()) -> Callable[[Converter], Converter]:
    def register(func: Converter) -> Converter:
        _CONVERTERS[name] = func
        _REQUIRED_OPTIONS[name] = requires
        return func

    return register


def converter_names() -> list[str]:
    return sorted(_CONVERTERS)


@converter("str")
def _to_str(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> str:
    text = str(value)
    return text.strip() if spec.get("strip", True) else text


@converter("int")
def _to_int(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> int:
    if isinstance(value, bool):
        raise MappingError(name, f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise MappingError(name, f"not an integer: {value!r}") from None


def _parse_decimal(value: Any, spec: dict[str, Any], name: str) -> Decimal:
    if isinstance(value, bool):
        raise MappingError(name, f"not a number: {value!r}")
    text = str(value).strip()
    if spec.get("decimal_comma"):
        if "." in text:
            raise MappingError(name, f"expected a decimal comma, got {value!r}")
        text = text.replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise MappingError(name, f"not a number: {value!r}") from None
    if not number.is_finite():
        raise MappingError(name, f"not a finite number: {value!r}")
    return number


@converter("decimal")
def _to_decimal(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> float:
    number = _parse_decimal(value, spec, name)
    if "scale" in spec:
        number = number.quantize(Decimal(1).scaleb(-int(spec["scale"])))
    return float(number)


@converter("cents")
def _cents_to_units(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> float:
    """Integer cents (the legacy habit) to a decimal amount in units, e.g. 12345 → 123.45."""
    cents = _to_int(value, spec, ctx, name)
    return float(Decimal(cents) / 100)


@converter("date")
def _to_date(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> str:
    fmt = spec.get("format", "%Y%m%d")
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return _strict_parse(str(value).strip(), fmt, name, "date").date().isoformat()


def _strict_parse(raw: str, fmt: str, name: str, what: str) -> datetime:
    """strptime, refusing what it would silently accept: '2025131' is not 20250131."""
    fast = _fixed_width_reader(fmt)
    if fast is not None:
        parsed = fast(raw)
        if parsed is not None:
            return parsed
    try:
        parsed = datetime.strptime(raw, fmt)
    except ValueError:
        raise MappingError(name, f"impossible {what} {raw!r} (expected {fmt})") from None
    if parsed.strftime(fmt) != raw:
        raise MappingError(name, f"impossible {what} {raw!r} (expected {fmt})")
    return parsed


#: The strptime directives _fixed_width_reader() reads itself: zero-padded digits of one width.
_FIXED_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_DATETIME_ARGUMENTS = {"Y": "year", "m": "month", "d": "day", "H": "hour", "M": "minute", "S": "second"}


@functools.lru_cache(maxsize=64)
def _fixed_width_reader(fmt: str) -> Callable[[str], datetime | None] | None:
    """A fast reader for a format made only of fixed-width numeric directives and literal text
    (`%Y%m%d`, `%d/%m/%Y %H:%M`): the moment when `raw` is such a text and a real date and time,
    else None — and then _strict_parse() asks strptime, which gives the verdict and the reason.
    Where it answers, it answers as strptime + the round trip would (tests/extraction/
    test_mapping.py compares them). None for any other format."""
    pattern, order, position = [], [], 0
    while position < len(fmt):
        char = fmt[position]
        if char != "%":
            pattern.append(re.escape(char))
            position += 1
            continue
        directive = fmt[position + 1:position + 2]
        if directive == "%":
            pattern.append("%")
        elif directive in _FIXED_WIDTH and directive not in order:
            pattern.append(f"([0-9]{{{_FIXED_WIDTH[directive]}}})")
            order.append(directive)
        else:
            return None
        position += 2
    compiled = re.compile("".join(pattern))
    names = [_DATETIME_ARGUMENTS[directive] for directive in order]

    def read(raw: str) -> datetime | None:
        match = compiled.fullmatch(raw)
        if match is None:
            return None
        values = {"year": 1900, "month": 1, "day": 1,
                  **{name: int(text) for name, text in zip(names, match.groups(), strict=True)}}
        if values["year"] < 1000:  # strftime prints such a year unpadded: strptime's verdict
            return None
        try:
            return datetime(**values)
        except ValueError:
            return None

    return read


def _zone(spec: dict[str, Any], name: str) -> ZoneInfo:
    try:
        return ZoneInfo(spec.get("tz", "Europe/Paris"))
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(name, f"unknown time zone {spec.get('tz')!r}") from None


@converter("datetime_local", requires=("format",))
def _local_to_utc(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> str:
    """Local wall-clock time → UTC.

    A time that does not exist (the spring-forward gap) is refused. A time that happens twice
    (the autumn fall-back hour) is read in file order: its first occurrence is summer time,
    its second winter time — legacy exports carry no offset, only the order of their lines.
    """
    raw = str(value).strip()
    naive = _strict_parse(raw, spec["format"], name, "date-time")
    zone = _zone(spec, name)
    instants = _local_instants(naive, zone)
    if instants is None:
        raise MappingError(name, f"{raw!r} does not exist in {zone.key} (clocks went forward)")
    first, second = instants
    if first != second:  # the fall-back hour: which occurrence this line is
        seen_key = (ctx.customer_key, name, raw)
        occurrence = ctx.seen_local_times.get(seen_key, 0)
        ctx.seen_local_times[seen_key] = occurrence + 1
        if occurrence > 1:
            raise MappingError(name, f"{raw!r} appears more than twice in {zone.key}")
        moment = second if occurrence == 1 else first
    else:
        moment = first
    return utc_text(moment + timedelta(minutes=int(spec.get("shift_minutes", 0))))


@functools.lru_cache(maxsize=8192)
def _local_instants(naive: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The UTC instants a wall-clock time names in `zone`: (first, second) — the same twice for
    an ordinary time, summer then winter time in the fall-back hour — or None in the
    spring-forward gap (such a time does not survive a round trip). Cached: a load curve repeats
    the same local times for every meter."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        return None
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC), first.astimezone(UTC)
    return first.astimezone(UTC), second.astimezone(UTC)


@converter("datetime_utc")
def _to_utc(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> str:
    """An ISO 8601 date-time with an offset (or Z) → UTC; a naive one is refused."""
    raw = str(value).strip()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(name, f"impossible date-time {value!r}") from None
    if moment.tzinfo is None:
        raise MappingError(name, f"date-time {value!r} has no offset")
    return utc_text(moment + timedelta(minutes=int(spec.get("shift_minutes", 0))))


@converter("code", requires=("codes",))
def _decode(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> Any:
    """A legacy code → its label, from the table in the mapping; an unknown code is an error."""
    code = str(value).strip()
    codes: MappingABC[str, Any] = spec["codes"]
    if code in codes:
        return codes[code]
    if "default" in spec:
        return spec["default"]
    raise MappingError(name, f"unknown code {code!r}")


@converter("mask_phone")
def _mask_phone(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> str:
    """Hide the middle of a third party's phone number: +33612345678 → +3361XXXXX78."""
    raw = re.sub(r"[\s.\-]", "", str(value).strip())
    if not re.fullmatch(r"\+?[0-9]{4,15}", raw):
        raise MappingError(name, f"not a phone number: {value!r}")
    keep_first = int(spec.get("keep_first", 5))
    keep_last = int(spec.get("keep_last", 2))
    if len(raw) <= keep_first + keep_last:
        return "X" * len(raw)
    return raw[:keep_first] + "X" * (len(raw) - keep_first - keep_last) + raw[len(raw) - keep_last:]


@converter("bool")
def _to_bool(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> bool:
    truthy = {str(v).lower() for v in spec.get("true_values", ["1", "true", "o", "y", "yes", "oui"])}
    falsy = {str(v).lower() for v in spec.get("false_values", ["0", "false", "n", "no", "non"])}
    text = str(value).strip().lower()
    if text in truthy:
        return True
    if text in falsy:
        return False
    raise MappingError(name, f"not a yes/no value: {value!r}")


@converter("attachment")
def _attachment(value: Any, spec: dict[str, Any], ctx: MappingContext, name: str) -> dict[str, Any]:
    """A fetched file → its reference in the record; the store keeps the bytes as a Document."""
    if not isinstance(value, Attachment):
        raise MappingError(name, "the source did not provide the file")
    return {
        "filename": value.filename,
        "content_type": value.content_type,
        "size": len(value.content),
        "sha256": value.sha256,
    }


#: What a "group" section may say, and what it must.
_GROUP_REQUIRED = ("by", "start", "value", "time_zone", "interval_seconds", "unit", "quantity")
_GROUP_OPTIONAL = ("quality", "order")
#: How the source orders its rows, which says when a day block is complete: "block" (all rows of
#: one block are consecutive: it is complete as soon as a row of another block comes),
#: "customer" (a customer's rows are consecutive: complete when the customer changes), "none"
#: (complete only when the read ends: per customer in a per-customer read, the whole scan in a
#: full scan).
GROUP_ORDERS = ("block", "customer", "none")


@dataclass(frozen=True)
class GroupSpec:
    """How many mapped rows (one reading each) fold into one record per group key and local day."""

    by: tuple[str, ...]
    start: str
    value: str
    quality: str | None
    zone: ZoneInfo
    interval_seconds: int
    unit: str
    quantity: str
    order: str

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """UTC instants of the local midnights that open and close `day` (exact on DST days)."""
        following = day + timedelta(days=1)
        return (datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC),
                datetime(following.year, following.month, following.day,
                         tzinfo=self.zone).astimezone(UTC))


def _parse_utc(text: str) -> datetime:
    """A UTC text as the converters write it ('…Z'), strictly (fromisoformat alone takes more)."""
    if not isinstance(text, str) or len(text) != 20 or text[-1] != "Z":
        raise ValueError(text)
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


@dataclass
class _Block:
    customer_id: int
    key: tuple[Any, ...]
    day: date
    locator: str
    rows: int = 0
    #: UTC start → (start as text, value, quality, locator)
    readings: dict[datetime, tuple[str, Any, Any, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockRecord:
    """One complete day block, ready to be validated and stored like any other record."""

    customer_id: int
    data: dict[str, Any]
    locator: str


class DayBlocks:
    """Folds mapped readings into one record per group key and local day.

    A reading is placed by its own UTC start; the day is the local calendar day of that start
    in the group's time zone, so a day has 46, 48 or 50 half hours as the clocks say. Expected
    intervals are every `interval_seconds` from local midnight to the next; those with no
    reading are listed in `missing`. This class never touches the database.
    """

    def __init__(self, spec: GroupSpec) -> None:
        self.spec = spec
        self._open: dict[tuple[int, tuple[Any, ...], date], _Block] = {}
        self._last: tuple[int, tuple[Any, ...], date] | None = None
        self._last_customer: int | None = None
        self._bounds: dict[date, tuple[datetime, datetime]] = {}

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        bounds = self._bounds.get(day)
        if bounds is None:
            if len(self._bounds) > 4096:
                self._bounds.clear()
            bounds = self._bounds[day] = self.spec.day_bounds(day)
        return bounds

    def _group_of(self, row: MappingABC[str, Any]) -> tuple[tuple[Any, ...], datetime] | None:
        try:
            key = tuple(row[name] for name in self.spec.by)
            moment = _parse_utc(row[self.spec.start])
        except (KeyError, TypeError, ValueError):
            return None
        return key, moment

    def _block(self, customer_id: int, key: tuple[Any, ...], day: date, locator: str) -> _Block:
        ident = (customer_id, key, day)
        block = self._open.get(ident)
        if block is None:
            block = self._open[ident] = _Block(customer_id, key, day, locator)
        self._last = ident
        self._last_customer = customer_id
        return block

    def arriving(self, customer_id: int, row: MappingABC[str, Any]) -> list[BlockRecord]:
        """Blocks that a row arriving now completes, given the source's declared order."""
        order = self.spec.order
        if order == "none" or not self._open:
            return []
        if order == "customer":
            return self.drain() if customer_id != self._last_customer else []
        group = self._group_of(row)
        if group is None:
            return []  # a row that names no block leaves the open one open
        ident = (customer_id, group[0], self.spec.day_of(group[1]))
        return self.drain() if ident != self._last else []

    def add(self, customer_id: int, row: MappingABC[str, Any], locator: str) -> str | None:
        """Put one mapped reading in its block; a reason when the row cannot be a reading."""
        spec = self.spec
        group = self._group_of(row)
        if group is None:
            return f"{spec.start}: not a UTC date-time"
        key, moment = group
        day = spec.day_of(moment)
        block = self._block(customer_id, key, day, locator)
        block.rows += 1
        first, _ = self._day_bounds(day)
        if (moment - first).total_seconds() % spec.interval_seconds:
            return (f"{spec.start}: {utc_text(moment)} is not on the {spec.interval_seconds} s "
                    f"grid of {day.isoformat()} ({spec.zone.key})")
        earlier = block.readings.get(moment)
        if earlier is not None:
            return f"duplicate reading for {earlier[0]} (first at {earlier[3]})"
        quality = row.get(spec.quality) if spec.quality else None
        block.readings[moment] = (row[spec.start], row[spec.value], quality, locator)
        return None

    def touch(self, customer_id: int, partial: MappingABC[str, Any], locator: str) -> None:
        """A row that failed after its block was known: the block is written, that reading
        counted missing (when the failing row said which block it belonged to)."""
        group = self._group_of(partial)
        if group is not None:
            key, moment = group
            self._block(customer_id, key, self.spec.day_of(moment), locator).rows += 1

    def drain(self) -> list[BlockRecord]:
        """Every open block as a record; nothing stays open."""
        blocks, self._open, self._last = list(self._open.values()), {}, None
        return [self._record(block) for block in blocks]

    def _record(self, block: _Block) -> BlockRecord:
        spec = self.spec
        first, after = self._day_bounds(block.day)
        step = timedelta(seconds=spec.interval_seconds)
        readings: list[dict[str, Any]] = []
        missing: list[str] = []
        moment = first
        while moment < after:
            found = block.readings.get(moment)
            if found is None:
                missing.append(utc_text(moment))
            else:
                reading = {"start": found[0], "value": found[1]}
                if found[2] is not None:
                    reading["quality"] = found[2]
                readings.append(reading)
            moment += step
        duration = int((after - first).total_seconds())
        data: dict[str, Any] = dict(zip(spec.by, block.key, strict=True))
        data.update({
            "day": block.day.isoformat(),
            "time_zone": spec.zone.key,
            "start": utc_text(first),
            "duration_seconds": duration,
            "interval_seconds": spec.interval_seconds,
            "unit": spec.unit,
            "quantity": spec.quantity,
            "expected_readings": duration // spec.interval_seconds,
            "missing_count": len(missing),
            "missing": missing,
            "readings": readings,
        })
        return BlockRecord(block.customer_id, data,
                           f"{block.locator} (day block {block.day.isoformat()}, {block.rows} rows)")


@dataclass(frozen=True)
class _FieldPlan:
    """One field of a compiled mapping, its options read once (apply() runs for every row)."""

    target: str
    source: str | None
    const: Any
    has_const: bool
    strip: bool
    null_values: tuple[Any, ...]
    nullable: bool
    convert: Converter
    spec: dict[str, Any]


@dataclass(frozen=True)
class CompiledMapping:
    customer_field: str
    fields: dict[str, dict[str, Any]]
    group: GroupSpec | None = None
    plan: tuple[_FieldPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plan = tuple(
            _FieldPlan(target=target, source=spec.get("from"), const=spec.get("const"), has_const="const" in spec,
                       strip=bool(spec.get("strip", True)), null_values=tuple(spec.get("null_values", [""])),
                       nullable=bool(spec.get("nullable", False)), convert=_CONVERTERS[spec.get("convert", "str")],
                       spec=spec)
            for target, spec in self.fields.items())
        object.__setattr__(self, "plan", plan)

    @property
    def row_by_row(self) -> bool:
        """Whether a row's record depends on that row alone: not on rows read before it (day
        blocks fold many rows; a repeated local time is told apart by its order in the file)."""
        return self.group is None and all(plan.convert is not _local_to_utc for plan in self.plan)

    def blocks(self) -> DayBlocks | None:
        """A fresh fold of readings into day blocks, for a mapping with a "group" section."""
        return DayBlocks(self.group) if self.group is not None else None

    def customer_key(self, values: MappingABC[str, Any]) -> str | None:
        raw = lookup(values, self.customer_field)
        if raw is None:
            return None
        text = str(raw).strip()
        return text or None

    def apply(self, values: MappingABC[str, Any], ctx: MappingContext) -> tuple[dict[str, Any], list[Attachment]]:
        """Map one legacy row; raises MappingError on the first field that cannot be mapped."""
        record: dict[str, Any] = {}
        attachments: list[Attachment] = []
        for field_plan in self.plan:
            target = field_plan.target
            if field_plan.has_const:
                record[target] = field_plan.const
                continue
            raw = lookup(values, field_plan.source)
            if field_plan.strip and isinstance(raw, str):
                raw = raw.strip()
            if raw is None or raw in field_plan.null_values:
                if field_plan.nullable:
                    record[target] = None
                    continue
                error = MappingError(target, f"missing value (legacy field {field_plan.source})")
                error.partial = record
                raise error
            if isinstance(raw, Attachment):
                attachments.append(raw)
            try:
                record[target] = field_plan.convert(raw, field_plan.spec, ctx, target)
            except MappingError as exc:
                exc.partial = record
                raise
        return record, attachments


def compile_mapping(spec: Any, schema: dict[str, Any] | None = None) -> CompiledMapping:
    """Check a mapping (against the dataset's JSON Schema when given) and compile it.

    Raises ValueError listing every problem, so the admin can show them all at once.
    """
    problems: list[str] = []
    if not isinstance(spec, dict):
        raise ValueError("a mapping must be a JSON object")
    customer_field = spec.get("customer")
    if not isinstance(customer_field, str) or not customer_field:
        problems.append("'customer' must name the legacy field that identifies the customer")
    fields = spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        problems.append("'fields' must map dataset fields to legacy fields")
        fields = {}
    properties = (schema or {}).get("properties")
    group: GroupSpec | None = None
    if "group" in spec:
        group = _compile_group(spec["group"], fields, problems)
    for target, field_spec in fields.items():
        if properties is not None and target not in properties and group is None:
            problems.append(f"{target}: not a field of the dataset")
        if not isinstance(field_spec, dict):
            problems.append(f"{target}: must be an object")
            continue
        if "const" in field_spec:
            continue
        if not isinstance(field_spec.get("from"), str):
            problems.append(f"{target}: 'from' must name a legacy field")
        conv = field_spec.get("convert", "str")
        if conv not in _CONVERTERS:
            problems.append(f"{target}: unknown converter {conv!r} (known: {', '.join(converter_names())})")
            continue
        for option in _REQUIRED_OPTIONS[conv]:
            if option not in field_spec:
                problems.append(f"{target}: converter {conv!r} needs option {option!r}")
    if schema is not None and group is not None:
        for name in group.by:
            if properties is not None and name not in properties:
                problems.append(f"group.by: {name} is not a field of the dataset")
        for name in BLOCK_FIELDS:
            if properties is not None and name not in properties:
                problems.append(f"group: the dataset has no field {name!r} for day blocks")
    elif schema is not None:
        for required in schema.get("required", []):
            if required not in fields:
                problems.append(f"{required}: required by the dataset but not mapped")
    if problems:
        raise ValueError("; ".join(problems))
    return CompiledMapping(customer_field=customer_field, fields=fields, group=group)


#: The fields a day block adds to its group key fields (see DayBlocks._record).
BLOCK_FIELDS = ("day", "time_zone", "start", "duration_seconds", "interval_seconds", "unit",
                "quantity", "expected_readings", "missing_count", "missing", "readings")


def _compile_group(group: Any, fields: dict[str, Any], problems: list[str]) -> GroupSpec | None:
    if not isinstance(group, dict):
        problems.append("group: must be an object")
        return None
    before = len(problems)
    for option in _GROUP_REQUIRED:
        if option not in group:
            problems.append(f"group: needs option {option!r}")
    for option in sorted(set(group) - set(_GROUP_REQUIRED) - set(_GROUP_OPTIONAL)):
        problems.append(f"group: unknown option {option!r}")
    by = group.get("by")
    if not isinstance(by, list) or not by or not all(isinstance(n, str) for n in by):
        problems.append("group.by: must list the mapped fields that identify a block (with the day)")
        by = []
    named = [*by, group.get("start"), group.get("value")]
    if group.get("quality") is not None:
        named.append(group["quality"])
    for name in named:
        if isinstance(name, str) and name not in fields:
            problems.append(f"group: {name!r} is not a mapped field")
    start_spec = fields.get(group.get("start"))
    if isinstance(start_spec, dict) and start_spec.get("convert") not in ("datetime_local", "datetime_utc"):
        problems.append("group.start: must be mapped with datetime_local or datetime_utc")
    interval = group.get("interval_seconds")
    if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0 or 3600 % interval:
        problems.append("group.interval_seconds: must be a whole number of seconds dividing one hour")
        interval = 0
    try:
        zone = ZoneInfo(str(group.get("time_zone")))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"group.time_zone: unknown time zone {group.get('time_zone')!r}")
        zone = None
    order = group.get("order", "none")
    if order not in GROUP_ORDERS:
        problems.append(f"group.order: one of {', '.join(GROUP_ORDERS)}")
    for option in ("unit", "quantity"):
        if option in group and not isinstance(group[option], str):
            problems.append(f"group.{option}: must be a text")
    if len(problems) > before or zone is None:
        return None
    return GroupSpec(by=tuple(by), start=group["start"], value=group["value"],
                     quality=group.get("quality"), zone=zone, interval_seconds=interval,
                     unit=group["unit"], quantity=group["quantity"], order=order)
