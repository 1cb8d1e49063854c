"""Record validation: the fast path agrees with the reference validator and explains failures."""

from __future__ import annotations

from restitution.catalogue import BY_SLUG
from restitution.validation import record_validator

CURVE = BY_SLUG["energy-load-curve"].schema
GOOD = {"delivery_point": "12345678901234", "start": "2025-01-01T00:00:00Z",
        "end": "2025-01-01T00:30:00Z", "average_power_kw": 1.5}


def test_a_valid_record_passes():
    assert record_validator(CURVE)(GOOD) is None


def test_a_failure_names_the_field_and_the_rule():
    assert record_validator(CURVE)({**GOOD, "average_power_kw": -1}) == (
        "average_power_kw: -1 is less than the minimum of 0")
    assert "delivery_point" in record_validator(CURVE)({**GOOD, "delivery_point": "123"})
    assert "extra" in record_validator(CURVE)({**GOOD, "extra": 1})


def test_date_times_are_checked_even_without_the_optional_format_checkers():
    assert record_validator(CURVE)({**GOOD, "start": "2025-13-01T00:00:00Z"}) is not None


def test_schemas_outside_the_portable_subset_use_the_reference_validator():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"pair": {"type": "array", "prefixItems": [{"type": "integer"}]}}}
    check = record_validator(schema)
    assert check({"pair": [1]}) is None
    assert check({"pair": ["x"]}) is not None  # prefixItems is unknown to draft 7
