"""The demonstration electricity network operator's metering exports, and their ground truth.

Everything is written under `<out>/metering/` the way such an operator's batch exports look:

- `courbe_de_charge/YYYY/MM/CDC_YYYYMMDD.csv`: the load curve, one file per local (Europe/Paris)
  day with every delivery point (PDL) of that day, sorted by PDL, each PDL's half hours in
  chronological order. The timestamp is the local wall-clock start of the half hour with no
  offset, so the autumn fall-back day repeats 02:00 and 02:30 (first summer time, then winter
  time: 50 readings) and the spring-forward day has no 02:00/02:30 (46 readings). A meter that
  did not report leaves its half hours out (see `_plan_gaps`). The gateway makes one record per
  PDL and local day of them (a day block, `load_curve_day`).
- `consommation_quotidienne/YYYY/CONSO_JOUR_YYYYMM.csv`: daily energy, one file per month, lines
  ordered by day then PDL. Energy (kWh) is the sum over the local day of the readings' kW × 0.5,
  rounded half-up to 3 decimals; the maximum power (kVA) is sometimes missing (empty field).
- `contrats/C5_CONTRATS_YYYYMMDD.dat`: the delivery points' technical contracts, EBCDIC (cp500)
  fixed-length records of RECORD_LENGTH bytes with no line separator, between a header ("HDR")
  and a trailer ("TRL") record. Columns are in CONTRACT_COLUMNS.

CSV files are latin-1 with ';' separators, decimal commas, CRLF line ends and a French header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from .people import Person, legacy_only_people, malformed_targets, rng_for
from .truth import GroundTruthWriter, iso_utc, milli_to_units

PARIS = ZoneInfo("Europe/Paris")
EXPORT_DIR = "metering"
LOAD_CURVE_SOURCE = "energy-metering"
CONTRACT_SOURCE = "energy-contracts"

CSV_ENCODING = "latin-1"
CSV_DELIMITER = ";"
CSV_NEWLINE = "\r\n"
LOCAL_FORMAT = "%d/%m/%Y %H:%M"
DAY_FORMAT = "%d/%m/%Y"

LOAD_CURVE_PATTERN = "courbe_de_charge/*/*/CDC_*.csv"
LOAD_CURVE_HEADER = ("Identifiant PDL", "Date et heure", "Puissance moyenne (kW)")
DAILY_PATTERN = "consommation_quotidienne/*/CONSO_JOUR_*.csv"
DAILY_HEADER = ("Identifiant PDL", "Date", "Énergie consommée (kWh)",
                "Puissance max. atteinte (kVA)")
CONTRACT_PATTERN = "contrats/C5_CONTRATS_*.dat"
CONTRACT_ENCODING = "cp500"
RECORD_LENGTH = 100
#: (name, start, length), 0-based, of the detail records.
CONTRACT_COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("PDL", 0, 14),
    ("OPTION_TARIFAIRE", 14, 5),
    ("PUISSANCE_SOUSCRITE", 19, 3),
    ("TYPE_COMPTEUR", 22, 10),
    ("DATE_DEBUT", 32, 8),
    ("DATE_FIN", 40, 8),
    ("CODE_POSTAL", 48, 5),
    ("COMMUNE", 53, 32),
    ("SEGMENT", 85, 2),
)
CONTRACT_SKIP_PREFIXES = ("HDR", "TRL")

TARIFF_OPTIONS: dict[str, str] = {
    "BASE": "Base",
    "HPHC": "Heures pleines / heures creuses",
    "TEMPO": "Tempo",
    "EJP": "Effacement jours de pointe",
}
METER_TYPES: dict[str, str] = {
    "LINKY": "Linky (compteur communicant)",
    "CBE": "Compteur électronique",
    "CEM": "Compteur électromécanique",
}
_SUBSCRIBED_KVA = (3, 6, 9, 12, 15, 18, 24, 30, 36)
_SUBSCRIBED_WEIGHTS = (6, 38, 30, 12, 6, 3, 2, 2, 1)

#: Household activity by local hour (share of the household's peak appliance load).
_ACTIVITY_BY_HOUR = (0.15, 0.12, 0.10, 0.10, 0.10, 0.12, 0.35, 0.85, 0.75, 0.45, 0.35, 0.40,
                     0.65, 0.55, 0.35, 0.30, 0.35, 0.55, 0.85, 1.00, 0.95, 0.80, 0.55, 0.30)
#: Electric heating by local hour (night setback, morning and evening boosts).
_HEATING_BY_HOUR = (0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 1.2, 1.3, 1.1, 0.8, 0.7, 0.7,
                    0.8, 0.8, 0.7, 0.7, 0.8, 1.0, 1.1, 1.1, 1.1, 1.0, 0.8, 0.7)
#: Half-hour slots (of the local wall clock) when an off-peak water heater runs.
_WATER_HEATER_SLOTS = frozenset({46, 47, 0, 1, 2, 3, 4})


def _by_slot(by_hour: tuple[float, ...]) -> list[float]:
    """Hourly profile → 48 half-hour values, the second half hour blending into the next."""
    values = []
    for hour in range(24):
        here, after = by_hour[hour], by_hour[(hour + 1) % 24]
        values += [here, (here + after) / 2]
    return values


ACTIVITY = _by_slot(_ACTIVITY_BY_HOUR)
HEATING = _by_slot(_HEATING_BY_HOUR)


def decimal_comma(milli: int) -> str:
    """12345 thousandths → '12,345' (how the exports write kW, kWh and kVA)."""
    return f"{milli // 1000},{milli % 1000:03d}"


@dataclass(frozen=True)
class HalfHour:
    local_text: str  # 'dd/mm/yyyy HH:MM', local start, as the export writes it
    slot: int  # 0…47: index of the local wall-clock half hour
    start: str  # UTC start, dataset format
    end: str  # UTC end


def day_half_hours(day: date) -> list[HalfHour]:
    """The half hours of one local day, in chronological order (46, 48 or 50 of them)."""
    first = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    following = day + timedelta(days=1)
    last = datetime(following.year, following.month, following.day, tzinfo=PARIS).astimezone(UTC)
    count = int((last - first).total_seconds()) // 1800
    half_hours = []
    for index in range(count):
        start = first + timedelta(minutes=30 * index)
        local = start.astimezone(PARIS)
        slot = local.hour * 2 + local.minute // 30
        half_hours.append(HalfHour(local.strftime(LOCAL_FORMAT), slot, iso_utc(start),
                                   iso_utc(start + timedelta(minutes=30))))
    return half_hours


@dataclass
class Household:
    """One delivery point and the habits that shape its consumption."""

    pdl: str
    person: Person
    tariff: str
    subscribed_kva: int
    meter: str
    start: date  # contract start (first day with readings, if inside the window)
    end: date | None  # contract end (no readings from that day on)
    base_w: int
    appliance_w: float
    heating_w_per_degree: float
    water_heater_w: int
    away: tuple[date, date] | None
    extra_curve_lines: dict[date, list[str]] = field(default_factory=dict)
    extra_daily_lines: dict[date, list[str]] = field(default_factory=dict)
    #: Half hours (indices in the day) the meter did not report: lines absent from the export.
    gaps: dict[date, frozenset[int]] = field(default_factory=dict)

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass
class EnergyResult:
    identities: dict[str, str] = field(default_factory=dict)  # customer reference → PDL
    files: int = 0
    load_curve_lines: int = 0
    daily_lines: int = 0
    contract_records: int = 0


def _temperatures(seed: int, first: date, last: date) -> dict[date, float]:
    """A plausible mean daily temperature (°C) for each day: seasonal cycle + persistent noise."""
    rng = rng_for(seed, "energy", "weather")
    temperatures: dict[date, float] = {}
    anomaly = 0.0
    day = first
    while day <= last:
        anomaly = 0.7 * anomaly + rng.gauss(0, 1.8)
        day_of_year = day.timetuple().tm_yday
        seasonal = 11.5 - 7.5 * math.cos(2 * math.pi * (day_of_year - 20) / 365.25)
        temperatures[day] = seasonal + anomaly
        day += timedelta(days=1)
    return temperatures


class _EnergyGenerator:
    def __init__(self, seed: int, window_start: date, window_end: date) -> None:
        self.rng = rng_for(seed, "energy")
        self.window_start = window_start
        self.window_end = window_end
        self.pdls: set[str] = set()

    def _pdl(self, person: Person) -> str:
        while True:
            first = "0" if person.username == "alice" else self.rng.choice("0125")
            pdl = first + "".join(self.rng.choice("0123456789") for _ in range(13))
            if pdl not in self.pdls:
                self.pdls.add(pdl)
                return pdl

    def household(self, person: Person) -> Household:
        rng = self.rng
        pdl = self._pdl(person)
        tariff = rng.choices(list(TARIFF_OPTIONS), weights=(55, 38, 5, 2))[0]
        kva = rng.choices(_SUBSCRIBED_KVA, weights=_SUBSCRIBED_WEIGHTS)[0]
        start = date(2008, 1, 1) + timedelta(days=rng.randint(0, 5800))
        start = min(start, self.window_start - timedelta(days=1))
        end: date | None = None
        span = (self.window_end - self.window_start).days
        if person.registered and person.username not in ("alice", "bob") and rng.random() < 0.12:
            start = self.window_start + timedelta(days=rng.randint(1, max(1, span)))  # moved in
        if not person.registered and rng.random() < 0.5:
            end = self.window_start + timedelta(days=rng.randint(1, max(1, span)))  # moved out
        electric_heating = rng.random() < 0.4
        if electric_heating:
            kva = max(kva, 9)  # nobody heats with electricity on a 3 or 6 kVA subscription
        summer = self.window_start.year + (1 if self.window_start.month > 8 else 0)
        away_start = date(summer, 7, 1) + timedelta(days=rng.randint(0, 50))
        away = (away_start, away_start + timedelta(days=rng.randint(7, 16))) \
            if rng.random() < 0.4 else None
        return Household(
            pdl=pdl, person=person, tariff=tariff, subscribed_kva=kva, meter="LINKY",
            start=start, end=end, base_w=rng.randint(120, 450),
            appliance_w=rng.uniform(500, 1400) * (kva / 9) ** 0.5,
            heating_w_per_degree=rng.uniform(70, 220) if electric_heating else 0.0,
            water_heater_w=(rng.randint(1200, 3000)
                            if tariff == "HPHC" and rng.random() < 0.8 else 0),
            away=away,
        )

    def day_watts(self, home: Household, day: date, half_hours: list[HalfHour],
                  temperature: float) -> list[int]:
        """Average power of each half hour of the day, in watts (i.e. kW with 3 decimals)."""
        rng = self.rng
        day_of_year = day.timetuple().tm_yday
        winter = (1 + math.cos(2 * math.pi * (day_of_year - 355) / 365.25)) / 2
        away = home.away is not None and home.away[0] <= day < home.away[1]
        weekend = day.weekday() >= 5
        cold = max(0.0, 15.0 - temperature)
        ceiling = home.subscribed_kva * 900  # above the subscribed power the breaker trips
        watts = []
        for half_hour in half_hours:
            slot = half_hour.slot
            activity = ACTIVITY[slot]
            if weekend and 18 <= slot < 34:
                activity *= 1.25
            if away:
                activity = 0.04
            load = home.appliance_w * activity
            if 34 <= slot <= 45 and not away:
                load += 180 * winter  # lighting on winter evenings
            load += home.heating_w_per_degree * cold * (0.3 if away else HEATING[slot])
            if home.water_heater_w and slot in _WATER_HEATER_SLOTS and not away:
                load += home.water_heater_w * rng.uniform(0.5, 1.0) * (0.6 + 0.4 * winter)
            value = home.base_w * rng.uniform(0.9, 1.1) + load * max(0.2, rng.gauss(1.0, 0.15))
            watts.append(min(ceiling, max(40, int(round(value)))))
        return watts


def _open_csv(path: Path, header: tuple[str, ...]) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w", encoding=CSV_ENCODING, newline="")
    handle.write(CSV_DELIMITER.join(header) + CSV_NEWLINE)
    return handle


def _contract_record(home: Household) -> bytes:
    values = {
        "PDL": home.pdl,
        "OPTION_TARIFAIRE": home.tariff,
        "PUISSANCE_SOUSCRITE": f"{home.subscribed_kva:03d}",
        "TYPE_COMPTEUR": home.meter,
        "DATE_DEBUT": home.start.strftime("%Y%m%d"),
        "DATE_FIN": home.end.strftime("%Y%m%d") if home.end else "",
        "CODE_POSTAL": home.person.postcode,
        "COMMUNE": home.person.town.upper(),
        "SEGMENT": "C5",
    }
    record = "".join(values[name][:length].ljust(length) for name, _, length in CONTRACT_COLUMNS)
    return record.ljust(RECORD_LENGTH).encode(CONTRACT_ENCODING)


def contract_expected(home: Household) -> dict[str, Any]:
    return {
        "delivery_point": home.pdl,
        "tariff_option": TARIFF_OPTIONS[home.tariff],
        "subscribed_power_kva": home.subscribed_kva,
        "meter_type": METER_TYPES[home.meter],
        "start_date": home.start.isoformat(),
        "end_date": home.end.isoformat() if home.end else None,
        "postcode": home.person.postcode,
    }


def _write_contracts(directory: Path, homes: list[Household], extracted_on: date) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"C5_CONTRATS_{extracted_on:%Y%m%d}.dat"
    with open(path, "wb") as handle:
        header = f"HDR{'C5CONTRATS':<12}{extracted_on:%Y%m%d}{'GRD DEMO':<20}"
        handle.write(header.ljust(RECORD_LENGTH).encode(CONTRACT_ENCODING))
        for home in homes:
            handle.write(_contract_record(home))
        handle.write(f"TRL{len(homes):09d}".ljust(RECORD_LENGTH).encode(CONTRACT_ENCODING))
    return len(homes)


def _plan_malformed(seed: int, gen: _EnergyGenerator, homes: list[Household],
                    truth: GroundTruthWriter, half_hours_of: Any) -> None:
    """Lines the gateway must quarantine, added next to the good lines of registered customers.

    See `people.malformed_targets` for who gets them. The day is an ordinary day (no clock
    change) when the customer has one. Only customers with readings in the window are chosen.
    """
    # Drawn apart from the consumption, so the good lines are the same either way.
    rng = rng_for(seed, "energy", "malformed")
    spans: dict[str, tuple[date, date]] = {}  # reference → first and last day with readings
    for home in homes:
        first = max(home.start, gen.window_start)
        last = min(gen.window_end, home.end - timedelta(days=1)) if home.end else gen.window_end
        if home.person.reference and first <= last:
            spans[home.person.reference] = (first, last)
    references = malformed_targets(rng, sorted(spans), 4)
    if not references:
        return
    by_reference = {h.person.reference: h for h in homes}
    targets = [by_reference[r] for r in references]
    days: list[date] = []
    for reference in references:
        first, last = spans[reference]
        for _ in range(20):  # prefer a day without clock change
            day = first + timedelta(days=rng.randint(0, (last - first).days))
            if len(half_hours_of(day)) == 48:
                break
        days.append(day)

    def curve_file(day: date) -> str:
        return f"courbe_de_charge/{day:%Y/%m}/CDC_{day:%Y%m%d}.csv"

    def daily_file(day: date) -> str:
        return f"consommation_quotidienne/{day:%Y}/CONSO_JOUR_{day:%Y%m}.csv"

    home, day = targets[0], days[0]
    home.extra_curve_lines.setdefault(day, []).append(f"{home.pdl};30/02/2025 10:00;1,234")
    truth.add_malformed(source=LOAD_CURVE_SOURCE, dataset="energy-load-curve",
                        customer=str(home.person.reference), kind="impossible-date",
                        detail=f"{curve_file(day)}: PDL {home.pdl} timestamp '30/02/2025 10:00'")

    home, day = targets[1], days[1]
    home.extra_curve_lines.setdefault(day, []).append(
        f"{home.pdl};{day:{DAY_FORMAT}} 10:15;0,5\x0012")
    truth.add_malformed(source=LOAD_CURVE_SOURCE, dataset="energy-load-curve",
                        customer=str(home.person.reference), kind="bad-encoding",
                        detail=f"{curve_file(day)}: PDL {home.pdl} line with a NUL byte (0x00)")

    home, day = targets[2], days[2]
    home.extra_daily_lines.setdefault(day, []).append(f"{home.pdl};;12,345;6,000")
    truth.add_malformed(source=LOAD_CURVE_SOURCE, dataset="energy-daily-consumption",
                        customer=str(home.person.reference), kind="missing-key",
                        detail=f"{daily_file(day)}: PDL {home.pdl} line with an empty date")

    home, day = targets[3], days[3]
    home.extra_daily_lines.setdefault(day, []).append(
        f"{home.pdl};{day:{DAY_FORMAT}};8,4\x9d21;5,100")
    truth.add_malformed(source=LOAD_CURVE_SOURCE, dataset="energy-daily-consumption",
                        customer=str(home.person.reference), kind="bad-encoding",
                        detail=f"{daily_file(day)}: PDL {home.pdl} line with a C1 control "
                               "byte (0x9D)")


def _plan_gaps(seed: int, gen: _EnergyGenerator, homes: list[Household], half_hours_of: Any) -> None:
    """A meter that did not report for a while: 1 to 4 consecutive half hours missing on one
    ordinary day, for the first two registered customers with readings (drawn apart from the
    consumption, so the readings that are there are the same either way)."""
    rng = rng_for(seed, "energy", "gaps")
    chosen = 0
    for home in homes:
        first = max(home.start, gen.window_start)
        last = min(gen.window_end, home.end - timedelta(days=1)) if home.end else gen.window_end
        if not home.person.reference or first > last:
            continue
        for _ in range(20):  # an ordinary day, so the clock-change days stay whole
            day = first + timedelta(days=rng.randint(0, (last - first).days))
            if len(half_hours_of(day)) == 48:
                break
        else:
            continue
        begin = rng.randint(10, 40)
        home.gaps[day] = frozenset(range(begin, begin + rng.randint(1, 4)))
        chosen += 1
        if chosen == 2:
            return


def load_curve_day(pdl: str, day: date, half_hours: list[HalfHour], watts: list[int],
                   gaps: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The expected `energy-load-curve` record of one delivery point and local day (a day
    block), from the generator's own numbers."""
    first = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    return {
        "delivery_point": pdl, "day": day.isoformat(), "time_zone": PARIS.key,
        "start": iso_utc(first), "duration_seconds": 1800 * len(half_hours),
        "interval_seconds": 1800, "unit": "kW", "quantity": "average_power",
        "expected_readings": len(half_hours), "missing_count": len(gaps),
        "missing": [hh.start for index, hh in enumerate(half_hours) if index in gaps],
        "readings": [{"start": hh.start, "value": milli_to_units(w)}
                     for index, (hh, w) in enumerate(zip(half_hours, watts, strict=True))
                     if index not in gaps],
    }


def generate(out_dir: Path, *, seed: int, customers: list[Person], truth: GroundTruthWriter,
             malformed: bool, start: date, end: date) -> EnergyResult:
    """Write `<out_dir>/metering/` for the local days start…end (inclusive) and the ground truth."""
    if end < start:
        raise ValueError("energy_end is before energy_start")
    base = out_dir / EXPORT_DIR
    gen = _EnergyGenerator(seed, start, end)
    people = [p for p in customers if "energy" in p.systems]
    people += legacy_only_people(seed, "energy", len(customers))
    homes = sorted((gen.household(person) for person in people), key=lambda h: h.pdl)
    result = EnergyResult(identities={h.person.reference: h.pdl for h in homes
                                      if h.person.reference is not None})

    half_hours_cache: dict[date, list[HalfHour]] = {}

    def half_hours_of(day: date) -> list[HalfHour]:
        if day not in half_hours_cache:
            half_hours_cache[day] = day_half_hours(day)
        return half_hours_cache[day]

    if malformed:
        _plan_malformed(seed, gen, homes, truth, half_hours_of)
    _plan_gaps(seed, gen, homes, half_hours_of)

    for home in homes:
        if home.person.reference:
            truth.add("energy-contract", home.person.reference, contract_expected(home))
    result.contract_records = _write_contracts(base / "contrats", homes, end)
    result.files += 1

    temperatures = _temperatures(seed, start, end)
    daily_handle: IO[str] | None = None
    daily_month: tuple[int, int] | None = None
    day = start
    while day <= end:
        half_hours = half_hours_cache.pop(day, None) or day_half_hours(day)
        if daily_month != (day.year, day.month):
            if daily_handle:
                daily_handle.close()
            daily_month = (day.year, day.month)
            daily_handle = _open_csv(
                base / "consommation_quotidienne" / f"{day:%Y}" / f"CONSO_JOUR_{day:%Y%m}.csv",
                DAILY_HEADER)
            result.files += 1
        assert daily_handle is not None
        curve_path = base / "courbe_de_charge" / f"{day:%Y}" / f"{day:%m}" / f"CDC_{day:%Y%m%d}.csv"
        with _open_csv(curve_path, LOAD_CURVE_HEADER) as curve:
            result.files += 1
            for home in homes:
                if not home.active_on(day):
                    continue
                watts = gen.day_watts(home, day, half_hours, temperatures[day])
                reference = home.person.reference
                gaps = home.gaps.get(day, frozenset())
                lines = [f"{home.pdl};{hh.local_text};{decimal_comma(w)}"
                         for index, (hh, w) in enumerate(zip(half_hours, watts, strict=True))
                         if index not in gaps]
                lines += home.extra_curve_lines.get(day, [])
                curve.write(CSV_NEWLINE.join(lines) + CSV_NEWLINE)
                result.load_curve_lines += len(lines)
                # Energy of the day: Σ W × 0.5 h, in Wh, rounded half-up to the Wh (= 0.001 kWh).
                energy_wh = (sum(watts) + 1) // 2
                max_va: int | None = min(home.subscribed_kva * 1000,
                                         int(max(watts) * gen.rng.uniform(1.1, 1.6)))
                if gen.rng.random() < 0.03:
                    max_va = None
                daily_lines = [f"{home.pdl};{day:{DAY_FORMAT}};{decimal_comma(energy_wh)};"
                               f"{'' if max_va is None else decimal_comma(max_va)}"]
                daily_lines += home.extra_daily_lines.get(day, [])
                daily_handle.write(CSV_NEWLINE.join(daily_lines) + CSV_NEWLINE)
                result.daily_lines += len(daily_lines)
                if reference is None:
                    continue
                truth.add("energy-load-curve", reference,
                          load_curve_day(home.pdl, day, half_hours, watts, gaps))
                truth.add("energy-daily-consumption", reference, {
                    "delivery_point": home.pdl, "day": day.isoformat(),
                    "energy_kwh": milli_to_units(energy_wh),
                    "max_power_kva": None if max_va is None else milli_to_units(max_va)})
        day += timedelta(days=1)
    if daily_handle:
        daily_handle.close()
    return result
