"""Generate the demo legacy systems and the ground truth, deterministically from a seed.

    generate(out_dir, customers=24, seed=20251115)  →  DemoManifest

writes into `out_dir`:

    insurer.sqlite3                 the insurer's policy database (see insurer.py)
    metering/                       the network operator's exports (see energy.py)
    telco/                          the telco API's data (see telco.py; served by telco_server)
    ground_truth/customers.json     the registered customers and their legacy identities
    ground_truth/<dataset>.ndjson   the records each customer must get back (see truth.py)
    ground_truth/malformed.ndjson   the legacy rows added broken on purpose, to be quarantined
    ground_truth/manifest.json      parameters and counts

Only `random.Random` instances seeded from `seed` are used, and no clock: the same arguments
give the same bytes. `apply_changes()` then simulates a legacy update (for incremental runs).

    python -m demo.generator OUT_DIR --customers 24 --seed 20251115 \\
        --systems insurer,energy,telco [--no-malformed]
    python -m demo.generator OUT_DIR --apply-changes [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, select, update

from . import energy, insurer, telco
from .people import SYSTEMS, registered_customers
from .truth import (
    CUSTOMERS_FILE,
    MANIFEST_FILE,
    GroundTruthWriter,
    read_ndjson,
    record_key,
    rewrite_ndjson,
)

GROUND_TRUTH_DIR = "ground_truth"
DATASETS_BY_SYSTEM: dict[str, tuple[str, ...]] = {
    "insurer": ("insurance-contracts", "insurance-claims"),
    "energy": ("energy-load-curve", "energy-daily-consumption", "energy-contract"),
    "telco": ("telco-call-log", "telco-invoices"),
}
#: What `generate()` writes in `out_dir`; removed first so no stale file survives a re-run.
_OUTPUTS = (insurer.DB_FILENAME, energy.EXPORT_DIR, telco.DATA_DIR, GROUND_TRUTH_DIR)


@dataclass
class DemoManifest:
    """What `generate()` wrote: the customers, and how many records each dataset expects."""

    out_dir: Path
    seed: int
    systems: tuple[str, ...]
    customers: list[dict[str, Any]]
    counts: dict[str, int]  # dataset slug → expected (ground-truth) records
    malformed: list[dict[str, str]]
    legacy: dict[str, dict[str, int]] = field(default_factory=dict)  # system → raw volumes
    energy_start: date | None = None
    energy_end: date | None = None

    @property
    def ground_truth_dir(self) -> Path:
        return self.out_dir / GROUND_TRUTH_DIR

    def summary(self, *, with_out_dir: bool = True) -> dict[str, Any]:
        """The manifest without the customer list, JSON-ready."""
        data = asdict(self)
        data.pop("customers")
        data["out_dir"] = str(self.out_dir)
        if not with_out_dir:
            data.pop("out_dir")  # ground_truth/manifest.json stays the same wherever it is
        data["customer_count"] = len(self.customers)
        data["systems"] = list(self.systems)
        for name in ("energy_start", "energy_end"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


def generate(out_dir: Path, *, customers: int = 24, seed: int = 20251115,
             systems: tuple[str, ...] = SYSTEMS, malformed: bool = True,
             energy_start: date = date(2024, 10, 1),
             energy_end: date = date(2025, 10, 31)) -> DemoManifest:
    """Write the demo legacy systems and their ground truth into `out_dir` (see module doc)."""
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)} (known: {', '.join(SYSTEMS)})")
    if customers < 1:
        raise ValueError("at least one customer (alice)")
    systems = tuple(s for s in SYSTEMS if s in systems)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    people = registered_customers(seed, customers)
    datasets = [slug for system in systems for slug in DATASETS_BY_SYSTEM[system]]
    truth = GroundTruthWriter(out_dir / GROUND_TRUTH_DIR, datasets)
    identities: dict[str, dict[str, str]] = {system: {} for system in systems}
    legacy: dict[str, dict[str, int]] = {}
    try:
        if "insurer" in systems:
            result_i = insurer.generate(out_dir, seed=seed, customers=people, truth=truth,
                                        malformed=malformed)
            identities["insurer"] = result_i.identities
            legacy["insurer"] = result_i.rows
        if "energy" in systems:
            result_e = energy.generate(out_dir, seed=seed, customers=people, truth=truth,
                                       malformed=malformed, start=energy_start, end=energy_end)
            identities["energy"] = result_e.identities
            legacy["energy"] = {"files": result_e.files,
                                "load_curve_lines": result_e.load_curve_lines,
                                "daily_lines": result_e.daily_lines,
                                "contract_records": result_e.contract_records}
        if "telco" in systems:
            result_t = telco.generate(out_dir, seed=seed, customers=people, truth=truth,
                                      malformed=malformed)
            identities["telco"] = result_t.identities
            legacy["telco"] = {"accounts": result_t.accounts, "calls": result_t.calls,
                               "invoices": result_t.invoices}
    finally:
        truth.close()

    customer_list = [
        {
            "reference": person.reference,
            "username": person.username,
            "display_name": person.display_name,
            "identities": {system: identities[system][str(person.reference)]
                           for system in systems if str(person.reference) in identities[system]},
        }
        for person in people
    ]
    with open(out_dir / GROUND_TRUTH_DIR / CUSTOMERS_FILE, "w", encoding="utf-8",
              newline="\n") as handle:
        json.dump(customer_list, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    manifest = DemoManifest(
        out_dir=out_dir, seed=seed, systems=systems, customers=customer_list,
        counts=dict(truth.counts), malformed=list(truth.malformed), legacy=legacy,
        energy_start=energy_start if "energy" in systems else None,
        energy_end=energy_end if "energy" in systems else None,
    )
    with open(out_dir / GROUND_TRUTH_DIR / MANIFEST_FILE, "w", encoding="utf-8",
              newline="\n") as handle:
        json.dump(manifest.summary(with_out_dir=False), handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return manifest


def load_customers(out_dir: Path) -> list[dict[str, Any]]:
    with open(Path(out_dir) / GROUND_TRUTH_DIR / CUSTOMERS_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def apply_changes(out_dir: Path, *, seed: int = 1,
                  insurer_url: str | None = None) -> dict[str, list[dict[str, str]]]:
    """Simulate a change in the insurer's database for alice, and update the ground truth.

    One of alice's contracts gets a new premium, one of her claims is deleted and a new claim
    (declared after the snapshot date) is inserted. The change is made in
    `<out_dir>/insurer.sqlite3` and, when `insurer_url` is given, also in that copy (see
    `insurer.copy_to`). Returns {"updated": [...], "deleted": [...], "created": [...]}, each
    entry {"dataset": slug, "customer": reference, "key": natural key}.
    """
    out_dir = Path(out_dir)
    alice = next((c for c in load_customers(out_dir) if c["username"] == "alice"), None)
    if alice is None or "insurer" not in alice["identities"]:
        raise ValueError("alice has no insurer identity in this demo data")
    reference = alice["reference"]
    truth_dir = out_dir / GROUND_TRUTH_DIR
    contracts_path = truth_dir / "insurance-contracts.ndjson"
    claims_path = truth_dir / "insurance-claims.ndjson"
    contracts = {line["key"]: line["data"] for line in read_ndjson(contracts_path)
                 if line["customer"] == reference}
    claims = sorted(line["key"] for line in read_ndjson(claims_path)
                    if line["customer"] == reference)
    if not contracts or not claims:
        raise ValueError("alice has no contract or no claim left to change")
    rng = random.Random(f"changes:{seed}")
    sqlite_url = f"sqlite:///{(out_dir / insurer.DB_FILENAME).resolve()}"

    changed_key = rng.choice(sorted(contracts))
    deleted_key = rng.choice(claims)
    open_contracts = sorted(
        key for key, data in contracts.items()
        if data["status"] == "active" and insurer.claimable(data["product_code"]))
    claim_contract = rng.choice(open_contracts or sorted(contracts))

    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            t_contract, t_claim = insurer.T_CONTRAT, insurer.T_SINISTRE
            premium = connection.execute(select(t_contract.c.MT_PRIME_ANNUELLE).where(
                t_contract.c.NUM_CONTRAT == changed_key)).scalar_one()
            contract_row = dict(connection.execute(select(t_contract).where(
                t_contract.c.NUM_CONTRAT == claim_contract)).one()._mapping)
            last_rowid = connection.execute(select(func.max(t_claim.c.ID_SINISTRE))).scalar() or 0
            numbers = connection.execute(select(t_claim.c.NUM_SINISTRE)).scalars().all()
    finally:
        engine.dispose()
    new_premium = premium + max(100, int(premium * rng.uniform(0.03, 0.12)))
    last_serial = max((int(n[-6:]) for n in numbers if n and n[-6:].isdigit()), default=0)
    new_claim = insurer.new_claim_row(rng, contract_row, rowid=last_rowid + 1,
                                      serial=last_serial + rng.randint(1, 5))

    for url in [sqlite_url] + ([insurer_url] if insurer_url else []):
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(update(insurer.T_CONTRAT)
                                   .where(insurer.T_CONTRAT.c.NUM_CONTRAT == changed_key)
                                   .values(MT_PRIME_ANNUELLE=new_premium))
                connection.execute(delete(insurer.T_SINISTRE)
                                   .where(insurer.T_SINISTRE.c.NUM_SINISTRE == deleted_key))
                connection.execute(insurer.T_SINISTRE.insert(), [new_claim])
        finally:
            engine.dispose()

    new_record = insurer.claim_record(new_claim)
    new_key = record_key("insurance-claims", new_record)

    def updated_contracts() -> Any:
        for line in read_ndjson(contracts_path):
            if line["customer"] == reference and line["key"] == changed_key:
                line["data"]["annual_premium"] = new_premium / 100
            yield line

    def updated_claims() -> Any:
        for line in read_ndjson(claims_path):
            if not (line["customer"] == reference and line["key"] == deleted_key):
                yield line
        yield {"customer": reference, "key": new_key, "data": new_record}

    rewrite_ndjson(contracts_path, updated_contracts())
    rewrite_ndjson(claims_path, updated_claims())
    _refresh_counts(truth_dir)
    return {
        "updated": [{"dataset": "insurance-contracts", "customer": reference, "key": changed_key}],
        "deleted": [{"dataset": "insurance-claims", "customer": reference, "key": deleted_key}],
        "created": [{"dataset": "insurance-claims", "customer": reference, "key": new_key}],
    }


def _refresh_counts(truth_dir: Path) -> None:
    path = truth_dir / MANIFEST_FILE
    if not path.is_file():
        return
    summary = json.loads(path.read_text(encoding="utf-8"))
    for slug in summary.get("counts", {}):
        ndjson = truth_dir / f"{slug}.ndjson"
        if ndjson.is_file():
            with open(ndjson, encoding="utf-8") as handle:
                summary["counts"][slug] = sum(1 for line in handle if line.strip())
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _parse_day(text: str) -> date:
    return date.fromisoformat(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m demo.generator",
        description="Generate the demo legacy systems and their ground truth.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--customers", type=int, default=24)
    parser.add_argument("--seed", type=int, default=None,
                        help="generation seed (default 20251115), or change seed (default 1)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, among " + ", ".join(SYSTEMS))
    parser.add_argument("--no-malformed", action="store_true",
                        help="do not add the malformed rows")
    parser.add_argument("--energy-start", type=_parse_day, default=date(2024, 10, 1))
    parser.add_argument("--energy-end", type=_parse_day, default=date(2025, 10, 31))
    parser.add_argument("--apply-changes", action="store_true",
                        help="instead of generating, change alice's insurer data in OUT_DIR")
    parser.add_argument("--insurer-url", default=None,
                        help="with --apply-changes: also change this copy of the insurer DB")
    args = parser.parse_args(argv)
    if args.apply_changes:
        changes = apply_changes(args.out_dir, seed=1 if args.seed is None else args.seed,
                                insurer_url=args.insurer_url)
        print(json.dumps(changes, indent=1))  # noqa: T201
        return
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    manifest = generate(args.out_dir, customers=args.customers,
                        seed=20251115 if args.seed is None else args.seed, systems=systems,
                        malformed=not args.no_malformed, energy_start=args.energy_start,
                        energy_end=args.energy_end)
    print(json.dumps(manifest.summary(), ensure_ascii=False, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()

