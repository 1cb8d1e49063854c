"""Writing the ground truth: the records each registered customer must get back, per dataset.

Files are NDJSON, one expected record per line, written as the legacy data is generated (so a
100 000-customer insurer fits in little memory):

    ground_truth/<dataset-slug>.ndjson   {"customer": "C00001", "key": "...", "data": {...}}
    ground_truth/malformed.ndjson        {"source", "dataset", "customer", "kind", "detail"}

`key` is the dataset's natural key as the store computes it: "|".join(str(data[f]) ...).
The values are computed from the generator's own numbers, never by running the mapping.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from restitution.catalogue import BY_SLUG

MALFORMED_FILE = "malformed.ndjson"
CUSTOMERS_FILE = "customers.json"
MANIFEST_FILE = "manifest.json"


def record_key(dataset: str, data: dict[str, Any]) -> str:
    return "|".join(str(data[name]) for name in BY_SLUG[dataset].natural_key)


def iso_utc(moment: datetime) -> str:
    """An aware date-time as the datasets write it: UTC, second precision, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cents_to_euros(cents: int) -> float:
    """12345 → 123.45 (the nearest float to the exact amount)."""
    return cents / 100


def milli_to_units(milli: int) -> float:
    """12345 (thousandths) → 12.345, e.g. watts → kW or Wh → kWh."""
    return milli / 1000


def masked_number(number: str) -> str:
    """A correspondent's number as the datasets show it: first 5 and last 2 characters kept."""
    if len(number) <= 7:
        return "X" * len(number)
    return number[:5] + "X" * (len(number) - 7) + number[-2:]


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


class GroundTruthWriter:
    """Streams expected records and malformed-row notes to `<out>/ground_truth/`."""

    def __init__(self, directory: Path, datasets: list[str]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter({slug: 0 for slug in datasets})
        self.malformed: list[dict[str, str]] = []
        self._files: dict[str, IO[str]] = {
            slug: open(directory / f"{slug}.ndjson", "w", encoding="utf-8", newline="\n")
            for slug in datasets
        }

    def add(self, dataset: str, customer: str, data: dict[str, Any]) -> None:
        line = {"customer": customer, "key": record_key(dataset, data), "data": data}
        self._files[dataset].write(_dump(line))
        self.counts[dataset] += 1

    def add_malformed(self, *, source: str, dataset: str, customer: str, kind: str,
                      detail: str) -> None:
        self.malformed.append({"source": source, "dataset": dataset, "customer": customer,
                               "kind": kind, "detail": detail})

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        with open(self.directory / MALFORMED_FILE, "w", encoding="utf-8", newline="\n") as handle:
            for note in self.malformed:
                handle.write(_dump(note))


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def rewrite_ndjson(path: Path, lines: Iterator[dict[str, Any]]) -> None:
    """Replace an NDJSON file atomically with the given lines (streamed to a temporary file)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(_dump(line))
    temporary.replace(path)
