"""The compiled validator's verdicts are the reference validator's, for every catalogue dataset.

Records are generated from each dataset's own schema: valid values, values just outside the
rules (impossible dates, wrong offsets, numbers that are integers in disguise, booleans, empty
strings, enum near misses), missing and extra properties. The reference is jsonschema's draft
2020-12 validator with its format checker (date, and date-time through rfc3339-validator).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from restitution.catalogue import BY_SLUG
from restitution.validation import _PORTABLE, _keywords, record_validator

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=6)

DATE_LIKE = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.sampled_from(["2025-02-29", "2024-02-29", "2025-04-31", "2025-13-01", "2025-00-10", "2025-1-01",
                     "20250101", "2025-01-01\n", "2025-01-01 ", "٢٠٢٥-٠١-٠١", "2025-W01-1", "2025-001", ""]),
)
DATE_TIME_LIKE = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.builds(lambda d, off: d.strftime("%Y-%m-%dT%H:%M:%S") + off, st.datetimes(),
              st.sampled_from(["Z", "z", "+01:00", "-05:30", "+0100", "+24:00", "", "+01", " Z"])),
    st.sampled_from(["2025-01-01T00:00:00Z", "2025-01-01t00:00:00z", "2025-01-01T23:59:60Z", "2025-01-01T24:00:00Z",
                     "2025-01-01T00:00:00.123456789Z", "2025-01-01 00:00:00Z", "2025-02-30T00:00:00Z",
                     "2025-01-01T00:00Z", "2025-01-01T00:00:00", "2025-01-01T00:00:00+01:60", ""]),
)


def _values(schema: dict[str, Any]) -> st.SearchStrategy:
    """Values for one property: mostly near its rules, sometimes anything."""
    options: list[st.SearchStrategy] = [ANY_JSON]
    for option in schema.get("anyOf", []):
        options.append(_values(option))
    kind = schema.get("type")
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"] + [v.upper() for v in schema["enum"] if isinstance(v, str)]))
    if "const" in schema:
        options.append(st.sampled_from([schema["const"], str(schema["const"]).lower(), ""]))
    if kind == "string":
        if schema.get("format") == "date":
            options.append(DATE_LIKE)
        elif schema.get("format") == "date-time":
            options.append(DATE_TIME_LIKE)
        elif "pattern" in schema:
            options += [st.from_regex(schema["pattern"]), st.text(alphabet="Aa0._:- \n", max_size=6)]
        else:
            options.append(st.text(max_size=12))
    elif kind in ("number", "integer"):
        bounds = [schema[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema]
        options += [st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0, -0.0, 1.0, -1, 2.5, True, False, 10**20, 1e300] + bounds
                                    + [b - 1 for b in bounds] + [b + 0.5 for b in bounds] + [b - 0.5 for b in bounds])]
    elif kind == "object":
        options.append(_objects(schema))
    elif kind == "null":
        options.append(st.none())
    return st.one_of(*options)


def _objects(schema: dict[str, Any]) -> st.SearchStrategy:
    """Objects of a schema: each property present or not, sometimes an extra one."""
    properties = schema.get("properties", {})
    parts = {name: st.one_of(_values(sub), st.just(_MISSING)) for name, sub in properties.items()}
    extras = st.dictionaries(st.sampled_from(["extra", "", "id"]), JSON_SCALARS, max_size=1)

    def build(values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        record = {k: v for k, v in values.items() if v is not _MISSING}
        return {**extra, **record}

    return st.builds(build, st.fixed_dictionaries(parts), extras)


_MISSING = object()


def _valid(schema: dict[str, Any]) -> st.SearchStrategy:
    """Values that follow a (catalogue) schema's rules."""
    if "anyOf" in schema:
        return st.one_of(*[_valid(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(lambda d: d.isoformat())
        if schema.get("format") == "date-time":
            return st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).filter(
                lambda v: schema.get("minLength", 0) <= len(v) <= schema.get("maxLength", 10**9))
        return st.text(min_size=schema.get("minLength", 0), max_size=12)
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -10**6))
        base = st.integers(int(low) + 1, 10**6)
        return base if kind == "integer" else st.one_of(base, st.floats(low + 0.001, 10**6))
    if kind == "object":
        return st.fixed_dictionaries({name: _valid(sub) for name, sub in schema.get("properties", {}).items()})
    return st.none()


def _valid_bias(schema: dict[str, Any]) -> st.SearchStrategy:
    """Complete records with zero to two properties changed to near-rule values or removed: the
    accepting side is explored as much as the refusing one."""
    properties = sorted(schema.get("properties", {}))

    @st.composite
    def record(draw):
        values = draw(_valid(schema))
        for name in draw(st.lists(st.sampled_from(properties), max_size=2, unique=True)):
            changed = draw(st.one_of(_values(schema["properties"][name]), st.just(_MISSING)))
            if changed is _MISSING:
                values.pop(name, None)
            else:
                values[name] = changed
        return values

    return record()


@pytest.mark.parametrize("slug", sorted(BY_SLUG))
def test_the_compiled_validator_agrees_with_the_reference(slug):
    schema = BY_SLUG[slug].schema
    assert _keywords(schema) <= _PORTABLE, "this dataset's schema would not be compiled at all"
    fast = record_validator(schema)
    reference = Draft202012Validator(schema, format_checker=FormatChecker())

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(_objects(schema), _valid_bias(schema)))
    def agree(record):
        verdict = fast(record)
        assert (verdict is None) == reference.is_valid(record), (record, verdict)

    agree()


def test_the_generator_reaches_both_verdicts():
    """The property above is not vacuous: its records are both accepted and refused."""
    schema = BY_SLUG["insurance-contracts"].schema
    reference = Draft202012Validator(schema, format_checker=FormatChecker())
    seen: set[bool] = set()

    @settings(max_examples=100, deadline=None)
    @given(_valid_bias(schema))
    def collect(record):
        seen.add(reference.is_valid(record))

    collect()
    assert seen == {True, False}


@pytest.mark.parametrize("started_at, valid", [
    ("2000-01-01T00:00:00+0100", False),  # an offset without its colon: not RFC 3339
    ("2000-01-01T00:00:00+01", False),
    ("2000-01-01T00:00:00+01:00", True),
    ("2000-01-01t00:00:00z", True),
])
def test_date_times_are_read_as_the_reference_reads_them(started_at, valid):
    """A case the property above once found: the compiled validator's own date-time pattern
    takes +0100, the reference does not."""
    schema = BY_SLUG["telco-call-log"].schema
    record = {"call_id": "CDR1", "line": "+33702061735", "started_at": started_at, "direction": "outgoing",
              "kind": "voice", "correspondent": "+3395XXXXX28", "duration_s": 304, "cost": None}
    assert Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(record) is valid
    assert (record_validator(schema)(record) is None) is valid
