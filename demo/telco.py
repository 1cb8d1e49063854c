"""The demonstration telco's billing and call-detail data, as its HTTP API serves it.

Written under `<out>/telco/` (read by `telco_server`):

    accounts.json                                   every account (list)
    accounts/<account_id>/calls.json                call detail records, oldest first
    accounts/<account_id>/invoices.json             monthly invoices, oldest first
    accounts/<account_id>/invoices/<invoice_id>.pdf the invoice documents

Items are what the API returns: timestamps are ISO 8601 local times with their offset,
correspondents are full numbers (the gateway masks them), amounts are strings in euros.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .pdf import text_pdf
from .people import Person, legacy_only_people, malformed_targets, rng_for
from .truth import GroundTruthWriter, cents_to_euros, iso_utc, masked_number

PARIS = ZoneInfo("Europe/Paris")
DATA_DIR = "telco"
SOURCE_SLUG = "telco-billing"
ACCOUNTS_FILE = "accounts.json"

#: Local days covered by the call log (both 2025 clock changes fall inside).
CALLS_FIRST_DAY = date(2025, 3, 1)
CALLS_LAST_DAY = date(2025, 10, 31)
#: First month invoiced; twelve consecutive monthly invoices follow.
FIRST_INVOICED_MONTH = date(2024, 10, 1)
INVOICES_PER_ACCOUNT = 12

DIRECTIONS = {"MO": "outgoing", "MT": "incoming"}  # mobile-originated / mobile-terminated
CALL_TYPES = {"VOICE": "voice", "SMS": "sms"}
INVOICE_STATUSES = {"PAYEE": "paid", "A_PAYER": "due", "EN_RETARD": "late"}
_STATUS_LABELS = {"PAYEE": "Payée", "A_PAYER": "À payer", "EN_RETARD": "En retard de paiement"}
PLANS = (
    ("Forfait Essentiel 20 Go", 999),
    ("Forfait Confort 80 Go", 1599),
    ("Forfait Intégral 200 Go 5G", 2499),
    ("Forfait Illimité Europe", 3499),
)
#: Relative chance of a call starting at each local hour.
_HOUR_WEIGHTS = (0.05, 0.02, 0.01, 0.01, 0.01, 0.02, 0.1, 0.35, 0.7, 0.8, 0.85, 0.9,
                 1.0, 0.95, 0.8, 0.8, 0.85, 0.95, 1.0, 1.0, 0.9, 0.7, 0.4, 0.15)
_FOREIGN_PREFIXES = ("+32", "+41", "+44", "+34", "+212", "+49")
_NON_EU = ("+41", "+212")


def euros_text(cents: int) -> str:
    """1599 → '15.99' (the API's amount format)."""
    return f"{cents // 100}.{cents % 100:02d}"


def _french_euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d} €"


@dataclass
class TelcoResult:
    identities: dict[str, str] = field(default_factory=dict)  # customer reference → account id
    accounts: int = 0
    calls: int = 0
    invoices: int = 0


class _TelcoGenerator:
    def __init__(self, seed: int) -> None:
        self.rng = rng_for(seed, "telco")
        self.numbers: set[str] = set()
        self.call_serial = self.rng.randint(10**8, 2 * 10**8)
        self.invoice_serial = self.rng.randint(1_000, 9_000)

    def msisdn(self) -> str:
        while True:
            number = f"+33{self.rng.choice('67')}{self.rng.randint(0, 99_999_999):08d}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def contacts(self) -> list[str]:
        rng = self.rng
        contacts = []
        for _ in range(rng.randint(5, 15)):
            draw = rng.random()
            if draw < 0.7:
                contacts.append(f"+33{rng.choice('67')}{rng.randint(0, 99_999_999):08d}")
            elif draw < 0.9:
                contacts.append(f"+33{rng.choice('12345')}{rng.randint(0, 99_999_999):08d}")
            else:
                contacts.append(f"{rng.choice(_FOREIGN_PREFIXES)}{rng.randint(10**8, 10**9 - 1)}")
        return contacts

    def call_time(self, month_first: date) -> datetime:
        """A local start time in the given month, more likely by day than by night."""
        rng = self.rng
        next_month = (month_first + timedelta(days=32)).replace(day=1)
        first = datetime(month_first.year, month_first.month, 1, tzinfo=PARIS).astimezone(UTC)
        last = datetime(next_month.year, next_month.month, 1, tzinfo=PARIS).astimezone(UTC)
        span = int((last - first).total_seconds())
        while True:
            moment = (first + timedelta(seconds=rng.randrange(span))).astimezone(PARIS)
            if rng.random() < _HOUR_WEIGHTS[moment.hour]:
                return moment

    def call(self, account: dict[str, Any], contacts: list[str],
             started: datetime) -> dict[str, Any]:
        rng = self.rng
        self.call_serial += rng.randint(1, 40)
        kind = "VOICE" if rng.random() < 0.62 else "SMS"
        direction = "MO" if rng.random() < 0.55 else "MT"
        if rng.random() < 0.8:
            correspondent = rng.choice(contacts)
        else:
            correspondent = f"+33{rng.choice('6789')}{rng.randint(0, 99_999_999):08d}"
        duration = 0
        if kind == "VOICE" and not (direction == "MT" and rng.random() < 0.1):
            duration = min(5400, max(3, int(rng.lognormvariate(4.2, 1.1))))
        cost: int | None = None
        if direction == "MO":
            foreign = not correspondent.startswith("+33")
            premium = correspondent.startswith("+338")
            minutes = -(-duration // 60)
            if kind == "VOICE" and (premium or correspondent.startswith(_NON_EU)):
                cost = minutes * (80 if premium else 45)
            elif kind == "SMS" and foreign:
                cost = 25 if correspondent.startswith(_NON_EU) else 0
            elif rng.random() < 0.05:
                cost = 0
        return {
            "call_id": f"CDR{self.call_serial:011d}",
            "account_id": account["account_id"],
            "line": account["msisdn"],
            "started_at": started.isoformat(),
            "direction": direction,
            "type": kind,
            "correspondent": correspondent,
            "duration": duration,
            "charge": None if cost is None else {"amount": euros_text(cost), "currency": "EUR"},
        }


def call_expected(item: dict[str, Any], cost_cents: int | None,
                  started: datetime) -> dict[str, Any]:
    return {
        "call_id": item["call_id"],
        "line": item["line"],
        "started_at": iso_utc(started),
        "direction": DIRECTIONS[item["direction"]],
        "kind": CALL_TYPES[item["type"]],
        "correspondent": masked_number(item["correspondent"]),
        "duration_s": item["duration"],
        "cost": None if cost_cents is None else cents_to_euros(cost_cents),
    }


def _months(first: date, count: int) -> list[date]:
    months = [first]
    while len(months) < count:
        months.append((months[-1] + timedelta(days=32)).replace(day=1))
    return months


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


def generate(out_dir: Path, *, seed: int, customers: list[Person], truth: GroundTruthWriter,
             malformed: bool) -> TelcoResult:
    """Write `<out_dir>/telco/` and the telco ground truth."""
    base = out_dir / DATA_DIR
    gen = _TelcoGenerator(seed)
    rng = gen.rng
    people = [p for p in customers if "telco" in p.systems]
    people += legacy_only_people(seed, "telco", len(customers))
    numbers = rng.sample(range(1, max(1_000, len(people) * 4)), len(people))
    malformed_rng = rng_for(seed, "telco", "malformed")
    broken_calls = _plan_malformed(malformed_rng, people) if malformed else {}
    result = TelcoResult()
    accounts: list[dict[str, Any]] = []

    for person, number in zip(people, numbers, strict=True):
        plan_name, fee = rng.choice(PLANS)
        account = {
            "account_id": f"ACC-{number:06d}",
            "msisdn": gen.msisdn(),
            "holder": {"civility": "Mme" if person.gender == "F" else "M.",
                       "first_name": person.first_name, "last_name": person.last_name},
            "billing_address": {"street": person.street, "postcode": person.postcode,
                                "town": person.town},
            "plan": {"name": plan_name, "monthly_fee": euros_text(fee)},
            "opened_on": (FIRST_INVOICED_MONTH - timedelta(days=rng.randint(30, 4000))).isoformat(),
        }
        accounts.append(account)
        contacts = gen.contacts()
        calls: list[dict[str, Any]] = []
        extra_by_month: dict[date, int] = {}
        for month in _months(CALLS_FIRST_DAY, 8):
            times = sorted(gen.call_time(month) for _ in range(rng.randint(20, 80)))
            for started in times:
                item = gen.call(account, contacts, started)
                calls.append(item)
                cost = None if item["charge"] is None else _cents(item["charge"]["amount"])
                extra_by_month[month] = extra_by_month.get(month, 0) + (cost or 0)
                if person.reference:
                    truth.add("telco-call-log", person.reference,
                              call_expected(item, cost, started))
        for kind in broken_calls.get(person.reference or "", []):
            _add_malformed_call(malformed_rng, kind, person, account, contacts, calls, truth)
        invoices = _invoices(gen, base, person, account, fee, extra_by_month, truth)
        if person.reference:
            result.identities[person.reference] = account["account_id"]
        result.calls += len(calls)
        result.invoices += len(invoices)
        folder = base / "accounts" / account["account_id"]
        _write_json(folder / "calls.json", calls)
        _write_json(folder / "invoices.json", invoices)

    _write_json(base / ACCOUNTS_FILE, accounts)
    result.accounts = len(accounts)
    return result


def _plan_malformed(rng: Any, people: list[Person]) -> dict[str, list[str]]:
    """Which registered customer gets which malformed call (see `people.malformed_targets`)."""
    references = [p.reference for p in people if p.reference]
    plan: dict[str, list[str]] = {}
    kinds = ("missing-key", "impossible-date")
    for reference, kind in zip(malformed_targets(rng, references, len(kinds)), kinds,
                               strict=False):
        plan.setdefault(reference, []).append(kind)
    return plan


def _add_malformed_call(rng: Any, kind: str, person: Person, account: dict[str, Any],
                        contacts: list[str], calls: list[dict[str, Any]],
                        truth: GroundTruthWriter) -> None:
    """Add one call record the gateway must quarantine, next to the account's good ones.

    `rng` is not the generator's: the good records are the same with or without these.
    """
    account_id = account["account_id"]
    if kind == "missing-key" and calls:
        position = rng.randrange(len(calls) + 1)
        neighbour = calls[min(position, len(calls) - 1)]
        item = {**neighbour, "call_id": None, "direction": "MO", "type": "VOICE",
                "correspondent": rng.choice(contacts), "duration": rng.randint(20, 600),
                "charge": None}
        calls.insert(position, item)
        detail = f"account {account_id}: call record #{position + 1} has a null call_id"
    else:
        kind = "impossible-date"
        item = {
            # Far above the generator's serials, so never a duplicate.
            "call_id": f"CDR{rng.randint(9 * 10**10, 10**11 - 1):011d}",
            "account_id": account_id, "line": account["msisdn"],
            "started_at": "2025-02-30T10:00:00+01:00", "direction": "MO", "type": "SMS",
            "correspondent": rng.choice(contacts), "duration": 0, "charge": None,
        }
        calls.insert(0, item)
        detail = (f"account {account_id}: call {item['call_id']} "
                  "started_at '2025-02-30T10:00:00+01:00'")
    truth.add_malformed(source=SOURCE_SLUG, dataset="telco-call-log",
                        customer=str(person.reference), kind=kind, detail=detail)


def _cents(amount: str) -> int:
    units, _, hundredths = amount.partition(".")
    return int(units) * 100 + int(hundredths)


def _invoices(gen: _TelcoGenerator, base: Path, person: Person, account: dict[str, Any], fee: int,
              extra_by_month: dict[date, int], truth: GroundTruthWriter) -> list[dict[str, Any]]:
    rng = gen.rng
    invoices = []
    months = _months(FIRST_INVOICED_MONTH, INVOICES_PER_ACCOUNT)
    late_index = rng.randrange(len(months) - 1) if rng.random() < 0.15 else None
    for index, month in enumerate(months):
        gen.invoice_serial += rng.randint(1, 30)
        invoice_id = f"FAC-{month:%Y%m}-{gen.invoice_serial:07d}"
        period_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        issued = period_end + timedelta(days=5)
        extra = extra_by_month.get(month, rng.choice((0, 0, 0, 150, 299, 480)))
        total = fee + extra
        status = "A_PAYER" if index == len(months) - 1 else (
            "EN_RETARD" if index == late_index else "PAYEE")
        vat = total - round(total / 1.2)
        pdf = text_pdf(f"Facture {invoice_id}", [
            f"Titulaire : {person.display_name}",
            f"{person.street}, {person.postcode} {person.town}",
            f"Compte : {account['account_id']} - Ligne : {account['msisdn']}",
            f"Période : du {month:%d/%m/%Y} au {period_end:%d/%m/%Y}",
            f"Date d'émission : {issued:%d/%m/%Y}",
            "",
            f"{account['plan']['name']} : {_french_euros(fee)}",
            f"Consommations hors forfait : {_french_euros(extra)}",
            f"Total TTC : {_french_euros(total)} (dont TVA 20 % : {_french_euros(vat)})",
            f"Statut : {_STATUS_LABELS[status]}",
        ])
        pdf_path = base / "accounts" / account["account_id"] / "invoices" / f"{invoice_id}.pdf"
        pdf_path.parent.mkdir(parents=True, exist_ok=True)
        pdf_path.write_bytes(pdf)
        invoices.append({
            "invoice_id": invoice_id,
            "account_id": account["account_id"],
            "issue_date": issued.isoformat(),
            "period": {"start": month.isoformat(), "end": period_end.isoformat()},
            "total": {"amount_incl_tax": euros_text(total),
                      "amount_excl_tax": euros_text(total - vat), "currency": "EUR"},
            "status": status,
            "pdf_url": f"/v2/invoices/{invoice_id}.pdf",
        })
        if person.reference:
            truth.add("telco-invoices", person.reference, {
                "invoice_id": invoice_id,
                "issued_on": issued.isoformat(),
                "period_start": month.isoformat(),
                "period_end": period_end.isoformat(),
                "amount_incl_tax": cents_to_euros(total),
                "currency": "EUR",
                "status": INVOICE_STATUSES[status],
                "document": {"filename": f"{invoice_id}.pdf", "content_type": "application/pdf",
                             "size": len(pdf), "sha256": hashlib.sha256(pdf).hexdigest()},
            })
    return invoices
