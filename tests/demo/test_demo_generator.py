"""The demo generator: determinism, customers, clock changes, sums and schema validity."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from demo.generator import DATASETS_BY_SYSTEM, generate, main
from demo.truth import iso_utc, read_ndjson, record_key
from restitution.catalogue import BY_SLUG

PARIS = ZoneInfo("Europe/Paris")
SHORT = {"energy_start": date(2025, 3, 29), "energy_end": date(2025, 3, 31)}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def ground_truth(out_dir: Path, dataset: str) -> list[dict[str, Any]]:
    return list(read_ndjson(out_dir / "ground_truth" / f"{dataset}.ndjson"))


def test_same_seed_same_bytes_and_other_seed_other_data(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", customers=4, seed=42, **SHORT)
    second = generate(tmp_path / "b", customers=4, seed=42, **SHORT)
    digest = tree_digest(tmp_path / "a")
    assert len(digest) > 20
    assert digest == tree_digest(tmp_path / "b")
    assert first.customers == second.customers and first.counts == second.counts
    # Re-generating into the same directory leaves no stale file behind.
    generate(tmp_path / "a", customers=4, seed=42, **SHORT)
    assert tree_digest(tmp_path / "a") == digest

    generate(tmp_path / "c", customers=4, seed=43, **SHORT)
    other = tree_digest(tmp_path / "c")
    for name in ("ground_truth/insurance-contracts.ndjson", "ground_truth/energy-load-curve.ndjson",
                 "ground_truth/telco-call-log.ndjson", "ground_truth/customers.json"):
        assert other[name] != digest[name]


def test_malformed_rows_are_only_additions(tmp_path: Path) -> None:
    with_bad = generate(tmp_path / "bad", customers=5, seed=3, **SHORT)
    without = generate(tmp_path / "good", customers=5, seed=3, malformed=False, **SHORT)
    assert with_bad.malformed and not without.malformed
    for datasets in DATASETS_BY_SYSTEM.values():
        for dataset in datasets:
            name = f"ground_truth/{dataset}.ndjson"
            assert (tmp_path / "bad" / name).read_bytes() == (tmp_path / "good" / name).read_bytes()
    assert (tmp_path / "good" / "ground_truth" / "malformed.ndjson").read_text() == ""


def test_customers_and_identities(small_demo: Any) -> None:
    out = small_demo.out_dir
    customers = json.loads((out / "ground_truth" / "customers.json").read_text(encoding="utf-8"))
    assert customers == small_demo.customers
    assert [c["username"] for c in customers] == ["alice", "bob", "customer003", "customer004",
                                                  "customer005", "customer006"]
    assert [c["reference"] for c in customers[:2]] == ["C00001", "C00002"]
    assert customers[0]["display_name"] == "Alice Martin"
    for customer in customers[:2]:
        assert set(customer["identities"]) == {"insurer", "energy", "telco"}
    for customer in customers:
        identities = customer["identities"]
        assert re.fullmatch(r"S[0-9]{7}", identities["insurer"])
        assert "energy" not in identities or re.fullmatch(r"[0-9]{14}", identities["energy"])
        assert "telco" not in identities or re.fullmatch(r"ACC-[0-9]{6}", identities["telco"])
    # Legacy systems also hold people who never registered at the gateway.
    with sqlite3.connect(out / "insurer.sqlite3") as db:
        members = {row[0] for row in db.execute("SELECT NUM_SOCIETAIRE FROM T_SOCIETAIRE")}
    registered = {c["identities"]["insurer"] for c in customers}
    assert registered < members and len(members - registered) >= 3
    accounts = {a["account_id"] for a in
                json.loads((out / "telco" / "accounts.json").read_text(encoding="utf-8"))}
    assert len(accounts - {c["identities"].get("telco") for c in customers}) >= 3
    # Ground truth only ever names registered customers.
    references = {c["reference"] for c in customers}
    for dataset in small_demo.counts:
        assert {line["customer"] for line in ground_truth(out, dataset)} <= references


def _check_datetime(value: str) -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value), value
    datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


def _exact_multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    """multipleOf in decimal: jsonschema's own check works in binary floating point and
    refuses exact amounts such as 0.07 (see test_float_money_and_multiple_of)."""
    if validator.is_type(instance, "number") and Decimal(repr(instance)) % Decimal(repr(step)):
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


ExactValidator = validators.extend(Draft202012Validator, {"multipleOf": _exact_multiple_of})


def test_exact_multiple_of_checker() -> None:
    validator = ExactValidator({"type": "number", "multipleOf": 0.01})
    assert validator.is_valid(0.07) and validator.is_valid(123.45) and validator.is_valid(0)
    assert not validator.is_valid(0.005) and not validator.is_valid(1.234)


@pytest.mark.parametrize("fixture", ["small_demo", "full_window_demo"])
def test_ground_truth_is_valid_and_keyed(request: pytest.FixtureRequest, fixture: str) -> None:
    manifest = request.getfixturevalue(fixture)
    for dataset, count in manifest.counts.items():
        definition = BY_SLUG[dataset]
        validator = ExactValidator(definition.schema, format_checker=FormatChecker())
        datetime_fields = [name for name, spec in definition.properties.items()
                           if spec.get("format") == "date-time"]
        keys = set()
        lines = ground_truth(manifest.out_dir, dataset)
        assert len(lines) == count
        for line in lines:
            assert set(line) == {"customer", "key", "data"}
            assert not [e.message for e in validator.iter_errors(line["data"])], line
            for name in datetime_fields:
                _check_datetime(line["data"][name])
            assert line["key"] == record_key(dataset, line["data"])
            assert line["key"] not in keys
            keys.add(line["key"])


def test_the_stock_validator_accepts_every_exact_amount() -> None:
    # The pipeline validates with the stock validator: no schema rule may depend on binary
    # floating point (multipleOf 0.01 refused 0.07).
    validator = Draft202012Validator(BY_SLUG["telco-call-log"].schema["properties"]["cost"])
    assert all(validator.is_valid(cents / 100) for cents in range(0, 100_000, 7))


def _local_day(utc_text: str) -> date:
    moment = datetime.strptime(utc_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return moment.astimezone(PARIS).date()


def test_clock_changes_in_load_curve_files(full_window_demo: Any) -> None:
    out = full_window_demo.out_dir
    alice = full_window_demo.customers[0]["identities"]["energy"]
    curve = out / "metering" / "courbe_de_charge"

    def readings(day: date) -> dict[str, list[str]]:
        path = curve / f"{day:%Y}" / f"{day:%m}" / f"CDC_{day:%Y%m%d}.csv"
        with open(path, encoding="latin-1", newline="") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
        assert rows[0] == ["Identifiant PDL", "Date et heure", "Puissance moyenne (kW)"]
        by_pdl: dict[str, list[str]] = defaultdict(list)
        for pdl, stamp, _ in rows[1:]:
            by_pdl[pdl].append(stamp)
        return by_pdl

    spring = readings(date(2025, 3, 30))
    assert {len(v) for v in spring.values()} == {46}
    assert not any(" 02:" in stamp for stamp in spring[alice])
    for autumn_day in (date(2024, 10, 27), date(2025, 10, 26)):
        autumn = readings(autumn_day)
        assert {len(v) for v in autumn.values()} == {50}
        stamps = [s[-5:] for s in autumn[alice]]
        assert stamps[:10] == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30",
                               "02:00", "02:30", "03:00", "03:30"]
    assert {len(v) for v in readings(date(2025, 1, 15)).values()} == {48}


def test_load_curve_is_continuous_in_utc(full_window_demo: Any) -> None:
    start, end = full_window_demo.energy_start, full_window_demo.energy_end
    records = [line["data"] for line in ground_truth(full_window_demo.out_dir, "energy-load-curve")]
    alice = full_window_demo.customers[0]["identities"]["energy"]
    starts, gaps = [], 0
    for block in records:
        if block["delivery_point"] != alice:
            continue
        first = datetime.strptime(block["start"], "%Y-%m-%dT%H:%M:%SZ")
        assert _local_day(block["start"]) == date.fromisoformat(block["day"])
        assert block["expected_readings"] * 1800 == block["duration_seconds"]
        slots = sorted([r["start"] for r in block["readings"]] + block["missing"])
        assert slots == [(first + timedelta(minutes=30 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
                         for n in range(block["expected_readings"])]
        assert block["missing_count"] == len(block["missing"])
        gaps += block["missing_count"]
        starts += slots
    assert len(set(starts)) == len(starts)
    starts.sort()
    first = datetime(start.year, start.month, start.day, tzinfo=PARIS).astimezone(UTC)
    after = end + timedelta(days=1)
    last = datetime(after.year, after.month, after.day, tzinfo=PARIS).astimezone(UTC)
    assert starts[0] == iso_utc(first)
    assert starts[-1] == iso_utc(last - timedelta(minutes=30))
    assert len(starts) == (last - first) // timedelta(minutes=30)
    # Winter consumption is higher than summer consumption.
    daily = {line["data"]["day"]: line["data"]["energy_kwh"]
             for line in ground_truth(full_window_demo.out_dir, "energy-daily-consumption")}
    january = [v for k, v in daily.items() if k.startswith("2025-01")]
    august = [v for k, v in daily.items() if k.startswith("2025-08")]
    assert sum(january) / len(january) > sum(august) / len(august)


def test_the_clock_change_days_are_23_and_25_hour_blocks(full_window_demo: Any) -> None:
    blocks = {(line["data"]["delivery_point"], line["data"]["day"]): line["data"]
              for line in ground_truth(full_window_demo.out_dir, "energy-load-curve")}
    shapes = {day: {(b["expected_readings"], b["duration_seconds"]) for (_, d), b in blocks.items() if d == day}
              for day in ("2025-03-30", "2025-10-26", "2024-10-27", "2025-01-15")}
    assert shapes == {"2025-03-30": {(46, 82800)}, "2025-10-26": {(50, 90000)},
                      "2024-10-27": {(50, 90000)}, "2025-01-15": {(48, 86400)}}
    gappy = [b for b in blocks.values() if b["missing_count"]]
    assert 1 <= len(gappy) <= 2 and all(1 <= b["missing_count"] <= 4 for b in gappy)


@pytest.mark.parametrize("fixture", ["small_demo", "full_window_demo"])
def test_daily_energy_is_the_sum_of_the_load_curve(request: pytest.FixtureRequest,
                                                   fixture: str) -> None:
    manifest = request.getfixturevalue(fixture)
    blocks = {(line["data"]["delivery_point"], date.fromisoformat(line["data"]["day"])): line["data"]
              for line in ground_truth(manifest.out_dir, "energy-load-curve")}
    daily = ground_truth(manifest.out_dir, "energy-daily-consumption")
    assert len(daily) == len(blocks)
    complete = 0
    for line in daily:
        data = line["data"]
        block = blocks[(data["delivery_point"], date.fromisoformat(data["day"]))]
        assert block["expected_readings"] in (46, 48, 50)
        if block["missing_count"]:
            continue  # the meter's daily register counts the half hours the curve lacks
        total = sum(Decimal(repr(r["value"])) * Decimal("0.5") for r in block["readings"])
        assert Decimal(repr(data["energy_kwh"])) == total.quantize(Decimal("0.001"), ROUND_HALF_UP)
        complete += 1
    assert complete >= len(daily) - 2


def test_metering_files_are_latin1_with_french_headers(small_demo: Any) -> None:
    base = small_demo.out_dir / "metering"
    daily = sorted(base.glob("consommation_quotidienne/*/CONSO_JOUR_*.csv"))
    assert [p.name for p in daily] == ["CONSO_JOUR_202510.csv"]
    raw = daily[0].read_bytes()
    assert raw.startswith("Identifiant PDL;Date;Énergie consommée (kWh)".encode("latin-1"))
    assert b"\r\n" in raw
    assert len(sorted(base.glob("courbe_de_charge/*/*/CDC_*.csv"))) == 3
    (contracts,) = sorted(base.glob("contrats/C5_CONTRATS_*.dat"))
    data = contracts.read_bytes()
    assert b"\n" not in data and len(data) % 100 == 0
    text = data.decode("cp500")
    assert text.startswith("HDR") and text[-100:].startswith("TRL")
    assert int(text[-100:][3:12]) == len(text) // 100 - 2


def test_insurer_database_has_legacy_oddities(small_demo: Any) -> None:
    with sqlite3.connect(small_demo.out_dir / "insurer.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        ends = {row[0] for row in db.execute("SELECT DT_FIN FROM T_CONTRAT")}
        padded = [row[0] for row in db.execute(
            "SELECT LB_OBJET_ASSURE FROM T_CONTRAT WHERE LB_OBJET_ASSURE IS NOT NULL")]
        premiums = [row[0] for row in db.execute("SELECT MT_PRIME_ANNUELLE FROM T_CONTRAT")]
    assert tables == {"T_SOCIETAIRE", "T_CONTRAT", "T_SINISTRE", "T_CODE_PRODUIT",
                      "T_CODE_STATUT", "T_CODE_NATURE_SINISTRE", "T_CODE_ETAT_SINISTRE"}
    assert None in ends and any(e and re.fullmatch(r"\d{8}", e) for e in ends)
    assert all(len(value) == 60 for value in padded)
    assert all(isinstance(p, int) for p in premiums)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path), "--customers", "3", "--seed", "5", "--systems", "insurer,telco",
          "--no-malformed"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["systems"] == ["insurer", "telco"] and summary["customer_count"] == 3
    assert summary["malformed"] == []
    assert not (tmp_path / "metering").exists()
    assert set(summary["counts"]) == {"insurance-contracts", "insurance-claims",
                                      "telco-call-log", "telco-invoices"}
    main([str(tmp_path), "--apply-changes"])
    changes = json.loads(capsys.readouterr().out)
    assert set(changes) == {"updated", "deleted", "created"}


def test_unknown_system_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown systems"):
        generate(tmp_path, systems=("insurer", "bank"))


@pytest.mark.slow
def test_insurer_scales_to_100k_customers(tmp_path: Path) -> None:
    manifest = generate(tmp_path, customers=100_000, systems=("insurer",))
    assert len(manifest.customers) == 100_000
    assert manifest.legacy["insurer"]["T_SOCIETAIRE"] == 110_000
    assert manifest.counts["insurance-contracts"] > 150_000
