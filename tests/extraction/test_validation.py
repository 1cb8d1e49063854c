"""Record validation: the fast path agrees with the reference validator and explains failures."""

from __future__ import annotations

from restitution.catalogue import BY_SLUG
from restitution.validation import record_validator

CURVE = BY_SLUG["energy-load-curve"].schema
GOOD = {"delivery_point": "12345678901234", "day": "2025-01-01", "time_zone": "Europe/Paris",
        "start": "2024-12-31T23:00:00Z", "duration_seconds": 86400, "interval_seconds": 1800,
        "unit": "kW", "quantity": "average_power", "expected_readings": 48, "missing_count": 47,
        "missing": [], "readings": [{"start": "2024-12-31T23:00:00Z", "value": 1.5}]}


def test_a_valid_record_passes():
    assert record_validator(CURVE)(GOOD) is None


def test_a_failure_names_the_field_and_the_rule():
    bad_reading = {**GOOD, "readings": [{"start": "2024-12-31T23:00:00Z", "value": -1}]}
    assert record_validator(CURVE)(bad_reading) == "readings/0/value: -1 is less than the minimum of 0"
    assert "delivery_point" in record_validator(CURVE)({**GOOD, "delivery_point": "123"})
    assert "extra" in record_validator(CURVE)({**GOOD, "extra": 1})
    assert "quality" in record_validator(CURVE)({**GOOD, "readings": [
        {"start": "2024-12-31T23:00:00Z", "value": 1, "quality": "guessed"}]})


def test_date_times_are_checked_even_without_the_optional_format_checkers():
    assert record_validator(CURVE)({**GOOD, "start": "2025-13-01T00:00:00Z"}) is not None
    assert record_validator(CURVE)({**GOOD, "missing": ["2025-13-01T00:00:00Z"]}) is not None


def test_schemas_outside_the_portable_subset_use_the_reference_validator():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"pair": {"type": "array", "prefixItems": [{"type": "integer"}]}}}
    check = record_validator(schema)
    assert check({"pair": [1]}) is None
    assert check({"pair": ["x"]}) is not None  # prefixItems is unknown to draft 7
