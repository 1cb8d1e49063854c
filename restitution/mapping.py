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
    try:
        parsed = datetime.strptime(raw, fmt)
    except ValueError:
        raise MappingError(name, f"impossible {what} {raw!r} (expected {fmt})") from None
    if parsed.strftime(fmt) != raw:
        raise MappingError(name, f"impossible {what} {raw!r} (expected {fmt})")
    return parsed


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
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        # Ambiguous, or non-existent: a non-existent time does not survive a round trip.
        if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise MappingError(name, f"{raw!r} does not exist in {zone.key} (clocks went forward)")
        seen_key = (ctx.customer_key, name, raw)
        occurrence = ctx.seen_local_times.get(seen_key, 0)
        ctx.seen_local_times[seen_key] = occurrence + 1
        if occurrence > 1:
            raise MappingError(name, f"{raw!r} appears more than twice in {zone.key}")
        aware = second if occurrence == 1 else first
    else:
        aware = first
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise MappingError(name, f"{raw!r} does not exist in {zone.key} (clocks went forward)")
    moment = aware.astimezone(UTC) + timedelta(minutes=int(spec.get("shift_minutes", 0)))
    return utc_text(moment)


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


@dataclass(frozen=True)
class CompiledMapping:
    customer_field: str
    fields: dict[str, dict[str, Any]]

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
        for target, spec in self.fields.items():
            if "const" in spec:
                record[target] = spec["const"]
                continue
            raw = lookup(values, spec["from"])
            if isinstance(raw, str) and spec.get("strip", True):
                raw = raw.strip()
            if raw is None or raw in spec.get("null_values", [""]):
                if spec.get("nullable", False):
                    record[target] = None
                    continue
                error = MappingError(target, f"missing value (legacy field {spec['from']})")
                error.partial = record
                raise error
            if isinstance(raw, Attachment):
                attachments.append(raw)
            try:
                record[target] = _CONVERTERS[spec.get("convert", "str")](raw, spec, ctx, target)
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
    for target, field_spec in fields.items():
        if properties is not None and target not in properties:
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
    if schema is not None:
        for required in schema.get("required", []):
            if required not in fields:
                problems.append(f"{required}: required by the dataset but not mapped")
    if problems:
        raise ValueError("; ".join(problems))
    return CompiledMapping(customer_field=customer_field, fields=fields)
