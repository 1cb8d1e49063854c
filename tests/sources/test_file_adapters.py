"""CSVAdapter and FixedWidthAdapter against files written in a temporary directory."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from restitution.sources import adapter_class
from restitution.sources.base import RawRow, SourceError, content_hash
from restitution.sources.files import CSVAdapter, FixedWidthAdapter

CSV_OPTIONS: dict[str, Any] = {
    "encoding": "latin-1",
    "datasets": {"invoices": {"pattern": "exports/**/*.csv", "delimiter": ";",
                              "quotechar": '"', "header": True}},
}
CSV_LINES = [
    "NUM_CLIENT;NOM;MONTANT;ADRESSE",
    'C001;Hélène Dupré;12,50;"Rue de l\'Église; bât. B"',
    "C002;Zoë Martin;3,00;simple",
    "C001;Bad\x01Row;1,00;x",
    "C001;Only;Two",
    "",
    'C002;Multi Line;7,25;"first line',
    'second line"',
    "C003;Friend of C001;0,99;mentions C001",
    "C001;François Noël;1 234,00;",
]



def where(row: RawRow) -> str:
    """A file row's place (file and line or record); its locator adds the row's content hash."""
    place, _, digest = row.locator.rpartition(" ")
    assert digest.startswith("sha256:") and len(digest) == 23, row.locator
    return place

def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def csv_adapter(base: Path, limiter: Any = None, options: dict[str, Any] | None = None,
                ) -> CSVAdapter:
    return CSVAdapter(options=options or CSV_OPTIONS, connection=str(base), limiter=limiter)


def read(adapter: Any, customer: str | None, dataset: str = "invoices",
         field: str = "NUM_CLIENT") -> list[RawRow]:
    return list(adapter.read(dataset, customer_key=customer, customer_field=field))


@pytest.fixture
def csv_base(tmp_path: Path) -> Path:
    text = "\r\n".join(CSV_LINES) + "\r\n"
    write(tmp_path / "exports" / "2024" / "day1.csv", text.encode("latin-1"))
    return tmp_path


def test_registered_under_their_kinds() -> None:
    assert adapter_class("csv") is CSVAdapter
    assert adapter_class("fixed-width") is FixedWidthAdapter


def test_csv_full_scan(csv_base: Path, limiter: Any) -> None:
    rows = read(csv_adapter(csv_base, limiter), None)
    by_line = {where(row): row for row in rows}
    assert list(by_line) == [f"exports/2024/day1.csv:{n}" for n in (2, 3, 4, 5, 7, 9, 10)]
    first = by_line["exports/2024/day1.csv:2"]
    assert first.error is None
    assert first.values == {"NUM_CLIENT": "C001", "NOM": "Hélène Dupré", "MONTANT": "12,50",
                            "ADRESSE": "Rue de l'Église; bât. B"}
    control = by_line["exports/2024/day1.csv:4"]
    assert control.error == "bad encoding: control character U+0001"
    assert control.values == {"line": "C001;Bad\\x01Row;1,00;x"}
    assert by_line["exports/2024/day1.csv:5"].error == "expected 4 fields, got 3"
    assert by_line["exports/2024/day1.csv:7"].values["ADRESSE"] == "first line\r\nsecond line"
    assert by_line["exports/2024/day1.csv:10"].values["MONTANT"] == "1 234,00"
    assert limiter.calls == 1


def test_csv_customer_filter(csv_base: Path) -> None:
    rows = read(csv_adapter(csv_base), "C001")
    assert [(where(row).rsplit(":", 1)[1], row.error) for row in rows] == [
        ("2", None),
        ("4", "bad encoding: control character U+0001"),
        ("5", "expected 4 fields, got 3"),
        ("10", None),
    ]
    assert all(row.values.get("NUM_CLIENT", "C001") == "C001" for row in rows)
    assert read(csv_adapter(csv_base), "C999") == []


def test_csv_customer_filter_compares_stripped_values(tmp_path: Path) -> None:
    write(tmp_path / "exports" / "a.csv", b"NUM_CLIENT;NOM\n  C001 ;padded\nC0011;other\n")
    rows = read(csv_adapter(tmp_path), "C001")
    assert [row.values["NOM"] for row in rows] == ["padded"]


def test_csv_undecodable_line_is_an_error_row(tmp_path: Path) -> None:
    options = {"datasets": {"invoices": {"pattern": "exports/*.csv", "encoding": "utf-8"}}}
    data = "NUM_CLIENT,NOM\nC001,Hélène\n".encode() + b"C001,H\xe9l\xe8ne\nC002,ok\n"
    write(tmp_path / "exports" / "a.csv", data)
    rows = read(csv_adapter(tmp_path, options=options), None)
    assert [row.error for row in rows] == [
        None, "bad encoding: byte 0xe9 at position 6 is not valid utf-8", None]
    assert rows[1].values == {"line": "C001,H\\xe9l\\xe8ne"}
    assert rows[0].values["NOM"] == "Hélène"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_csv_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path: Path,
                                                            encoding: str) -> None:
    options = {"datasets": {"invoices": {"pattern": "exports/*.csv", "encoding": encoding}}}
    write(tmp_path / "exports" / "a.csv", "\ufeffNUM_CLIENT,NOM\nC001,x\n".encode())
    assert read(csv_adapter(tmp_path, options=options), "C001")[0].values == {
        "NUM_CLIENT": "C001", "NOM": "x"}


def test_csv_broken_quoting_is_an_error_row(tmp_path: Path) -> None:
    write(tmp_path / "exports" / "a.csv", b'NUM_CLIENT;NOM\nC001;"ab"cd\nC001;fine\n')
    rows = read(csv_adapter(tmp_path), "C001")
    assert rows[0].error is not None and rows[0].error.startswith("malformed CSV")
    assert rows[1].values == {"NUM_CLIENT": "C001", "NOM": "fine"}


def test_csv_without_header_uses_fieldnames(tmp_path: Path) -> None:
    write(tmp_path / "exports" / "a.csv", b"C001;x\nC002;y\n")
    options = {"datasets": {"invoices": {"pattern": "exports/*.csv", "delimiter": ";",
                                         "header": False, "fieldnames": ["NUM_CLIENT", "NOM"]}}}
    rows = read(csv_adapter(tmp_path, options=options), "C002")
    assert [(row.values, row.locator) for row in rows] == [
        ({"NUM_CLIENT": "C002", "NOM": "y"}, f"exports/a.csv:2 {content_hash('C002;y')}")]
    options["datasets"]["invoices"].pop("fieldnames")
    with pytest.raises(SourceError) as caught:
        read(csv_adapter(tmp_path, options=options), "C002")
    assert caught.value.permanent


def test_csv_customer_field_must_be_a_column(csv_base: Path) -> None:
    with pytest.raises(SourceError) as caught:
        read(csv_adapter(csv_base), "C001", field="NOPE")
    assert caught.value.permanent


def test_csv_files_are_read_in_sorted_order_one_wait_per_file(tmp_path: Path,
                                                              limiter: Any) -> None:
    for name in ("b.csv", "a.csv", "sub/c.csv", "notes.txt"):
        write(tmp_path / "exports" / name, f"NUM_CLIENT;F\nC001;{name}\n".encode())
    options = {"datasets": {"invoices": {"pattern": "exports/**/*.csv", "delimiter": ";"}}}
    rows = read(csv_adapter(tmp_path, limiter, options), "C001")
    assert [row.locator for row in rows] == [
        f"exports/a.csv:2 {content_hash('C001;a.csv')}", f"exports/b.csv:2 {content_hash('C001;b.csv')}",
        f"exports/sub/c.csv:2 {content_hash('C001;sub/c.csv')}"]
    assert limiter.calls == 3


def test_no_matching_file_is_an_empty_read(tmp_path: Path) -> None:
    assert read(csv_adapter(tmp_path), None) == []


def test_missing_base_directory_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        read(csv_adapter(tmp_path / "nope"), None)
    assert caught.value.permanent
    assert str(tmp_path) not in str(caught.value)


@pytest.mark.parametrize("pattern", ["../*.csv", "/etc/*.csv", "exports/../../*.csv",
                                     "..\\x\\*.csv", "C:\\data\\*.csv", ""])
def test_patterns_escaping_the_base_directory_are_refused(csv_base: Path, pattern: str) -> None:
    options = {"datasets": {"invoices": {"pattern": pattern}}}
    with pytest.raises(SourceError) as caught:
        read(csv_adapter(csv_base, options=options), None)
    assert caught.value.permanent


def test_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.csv", b"NUM_CLIENT\nC001\n")
    base = tmp_path / "base"
    (base / "exports").mkdir(parents=True)
    os.symlink(outside, base / "exports" / "link.csv")
    with pytest.raises(SourceError) as caught:
        read(csv_adapter(base), None)
    assert caught.value.permanent


def test_overlong_line_is_an_error_row(tmp_path: Path) -> None:
    write(tmp_path / "exports" / "a.csv",
          b"NUM_CLIENT;NOM\n" + b"C001;" + b"x" * 5000 + b"\nC001;ok\n")
    options = {"datasets": {"invoices": {"pattern": "exports/*.csv", "delimiter": ";",
                                         "max_line_bytes": 1000}}}
    rows = read(csv_adapter(tmp_path, options=options), None)
    assert [row.error for row in rows] == ["line longer than 1000 bytes", None]
    assert rows[1].values == {"NUM_CLIENT": "C001", "NOM": "ok"}
    assert rows[1].locator == f"exports/a.csv:3 {content_hash('C001;ok')}"


def test_csv_reading_streams(tmp_path: Path) -> None:
    line = "C{:06d};" + "z" * 40 + ";12,34\n"
    with (tmp_path / "big.csv").open("w", encoding="latin-1") as handle:
        handle.write("NUM_CLIENT;NOM;MONTANT\n")
        for i in range(60_000):
            handle.write(line.format(i))
    assert (tmp_path / "big.csv").stat().st_size > 3_000_000
    options = {"datasets": {"big": {"pattern": "big.csv", "delimiter": ";"}}}
    rows = csv_adapter(tmp_path, options=options).read("big", customer_key=None,
                                                        customer_field="NUM_CLIENT")
    tracemalloc.start()
    try:
        count = sum(1 for _ in rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 60_000
    assert peak < 1_000_000


# -- fixed width -------------------------------------------------------------------------

COLUMNS = [{"name": "PDL", "start": 0, "length": 14},
           {"name": "NOM", "start": 14, "length": 20},
           {"name": "KWH", "start": 34, "length": 6}]


def record(pdl: str, name: str, kwh: str) -> str:
    return f"{pdl:<14}{name:<20}{kwh:>6}"


def fw_adapter(base: Path, dataset_options: dict[str, Any], limiter: Any = None,
               ) -> FixedWidthAdapter:
    options = {"datasets": {"readings": {"pattern": "releves/*.dat", "encoding": "cp500",
                                         "columns": COLUMNS, "skip_if_prefix": ["HDR", "TRL"],
                                         **dataset_options}}}
    return FixedWidthAdapter(options=options, connection=str(base), limiter=limiter)


def test_fixed_width_ebcdic_records(tmp_path: Path, limiter: Any) -> None:
    records = [
        f"{'HDR20240101':<40}",
        record("12345678901234", "Hélène Dupré", "001234"),
        record("99999999999999", "Zoë", "42"),
        record("12345678901234", "Bad\x00Name", "1"),
        record("12345678901234", "Noël", "7"),
        f"{'TRL00004':<40}",
    ]
    data = "".join(records).encode("cp500") + "1234567890".encode("cp500")
    write(tmp_path / "releves" / "f1.dat", data)
    source = fw_adapter(tmp_path, {"record_length": 40}, limiter)

    rows = read(source, "12345678901234", dataset="readings", field="PDL")
    assert [(where(row), row.error) for row in rows] == [
        ("releves/f1.dat#record 2", None),
        ("releves/f1.dat#record 4", "bad encoding: control character U+0000"),
        ("releves/f1.dat#record 5", None),
    ]
    assert rows[0].values == {"PDL": "12345678901234", "NOM": "Hélène Dupré", "KWH": "001234"}
    assert rows[1].values["line"].startswith("12345678901234Bad\\x00Name")

    everyone = read(source, None, dataset="readings", field="PDL")
    assert [row.values.get("PDL") for row in everyone if row.error is None] == [
        "12345678901234", "99999999999999", "12345678901234"]
    assert everyone[-1].error == "expected 40 bytes, got 10"
    assert everyone[-1].locator == f"releves/f1.dat#record 7 {content_hash('1234567890'.encode('cp500'))}"
    assert limiter.calls == 2


def test_fixed_width_lines_in_ebcdic(tmp_path: Path) -> None:
    newline = "\n"
    lines = ["HDR", record("11111111111111", "Ana", "5"), "",
             record("22222222222222", "Bob", "6").rstrip(), "22222222222222Short"]
    write(tmp_path / "releves" / "f.dat", newline.join(lines).encode("cp500"))
    rows = read(fw_adapter(tmp_path, {"record_length": None}), "22222222222222",
                dataset="readings", field="PDL")
    assert [(where(row), row.error) for row in rows] == [
        ("releves/f.dat:4", None),
        ("releves/f.dat:5", "expected 3 fields, got 2"),
    ]
    assert rows[0].values == {"PDL": "22222222222222", "NOM": "Bob", "KWH": "6"}


def test_fixed_width_latin1_lines_with_crlf(tmp_path: Path) -> None:
    text = "\r\n".join([record("11111111111111", "Éric", "5"), "TRL"]) + "\r\n"
    write(tmp_path / "releves" / "f.dat", text.encode("latin-1"))
    rows = read(fw_adapter(tmp_path, {"encoding": "latin-1"}), None, dataset="readings",
                field="PDL")
    assert [row.values for row in rows] == [{"PDL": "11111111111111", "NOM": "Éric",
                                             "KWH": "5"}]
    assert rows[0].locator.startswith("releves/f.dat:1 sha256:")


@pytest.mark.parametrize("bad", [
    {"columns": []},
    {"columns": [{"name": "PDL", "start": -1, "length": 14}]},
    {"columns": [{"name": "PDL", "start": 0, "length": 14},
                 {"name": "PDL", "start": 14, "length": 1}]},
    {"record_length": 20},
    {"encoding": "utf-16"},
    {"encoding": "no-such-codec"},
])
def test_fixed_width_bad_configuration_is_permanent(tmp_path: Path, bad: dict[str, Any]) -> None:
    write(tmp_path / "releves" / "f.dat", b"")
    with pytest.raises(SourceError) as caught:
        read(fw_adapter(tmp_path, bad), None, dataset="readings", field="PDL")
    assert caught.value.permanent
