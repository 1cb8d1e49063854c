"""The declarative mapping and its converters."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restitution import mapping
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


# The fast reader of fixed-width formats gives strptime's verdicts (with the round trip that
# refuses what strptime would silently accept), on texts near valid and far from it.
FIXED_FORMATS = ["%Y%m%d", "%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S", "%H%M", "%m%%%Y"]
_near_dates = st.builds(
    lambda y, m, d, hh, mm, ss: (f"{y:04d}{m:02d}{d:02d}", f"{d:02d}/{m:02d}/{y:04d} {hh:02d}:{mm:02d}",
                                 f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}", f"{hh:02d}{mm:02d}",
                                 f"{m:02d}%{y:04d}"),
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
    st.integers(0, 61))


def _reference(raw: str, fmt: str):
    try:
        parsed = datetime.strptime(raw, fmt)
    except ValueError:
        return None
    return parsed if parsed.strftime(fmt) == raw else None


def _fast_verdict(raw: str, fmt: str):
    try:
        return mapping._strict_parse(raw, fmt, "x", "date")
    except MappingError:
        return None


@settings(max_examples=400, deadline=None)
@given(texts=_near_dates, noise=st.text(alphabet="0123456789 /-:T%٣", max_size=20))
def test_the_fixed_width_reader_answers_as_strptime(texts, noise):
    for fmt, raw in zip(FIXED_FORMATS, texts, strict=True):
        assert mapping._fixed_width_reader(fmt) is not None
        for text in (raw, noise, raw[:-1], " " + raw):
            assert _fast_verdict(text, fmt) == _reference(text, fmt), (fmt, text)


def test_other_formats_are_left_to_strptime():
    for fmt in ("%y%m%d", "%d %b %Y", "%Y%j", "%Y%m%d%Y", "%"):
        assert mapping._fixed_width_reader(fmt) is None
