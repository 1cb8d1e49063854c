"""What the benchmarks count must be right whatever the record shape: readings in day blocks and
in one-reading records, the metering source cut to its load curve, the plan's arithmetic."""

from __future__ import annotations

import math

import pytest

from tests.bench import energy, scaleplan


@pytest.mark.django_db
def test_readings_held_counts_a_day_block_s_readings_and_one_per_other_record():
    from restitution import store
    from restitution.catalogue import sync_catalogue
    from restitution.models import Customer, Dataset

    sync_catalogue()
    curve = Dataset.objects.get(slug=energy.LOAD_CURVE)
    blocks, single = Customer.objects.create(reference="C-BLOCKS"), Customer.objects.create(reference="C-ONE")
    writer = store.SnapshotWriter(dataset_id=curve.pk, source_id=None)
    for day, count in (("2025-03-30", 46), ("2025-10-26", 50)):  # both DST days
        writer.add(customer_id=blocks.pk, key=f"PDL|{day}", record_at=None, locator="t",
                   data={"day": day, "readings": [{"start": f"{day}T00:00:00Z", "value": n} for n in range(count)]})
    writer.add(customer_id=single.pk, key="PDL|2025-01-01T00:00:00Z", record_at=None, locator="t",
               data={"start": "2025-01-01T00:00:00Z", "average_power_kw": 1.5})
    writer.add(customer_id=single.pk, key="PDL|2025-01-01T00:30:00Z", record_at=None, locator="t",
               data={"start": "2025-01-01T00:30:00Z", "average_power_kw": 1.2, "readings": "not a list"})
    writer.finish()

    assert energy.readings_held(curve.pk) == (4, 98)
    assert energy.readings_held(curve.pk, blocks.pk) == (2, 96)
    assert energy.readings_held(curve.pk, single.pk) == (2, 2)


def test_the_metering_source_is_cut_to_the_load_curve_only():
    definition = energy.load_curve_source()
    assert definition["datasets"] == [energy.LOAD_CURVE]
    assert set(definition["mappings"]) == {energy.LOAD_CURVE}
    assert set(definition["options"]["datasets"]) == {energy.LOAD_CURVE}
    from demo.sources import DEMO_SOURCES  # the demo's own definition is left whole

    assert any(len(s["datasets"]) > 1 and energy.LOAD_CURVE in s["datasets"] for s in DEMO_SOURCES)


def _row(text: str, customers: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {customers} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_plan_divides_lines_by_the_workers_speed_and_multiplies_bytes():
    # 48 M nightly lines for 1 M customers; 10 000/3 lines/s per worker: 4 workers take 1 hour.
    figures = {"store_bytes_per_reading": 50, "gateway_load_curve_rows_per_s": 10_000 / 3,
               "per_customer_run_overhead_ms": 36, "ratio_two_workers_vs_one": float("nan")}
    row = _row(scaleplan.plan(figures), "1,000,000")
    assert row[1] == "35.0 G" and row[2] == "1.8 TB"  # 35.04 G readings × 50 B
    assert row[4] == "1.00" and row[5] == "0.25"
    # Two workers at 1.5 × one: each added worker brings 0.75 of one; 4 workers = 3.25 ×.
    row = _row(scaleplan.plan({**figures, "ratio_two_workers_vs_one": 1.5}), "1,000,000")
    assert math.isclose(float(row[4]), 4 / 3.25, abs_tol=0.005)
    assert "assumed linear" in scaleplan.plan(figures)
