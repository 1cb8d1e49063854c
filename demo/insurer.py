"""The demonstration insurer's policy database: its schema, its generation, and copying it.

The schema imitates a mutual insurer's 1990s policy system: upper-case French table and column
names, dates as 'YYYYMMDD' strings, amounts in integer cents, CHAR-padded labels, code tables,
and end dates that may be NULL, '', blanks or '00000000' for "no end". It is declared once, as
SQLAlchemy Core metadata, so that `copy_to()` can rebuild it in MariaDB or PostgreSQL (the
table and column names are left unquoted: PostgreSQL folds them to lower case, as the source
queries expect).

Claims belong to a member only through their contract (T_SINISTRE.NUM_CONTRAT).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CHAR,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url

from .people import Person, legacy_only_people, malformed_targets, rng_for
from .truth import GroundTruthWriter, cents_to_euros

SOURCE_SLUG = "insurer-policies"
DB_FILENAME = "insurer.sqlite3"
#: The day the legacy snapshot was taken: nothing in the database happens after it.
SNAPSHOT = date(2025, 10, 31)
BATCH_SIZE = 5000
INSURED_OBJECT_WIDTH = 60

METADATA = MetaData()


def _col(name: str, type_: Any, **kwargs: Any) -> Column[Any]:
    return Column(name, type_, quote=False, **kwargs)


T_SOCIETAIRE = Table(
    "T_SOCIETAIRE", METADATA,
    _col("NUM_SOCIETAIRE", CHAR(8), primary_key=True),
    _col("CD_CIVILITE", String(3), nullable=False),
    _col("LB_NOM", String(40), nullable=False),
    _col("LB_PRENOM", String(40), nullable=False),
    _col("DT_NAISSANCE", CHAR(8), nullable=False),
    _col("LB_ADRESSE", String(80), nullable=False),
    _col("CD_POSTAL", CHAR(5), nullable=False),
    _col("LB_VILLE", String(40), nullable=False),
    _col("LB_EMAIL", String(80)),
    _col("DT_ADHESION", CHAR(8), nullable=False),
    quote=False,
)
T_CONTRAT = Table(
    "T_CONTRAT", METADATA,
    _col("NUM_CONTRAT", String(12), primary_key=True),
    _col("NUM_SOCIETAIRE", CHAR(8), nullable=False),
    _col("CD_PRODUIT", CHAR(3), nullable=False),
    _col("CD_STATUT", CHAR(1), nullable=False),
    _col("DT_EFFET", CHAR(8), nullable=False),
    _col("DT_FIN", CHAR(8)),
    _col("MT_PRIME_ANNUELLE", Integer, nullable=False),
    _col("LB_OBJET_ASSURE", CHAR(INSURED_OBJECT_WIDTH)),
    _col("MT_FRANCHISE", Integer),
    quote=False,
)
T_SINISTRE = Table(
    "T_SINISTRE", METADATA,
    _col("ID_SINISTRE", Integer, primary_key=True, autoincrement=False),
    _col("NUM_SINISTRE", String(16)),
    _col("NUM_CONTRAT", String(12), nullable=False),
    _col("DT_SURVENANCE", CHAR(8), nullable=False),
    _col("DT_DECLARATION", CHAR(8), nullable=False),
    _col("CD_NATURE", CHAR(3), nullable=False),
    _col("CD_ETAT", CHAR(2), nullable=False),
    _col("LB_DESCRIPTIF", String(250)),
    _col("MT_RECLAME", Integer),
    _col("MT_REGLE", Integer),
    quote=False,
)
T_CODE_PRODUIT = Table(
    "T_CODE_PRODUIT", METADATA,
    _col("CD_PRODUIT", CHAR(3), primary_key=True),
    _col("LB_PRODUIT", String(60), nullable=False),
    quote=False,
)
T_CODE_STATUT = Table(
    "T_CODE_STATUT", METADATA,
    _col("CD_STATUT", CHAR(1), primary_key=True),
    _col("LB_STATUT", String(30), nullable=False),
    quote=False,
)
T_CODE_NATURE_SINISTRE = Table(
    "T_CODE_NATURE_SINISTRE", METADATA,
    _col("CD_NATURE", CHAR(3), primary_key=True),
    _col("LB_NATURE", String(60), nullable=False),
    quote=False,
)
T_CODE_ETAT_SINISTRE = Table(
    "T_CODE_ETAT_SINISTRE", METADATA,
    _col("CD_ETAT", CHAR(2), primary_key=True),
    _col("LB_ETAT", String(40), nullable=False),
    quote=False,
)
Index("IX_CONTRAT_SOCIETAIRE", T_CONTRAT.c.NUM_SOCIETAIRE, quote=False)
Index("IX_SINISTRE_CONTRAT", T_SINISTRE.c.NUM_CONTRAT, quote=False)

# --- Code tables (their content is part of the legacy database) ---------------------------

PRODUCTS: dict[str, str] = {
    "AUT": "Assurance automobile",
    "MOT": "Assurance deux-roues",
    "MRH": "Multirisque habitation",
    "SAN": "Complémentaire santé",
    "PJU": "Protection juridique",
    "GAV": "Garantie des accidents de la vie",
    "SCO": "Assurance scolaire",
}
CONTRACT_STATUSES: dict[str, str] = {
    "E": "En vigueur", "S": "Suspendu", "R": "Résilié", "X": "Échu",
}
#: Legacy contract status → the dataset's enum (used by the mapping's `code` converter).
CONTRACT_STATUS_CODES: dict[str, str] = {
    "E": "active", "S": "suspended", "R": "terminated", "X": "terminated",
}
CLAIM_NATURES: dict[str, str] = {
    "DDE": "Dégât des eaux",
    "INC": "Incendie",
    "VOL": "Vol / cambriolage",
    "BDG": "Bris de glace",
    "ACC": "Accident de la circulation",
    "CAT": "Catastrophe naturelle",
    "TGN": "Tempête, grêle, neige",
    "LIT": "Litige",
    "COR": "Dommage corporel",
    "RCV": "Responsabilité civile",
}
CLAIM_STATES: dict[str, str] = {
    "OU": "Ouvert",
    "EX": "En cours d'expertise",
    "RG": "Réglé",
    "RF": "Refusé",
    "CS": "Classé sans suite",
}
#: Legacy claim state → the dataset's enum.
CLAIM_STATUS_CODES: dict[str, str] = {
    "OU": "open", "EX": "open", "RG": "settled", "RF": "rejected", "CS": "rejected",
}

# --- How the generator draws contracts and claims ------------------------------------------

_PRODUCT_WEIGHTS = {"AUT": 26, "MOT": 6, "MRH": 30, "SAN": 14, "PJU": 10, "GAV": 8, "SCO": 6}
_PREMIUM_CENTS = {
    "AUT": (35_000, 125_000), "MOT": (18_000, 60_000), "MRH": (12_000, 48_000),
    "SAN": (40_000, 185_000), "PJU": (6_000, 15_000), "GAV": (9_000, 26_000),
    "SCO": (1_000, 3_200),
}
_DEDUCTIBLES: dict[str, tuple[int | None, ...]] = {
    "AUT": (15_000, 30_000, 50_000), "MOT": (15_000, 30_000), "MRH": (0, 15_000, 30_000),
    "SAN": (None,), "PJU": (None, 20_000), "GAV": (None,), "SCO": (None,),
}
_PRODUCT_NATURES: dict[str, tuple[str, ...]] = {
    "AUT": ("ACC", "BDG", "VOL", "TGN"), "MOT": ("ACC", "VOL"),
    "MRH": ("DDE", "INC", "VOL", "BDG", "CAT", "TGN", "RCV"), "SAN": (),
    "PJU": ("LIT",), "GAV": ("COR",), "SCO": ("COR", "RCV"),
}
_CLAIMED_CENTS = {
    "DDE": (40_000, 650_000), "INC": (150_000, 4_500_000), "VOL": (30_000, 900_000),
    "BDG": (15_000, 120_000), "ACC": (50_000, 1_200_000), "CAT": (200_000, 3_000_000),
    "TGN": (30_000, 800_000), "LIT": (50_000, 400_000), "COR": (20_000, 2_500_000),
    "RCV": (10_000, 300_000),
}
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "DDE": ("Fuite sous l'évier de la cuisine, parquet gondolé.",
            "Infiltration depuis l'appartement du dessus, plafond de la salle de bains taché.",
            "Rupture du flexible de la machine à laver."),
    "INC": ("Départ de feu dans la cuisine (friteuse).", "Court-circuit du tableau électrique."),
    "VOL": ("Cambriolage pendant les congés, porte fracturée.",
            "Vol du véhicule sur la voie publique.", "Vol d'accessoires, vitre arrière brisée."),
    "BDG": ("Pare-brise fissuré par un gravillon.", "Baie vitrée brisée."),
    "ACC": ("Accrochage sur un parking, aile avant droite.", "Choc arrière à un feu rouge.",
            "Sortie de route sur chaussée glissante."),
    "CAT": ("Inondation du sous-sol après les crues.", "Fissures dues à la sécheresse."),
    "TGN": ("Tuiles arrachées par la tempête.", "Carrosserie grêlée."),
    "LIT": ("Litige avec un artisan sur des travaux non conformes.",
            "Désaccord avec le bailleur sur le dépôt de garantie."),
    "COR": ("Chute dans l'escalier, fracture du poignet.",
            "Blessure lors d'une activité sportive."),
    "RCV": ("Dégâts causés chez un voisin.", "Vélo d'un tiers endommagé."),
}
_CARS = ("RENAULT CLIO", "PEUGEOT 208", "CITROËN C3", "DACIA SANDERO", "PEUGEOT 3008",
         "TOYOTA YARIS", "RENAULT MÉGANE", "VOLKSWAGEN GOLF", "FIAT 500", "TESLA MODEL 3")
_BIKES = ("YAMAHA MT-07", "HONDA CB500F", "PIAGGIO MP3", "KAWASAKI Z650", "PEUGEOT KISBEE")
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"

#: Fixed shapes for the two demo customers, so the demo and `apply_changes` have material:
#: (product, status, number of claims).
_FIXED_PLANS = {
    "alice": (("MRH", "E", 2), ("AUT", "E", 1), ("SAN", "R", 0)),
    "bob": (("AUT", "E", 1), ("PJU", "E", 0), ("MRH", "R", 1)),
}


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def _random_day(rng: Any, first: date, last: date) -> date:
    if last <= first:
        return first
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _plate(rng: Any) -> str:
    letters = _PLATE_LETTERS
    return (f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(0, 999):03d}-"
            f"{rng.choice(letters)}{rng.choice(letters)}")


@dataclass
class InsurerResult:
    identities: dict[str, str] = field(default_factory=dict)  # customer reference → member id
    rows: dict[str, int] = field(default_factory=dict)  # legacy table → rows written


class _Batches:
    """Buffers rows per table and inserts them with executemany in batches."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.pending: dict[str, list[tuple[Any, ...]]] = {}
        self.counts: dict[str, int] = {}
        self.statements = {
            table.name: f"INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)}) "
                        f"VALUES ({', '.join('?' for _ in table.columns)})"
            for table in METADATA.sorted_tables
        }

    def add(self, table: Table, row: tuple[Any, ...]) -> None:
        rows = self.pending.setdefault(table.name, [])
        rows.append(row)
        if len(rows) >= BATCH_SIZE:
            self.flush(table.name)

    def flush(self, name: str | None = None) -> None:
        for table_name in [name] if name else list(self.pending):
            rows = self.pending.get(table_name) or []
            if rows:
                self.connection.executemany(self.statements[table_name], rows)
                self.counts[table_name] = self.counts.get(table_name, 0) + len(rows)
                rows.clear()


def contract_record(row: dict[str, Any]) -> dict[str, Any]:
    """The expected insurance-contracts record of a (well-formed) T_CONTRAT row."""
    end = (row["DT_FIN"] or "").strip()
    insured = (row["LB_OBJET_ASSURE"] or "").strip()
    return {
        "contract_id": row["NUM_CONTRAT"],
        "product_code": row["CD_PRODUIT"],
        "product": PRODUCTS[row["CD_PRODUIT"]],
        "status": CONTRACT_STATUS_CODES[row["CD_STATUT"]],
        "start_date": _iso(row["DT_EFFET"]),
        "end_date": None if end in ("", "00000000") else _iso(end),
        "annual_premium": cents_to_euros(row["MT_PRIME_ANNUELLE"]),
        "currency": "EUR",
        "insured_object": insured or None,
        "deductible": None if row["MT_FRANCHISE"] is None else cents_to_euros(row["MT_FRANCHISE"]),
    }


def claim_record(row: dict[str, Any]) -> dict[str, Any]:
    """The expected insurance-claims record of a (well-formed) T_SINISTRE row."""
    description = (row["LB_DESCRIPTIF"] or "").strip()
    return {
        "claim_id": row["NUM_SINISTRE"],
        "contract_id": row["NUM_CONTRAT"],
        "occurred_on": _iso(row["DT_SURVENANCE"]),
        "declared_on": _iso(row["DT_DECLARATION"]),
        "kind": CLAIM_NATURES[row["CD_NATURE"]],
        "status": CLAIM_STATUS_CODES[row["CD_ETAT"]],
        "description": description or None,
        "amount_claimed": None if row["MT_RECLAME"] is None else cents_to_euros(row["MT_RECLAME"]),
        "amount_paid": None if row["MT_REGLE"] is None else cents_to_euros(row["MT_REGLE"]),
        "currency": "EUR",
    }


def claimable(product: str) -> bool:
    """Whether claims can be declared on contracts of this product (not on health cover)."""
    return bool(_PRODUCT_NATURES.get(product))


def new_claim_row(rng: Any, contract: dict[str, Any], *, rowid: int, serial: int) -> dict[str, Any]:
    """A claim declared after the snapshot, still open (for simulated legacy changes)."""
    occurred = SNAPSHOT + timedelta(days=rng.randint(1, 12))
    declared = occurred + timedelta(days=rng.randint(0, 4))
    nature = rng.choice(_PRODUCT_NATURES.get(contract["CD_PRODUIT"]) or ("RCV",))
    low, high = _CLAIMED_CENTS[nature]
    return {
        "ID_SINISTRE": rowid,
        "NUM_SINISTRE": f"SIN{declared.year}{serial:06d}",
        "NUM_CONTRAT": contract["NUM_CONTRAT"],
        "DT_SURVENANCE": ymd(occurred),
        "DT_DECLARATION": ymd(declared),
        "CD_NATURE": nature,
        "CD_ETAT": "OU",
        "LB_DESCRIPTIF": rng.choice(_DESCRIPTIONS[nature]),
        "MT_RECLAME": rng.randint(low, high),
        "MT_REGLE": None,
    }


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[0:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]}"


def create_schema(sqlite_path: Path) -> None:
    """An empty insurer database (tables, indexes and filled code tables) at `sqlite_path`."""
    if sqlite_path.exists():
        sqlite_path.unlink()
    engine = create_engine(f"sqlite:///{sqlite_path}")
    try:
        METADATA.create_all(engine)
        with engine.begin() as connection:
            connection.execute(T_CODE_PRODUIT.insert(),
                               [{"CD_PRODUIT": k, "LB_PRODUIT": v} for k, v in PRODUCTS.items()])
            connection.execute(T_CODE_STATUT.insert(), [
                {"CD_STATUT": k, "LB_STATUT": v} for k, v in CONTRACT_STATUSES.items()])
            connection.execute(T_CODE_NATURE_SINISTRE.insert(), [
                {"CD_NATURE": k, "LB_NATURE": v} for k, v in CLAIM_NATURES.items()])
            connection.execute(T_CODE_ETAT_SINISTRE.insert(), [
                {"CD_ETAT": k, "LB_ETAT": v} for k, v in CLAIM_STATES.items()])
    finally:
        engine.dispose()


class _InsurerGenerator:
    """Draws members, contracts and claims; writes legacy rows and expected records together."""

    def __init__(self, seed: int, batches: _Batches, truth: GroundTruthWriter) -> None:
        self.rng = rng_for(seed, "insurer")
        self.batches = batches
        self.truth = truth
        self.contract_serial = self.rng.randint(10_000, 90_000)
        self.claim_serial = self.rng.randint(1_000, 9_000)
        self.claim_rowid = 0

    def member_numbers(self, count: int) -> list[str]:
        numbers = self.rng.sample(range(1, max(1_000, count * 4)), count)
        return [f"S{n:07d}" for n in numbers]

    def member(self, person: Person, number: str) -> date:
        rng = self.rng
        joined = _random_day(rng, max(person.birth_date + timedelta(days=18 * 366),
                                      date(1995, 1, 1)), date(2024, 12, 31))
        self.batches.add(T_SOCIETAIRE, (
            number, "MME" if person.gender == "F" else "M", person.last_name.upper(),
            person.first_name, ymd(person.birth_date), person.street, person.postcode,
            person.town, person.email, ymd(joined),
        ))
        return joined

    def _plan(self, person: Person) -> Sequence[tuple[str, str, int | None]]:
        fixed = _FIXED_PLANS.get(person.username or "")
        if fixed:
            return fixed
        rng = self.rng
        count = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
        products: list[str] = []
        while len(products) < count:
            product = rng.choices(list(_PRODUCT_WEIGHTS),
                                  weights=list(_PRODUCT_WEIGHTS.values()))[0]
            if product not in products:
                products.append(product)
        statuses = rng.choices(("E", "R", "X", "S"), weights=(72, 18, 5, 5), k=count)
        return [(p, s, None) for p, s in zip(products, statuses, strict=True)]

    def _insured_object(self, product: str, person: Person) -> str | None:
        rng = self.rng
        if product == "AUT":
            text_ = f"{rng.choice(_CARS)} - {_plate(rng)}"
        elif product == "MOT":
            text_ = f"{rng.choice(_BIKES)} - {_plate(rng)}"
        elif product == "MRH":
            text_ = f"{person.street}, {person.postcode} {person.town}"
        else:
            # Products without an insured object: NULL, or a CHAR column left blank.
            return " " * INSURED_OBJECT_WIDTH if rng.random() < 0.3 else None
        return text_[:INSURED_OBJECT_WIDTH].ljust(INSURED_OBJECT_WIDTH)

    def contracts(self, person: Person, number: str, joined: date) -> list[dict[str, Any]]:
        """Write a member's contracts (and their claims); return the contract rows."""
        rng = self.rng
        rows = []
        for product, status, claim_count in self._plan(person):
            self.contract_serial += rng.randint(1, 7)
            start = _random_day(rng, joined, date(2025, 9, 30))
            end: str | None
            if status in ("R", "X") and (SNAPSHOT - start).days > 200:
                end = ymd(_random_day(rng, start + timedelta(days=180),
                                      SNAPSHOT - timedelta(days=1)))
            else:
                if status in ("R", "X"):
                    status = "E"
                end = rng.choice((None, None, "", "00000000", " " * 8))
            low, high = _PREMIUM_CENTS[product]
            row = {
                "NUM_CONTRAT": f"{product}{self.contract_serial:07d}",
                "NUM_SOCIETAIRE": number,
                "CD_PRODUIT": product,
                "CD_STATUT": status,
                "DT_EFFET": ymd(start),
                "DT_FIN": end,
                "MT_PRIME_ANNUELLE": rng.randint(low, high),
                "LB_OBJET_ASSURE": self._insured_object(product, person),
                "MT_FRANCHISE": rng.choice(_DEDUCTIBLES[product]),
            }
            self.batches.add(T_CONTRAT, tuple(row.values()))
            if person.reference:
                self.truth.add("insurance-contracts", person.reference, contract_record(row))
            rows.append(row)
            if claim_count is None:
                claim_count = rng.choices((0, 1, 2, 3), weights=(60, 28, 9, 3))[0]
            for _ in range(claim_count if _PRODUCT_NATURES[product] else 0):
                self.claim(person, row)
        return rows

    def claim(self, person: Person, contract: dict[str, Any], *, missing_number: bool = False,
              occurred_text: str | None = None) -> dict[str, Any]:
        """Write one claim on `contract`; the keyword arguments make it malformed on purpose.

        Only well-formed claims of registered members go to the ground truth.
        """
        rng = self.rng
        start = date.fromisoformat(_iso(contract["DT_EFFET"]))
        end_text = (contract["DT_FIN"] or "").strip()
        last = SNAPSHOT - timedelta(days=1)
        if end_text not in ("", "00000000"):
            last = min(last, date.fromisoformat(_iso(end_text)))
        occurred = _random_day(rng, start, last)
        declared = min(occurred + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5, 8, 15, 25))),
                       SNAPSHOT)
        nature = rng.choice(_PRODUCT_NATURES[contract["CD_PRODUIT"]])
        recent = (SNAPSHOT - declared).days < 60
        if recent:
            state = rng.choice(("OU", "OU", "EX", "RG"))
        else:
            state = rng.choices(("RG", "RF", "CS", "EX", "OU"), weights=(70, 12, 8, 5, 5))[0]
        low, high = _CLAIMED_CENTS[nature]
        claimed: int | None = rng.randint(low, high)
        if state == "CS" or (state in ("OU", "EX") and rng.random() < 0.3):
            claimed = None
        paid: int | None = None
        deductible = contract["MT_FRANCHISE"] or 0
        if state == "RG" and claimed is not None:
            paid = max(0, int(claimed * rng.uniform(0.6, 1.0)) - deductible)
        elif state == "RF":
            paid = rng.choice((None, 0))
        description: str | None = rng.choice(_DESCRIPTIONS[nature])
        if rng.random() < 0.15:
            description = None
        elif rng.random() < 0.2:
            description = f"{description}   "  # trailing blanks from a fixed-width screen
        self.claim_serial += rng.randint(1, 5)
        self.claim_rowid += 1
        claim_number = f"SIN{declared.year}{self.claim_serial:06d}"
        row = {
            "ID_SINISTRE": self.claim_rowid,
            "NUM_SINISTRE": None if missing_number else claim_number,
            "NUM_CONTRAT": contract["NUM_CONTRAT"],
            "DT_SURVENANCE": occurred_text or ymd(occurred),
            "DT_DECLARATION": ymd(declared),
            "CD_NATURE": nature,
            "CD_ETAT": state,
            "LB_DESCRIPTIF": description,
            "MT_RECLAME": claimed,
            "MT_REGLE": paid,
        }
        self.batches.add(T_SINISTRE, tuple(row.values()))
        if person.reference and not missing_number and occurred_text is None:
            self.truth.add("insurance-claims", person.reference, claim_record(row))
        return row


def generate(out_dir: Path, *, seed: int, customers: list[Person], truth: GroundTruthWriter,
             malformed: bool) -> InsurerResult:
    """Write `<out_dir>/insurer.sqlite3` and the insurance ground truth."""
    path = out_dir / DB_FILENAME
    create_schema(path)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    batches = _Batches(connection)
    generator = _InsurerGenerator(seed, batches, truth)
    members = [p for p in customers if "insurer" in p.systems]
    others = legacy_only_people(seed, "insurer", len(customers))
    numbers = generator.member_numbers(len(members) + len(others))
    result = InsurerResult()
    # Who gets the malformed rows is drawn apart, so the good rows are the same either way.
    targets = malformed_targets(rng_for(seed, "insurer", "malformed"),
                                [str(p.reference) for p in members], 3) if malformed else []
    contracts_of: dict[str, list[dict[str, Any]]] = {}
    for person, number in zip(members + others, numbers, strict=True):
        joined = generator.member(person, number)
        contracts = generator.contracts(person, number, joined)
        if person.reference:
            result.identities[person.reference] = number
            if person.reference in targets:
                contracts_of[person.reference] = contracts
    if targets:
        _add_malformed(generator, members, targets, contracts_of, truth)
    batches.flush()
    connection.commit()
    connection.close()
    result.rows = dict(batches.counts)
    return result


def _add_malformed(generator: _InsurerGenerator, members: list[Person], targets: list[str],
                   contracts_of: dict[str, list[dict[str, Any]]],
                   truth: GroundTruthWriter) -> None:
    """Rows the gateway must quarantine, added after (never instead of) the good rows.

    `targets` are registered members (see `people.malformed_targets`), one per row. A claim
    needs a contract open to claims: when the target has none, the first target's is used.
    """
    by_reference = {p.reference: p for p in members}

    def claimable_contract(reference: str) -> tuple[str, dict[str, Any]] | None:
        for candidate in (reference, targets[0]):
            for contract in contracts_of[candidate]:
                if _PRODUCT_NATURES[contract["CD_PRODUIT"]]:
                    return candidate, contract
        return None

    # 1. A claim whose number was never keyed in (NULL NUM_SINISTRE): a missing key.
    found = claimable_contract(targets[0])
    if found is not None:
        reference, contract = found
        row = generator.claim(by_reference[reference], contract, missing_number=True)
        truth.add_malformed(source=SOURCE_SLUG, dataset="insurance-claims",
                            customer=reference, kind="missing-key",
                            detail=f"T_SINISTRE.ID_SINISTRE={row['ID_SINISTRE']}: "
                                   f"NUM_SINISTRE is NULL (contract {contract['NUM_CONTRAT']})")

    # 2. A contract starting on 31 February.
    person = by_reference[targets[1]]
    generator.contract_serial += 3
    row = {
        "NUM_CONTRAT": f"MRH{generator.contract_serial:07d}",
        "NUM_SOCIETAIRE": contracts_of[targets[1]][0]["NUM_SOCIETAIRE"],
        "CD_PRODUIT": "MRH", "CD_STATUT": "E", "DT_EFFET": "20250231", "DT_FIN": None,
        "MT_PRIME_ANNUELLE": 23_450,
        "LB_OBJET_ASSURE": f"{person.street}, {person.postcode} {person.town}"[
            :INSURED_OBJECT_WIDTH].ljust(INSURED_OBJECT_WIDTH),
        "MT_FRANCHISE": 15_000,
    }
    generator.batches.add(T_CONTRAT, tuple(row.values()))
    truth.add_malformed(source=SOURCE_SLUG, dataset="insurance-contracts", customer=targets[1],
                        kind="impossible-date",
                        detail=f"T_CONTRAT.NUM_CONTRAT={row['NUM_CONTRAT']}: DT_EFFET '20250231'")

    # 3. A claim that occurred on 30 February 2024.
    found = claimable_contract(targets[2])
    if found is not None:
        reference, contract = found
        row = generator.claim(by_reference[reference], contract, occurred_text="20240230")
        truth.add_malformed(source=SOURCE_SLUG, dataset="insurance-claims", customer=reference,
                            kind="impossible-date",
                            detail=f"T_SINISTRE.NUM_SINISTRE={row['NUM_SINISTRE']}: "
                                   "DT_SURVENANCE '20240230'")


# --- Copying to another database ----------------------------------------------------------

_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _create_database_if_missing(url: URL) -> None:
    backend = url.get_backend_name()
    name = url.database
    if backend == "sqlite" or not name:
        return
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"refusing to create a database named {name!r}")
    if backend in ("mysql", "mariadb"):
        engine = create_engine(url.set(database=""))
        try:
            with engine.begin() as connection:
                connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` "
                                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        finally:
            engine.dispose()
    elif backend == "postgresql":
        engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                            {"n": name}).first()
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()


def copy_to(url: str, sqlite_path: Path, *, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Rebuild the insurer schema in the database at `url` and copy every row of `sqlite_path`.

    The database is created when missing (MariaDB/MySQL, PostgreSQL); the tables are dropped
    and recreated. Rows are streamed in batches of `batch_size`. Returns rows copied per table.
    """
    target_url = make_url(url)
    _create_database_if_missing(target_url)
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(target_url)
    copied: dict[str, int] = {}
    try:
        METADATA.drop_all(target)
        METADATA.create_all(target)
        for table in METADATA.sorted_tables:
            copied[table.name] = 0
            query = select(table).order_by(*table.primary_key.columns)
            with source.connect() as reader, target.begin() as writer:
                result = reader.execution_options(stream_results=True).execute(query)
                for part in result.partitions(batch_size):
                    writer.execute(table.insert(), [dict(row._mapping) for row in part])
                    copied[table.name] += len(part)
    finally:
        source.dispose()
        target.dispose()
    return copied


def table_rows(url: str, table: Table) -> Iterable[dict[str, Any]]:
    """Every row of one insurer table (for tests and tools), as dicts."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for row in connection.execute(select(table).order_by(*table.primary_key.columns)):
                yield dict(row._mapping)
    finally:
        engine.dispose()
