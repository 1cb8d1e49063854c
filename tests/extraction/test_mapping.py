"""The declarative mapping and its converters."""

from __future__ import annotations

import pytest

from restitution.catalogue import BY_SLUG
from restitution.mapping import Attachment, MappingContext, MappingError, compile_mapping


def _map(field_spec: dict, value, ctx: MappingContext | None = None):
    mapping = compile_mapping({"customer": "who", "fields": {"x": field_spec}})
    return mapping.apply({"who": "1", "v": value}, ctx or MappingContext())[0]["x"]


def test_cents_become_units():
    assert _map({"from": "v", "convert": "cents"}, 12345) == 123.45
    assert _map({"from": "v", "convert": "cents"}, "7") == 0.07


def test_decimal_commas_are_read_and_points_refused():
    assert _map({"from": "v", "convert": "decimal", "decimal_comma": True}, "12,345") == 12.345
    with pytest.raises(MappingError, match="decimal comma"):
        _map({"from": "v", "convert": "decimal", "decimal_comma": True}, "12.345")


@pytest.mark.parametrize("raw", ["20250231", "2025-02-01", "2025131", "abcdefgh"])
def test_impossible_dates_are_refused(raw):
    with pytest.raises(MappingError, match="impossible date"):
        _map({"from": "v", "convert": "date", "format": "%Y%m%d"}, raw)


def test_codes_become_labels_and_unknown_codes_are_errors():
    spec = {"from": "v", "convert": "code", "codes": {"R": "terminated", "A": "active"}}
    assert _map(spec, " A ") == "active"
    with pytest.raises(MappingError, match="unknown code"):
        _map(spec, "Q")


def test_null_values_and_nullable():
    spec = {"from": "v", "convert": "date", "nullable": True, "null_values": ["", "00000000"]}
    assert _map(spec, "00000000") is None
    assert _map(spec, None) is None
    with pytest.raises(MappingError, match="missing value"):
        _map({"from": "v", "convert": "date"}, "")


def test_third_party_numbers_are_masked():
    assert _map({"from": "v", "convert": "mask_phone"}, "+33612345678") == "+3361XXXXX78"
    assert _map({"from": "v", "convert": "mask_phone", "keep_first": 3, "keep_last": 3},
                "06 12 34 56 78") == "061XXXX678"


def test_local_time_autumn_fall_back_is_read_in_file_order():
    ctx = MappingContext(customer_key="pdl")
    spec = {"from": "v", "convert": "datetime_local", "format": "%d/%m/%Y %H:%M"}
    times = ["26/10/2025 01:30", "26/10/2025 02:00", "26/10/2025 02:30",
             "26/10/2025 02:00", "26/10/2025 02:30", "26/10/2025 03:00"]
    out = [_map(spec, t, ctx) for t in times]
    assert out == ["2025-10-25T23:30:00Z", "2025-10-26T00:00:00Z", "2025-10-26T00:30:00Z",
                   "2025-10-26T01:00:00Z", "2025-10-26T01:30:00Z", "2025-10-26T02:00:00Z"]
    with pytest.raises(MappingError, match="more than twice"):
        _map(spec, "26/10/2025 02:00", ctx)


def test_local_time_in_the_spring_gap_is_refused():
    spec = {"from": "v", "convert": "datetime_local", "format": "%d/%m/%Y %H:%M"}
    assert _map(spec, "30/03/2025 01:30") == "2025-03-30T00:30:00Z"
    assert _map(spec, "30/03/2025 03:00") == "2025-03-30T01:00:00Z"
    with pytest.raises(MappingError, match="does not exist"):
        _map(spec, "30/03/2025 02:30")


def test_shift_is_applied_in_utc():
    spec = {"from": "v", "convert": "datetime_local", "format": "%d/%m/%Y %H:%M", "shift_minutes": 30}
    assert _map(spec, "30/03/2025 01:30") == "2025-03-30T01:00:00Z"


def test_utc_datetimes_need_an_offset():
    assert _map({"from": "v", "convert": "datetime_utc"}, "2025-03-30T10:15:00+02:00") == "2025-03-30T08:15:00Z"
    with pytest.raises(MappingError, match="no offset"):
        _map({"from": "v", "convert": "datetime_utc"}, "2025-03-30T10:15:00")


def test_attachments_become_references():
    ref = _map({"from": "v", "convert": "attachment"}, Attachment("f.pdf", "application/pdf", b"%PDF-1.4"))
    assert ref["size"] == 8 and ref["filename"] == "f.pdf" and len(ref["sha256"]) == 64


def test_a_failure_carries_the_fields_mapped_so_far():
    mapping = compile_mapping({"customer": "who", "fields": {
        "a": {"from": "a"}, "b": {"from": "b", "convert": "int"}}})
    with pytest.raises(MappingError) as caught:
        mapping.apply({"who": "1", "a": "key", "b": "x"}, MappingContext())
    assert caught.value.partial == {"a": "key"}


def test_compiling_reports_every_problem_against_the_schema():
    schema = BY_SLUG["insurance-contracts"].schema
    with pytest.raises(ValueError) as caught:
        compile_mapping({"customer": "C", "fields": {
            "contract_id": {"from": "X", "convert": "nope"},
            "not_a_field": {"from": "Y"},
            "start_date": {"from": "D", "convert": "code"},
        }}, schema)
    message = str(caught.value)
    assert "unknown converter 'nope'" in message
    assert "not_a_field: not a field of the dataset" in message
    assert "needs option 'codes'" in message
    assert "annual_premium: required by the dataset but not mapped" in message
