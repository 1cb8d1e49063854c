"""The people of the demonstration: the gateway's registered customers and legacy-only people.

Registered customers are who `ground_truth/customers.json` lists; legacy-only people exist in a
legacy system but never registered at the gateway, so nothing of theirs may ever be restituted.
Every draw comes from a `random.Random` seeded by the demo seed and a purpose string, so the
same seed gives the same people whichever systems are generated.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

SYSTEMS: tuple[str, ...] = ("insurer", "energy", "telco")

#: Share of registered customers (other than alice and bob) who are in each system.
MEMBERSHIP_RATE: dict[str, float] = {"insurer": 1.0, "energy": 0.6, "telco": 0.7}

FIRST_NAMES_F = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Jeanne", "Louise", "Sophie", "Nathalie",
    "Isabelle", "Sylvie", "Hélène", "Élodie", "Françoise", "Céline", "Aurélie", "Margaux", "Zoé",
    "Anaïs", "Maëlle", "Fatima", "Amina",
)
FIRST_NAMES_M = (
    "Lucas", "Hugo", "Louis", "Gabriel", "Thomas", "Nicolas", "Julien", "Mathieu", "Pierre",
    "François", "Jérôme", "Stéphane", "Frédéric", "Benoît", "Rémi", "Théo", "Yannick", "Karim",
    "Mehdi", "Olivier",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc",
    "Guérin", "Muller", "Henry", "Roussel", "Perrin", "Morin", "Clément", "Gauthier", "Dumont",
    "Lopez", "Fontaine", "Chevalier", "Robin", "N'Diaye", "Le Gall", "Nguyen", "Da Silva",
    "Benali",
)
#: (postcode, town) pairs; the towns with accents exercise the legacy encodings.
TOWNS = (
    ("75011", "Paris"), ("69003", "Lyon"), ("13006", "Marseille"), ("31000", "Toulouse"),
    ("44000", "Nantes"), ("33000", "Bordeaux"), ("59000", "Lille"), ("67000", "Strasbourg"),
    ("35000", "Rennes"), ("42000", "Saint-Étienne"), ("25000", "Besançon"), ("45000", "Orléans"),
    ("34000", "Montpellier"), ("06000", "Nice"), ("38000", "Grenoble"), ("21000", "Dijon"),
    ("49000", "Angers"), ("37000", "Tours"), ("63000", "Clermont-Ferrand"), ("29200", "Brest"),
    ("76000", "Rouen"), ("87000", "Limoges"), ("64000", "Pau"), ("51100", "Reims"),
    ("80000", "Amiens"), ("57000", "Metz"), ("14000", "Caen"), ("86000", "Poitiers"),
    ("73000", "Chambéry"), ("17000", "La Rochelle"),
)
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur",
    "impasse des Lilas", "chemin du Moulin", "place de l'Église", "allée des Châtaigniers",
    "rue du Général Leclerc", "quai Saint-Vincent", "rue des Écoles", "avenue de la Gare",
    "rue Émile Zola", "route de Lyon", "rue du Château d'Eau",
)
EMAIL_DOMAINS = ("example.org", "example.net", "example.com")


def rng_for(seed: int, *purpose: object) -> random.Random:
    """A generator of its own for one purpose: string seeds are hashed (SHA-512), so stable."""
    return random.Random(":".join(str(part) for part in (seed, *purpose)))


def ascii_fold(text: str) -> str:
    """'Hélène Le Gall' → 'Helene Le Gall' (for e-mail addresses and legacy upper-case fields)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True)
class Person:
    """One human being, as every legacy system of the data holder knows them."""

    reference: str | None  # the gateway's customer reference ("C00001"); None if unregistered
    username: str | None
    first_name: str
    last_name: str
    gender: str  # "F" or "M"
    birth_date: date
    street: str
    postcode: str
    town: str
    email: str | None
    systems: frozenset[str]

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def registered(self) -> bool:
        return self.reference is not None


def _draw_person(rng: random.Random, *, reference: str | None, username: str | None,
                 systems: frozenset[str], first_name: str | None = None,
                 last_name: str | None = None, gender: str | None = None) -> Person:
    gender = gender or rng.choice("FM")
    first = first_name or rng.choice(FIRST_NAMES_F if gender == "F" else FIRST_NAMES_M)
    last = last_name or rng.choice(LAST_NAMES)
    postcode, town = rng.choice(TOWNS)
    street = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
    birth = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 62))
    email: str | None = None
    if rng.random() < 0.85:
        local = ascii_fold(f"{first}.{last}").lower().replace(" ", "").replace("'", "")
        email = f"{local}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"
    return Person(reference=reference, username=username, first_name=first, last_name=last,
                  gender=gender, birth_date=birth, street=street, postcode=postcode, town=town,
                  email=email, systems=systems)


def registered_customers(seed: int, count: int) -> list[Person]:
    """The gateway's customers: alice and bob first (in every system), then customer003…

    Membership is drawn for all three systems whichever are generated, so a customer's
    identities do not depend on the `systems` argument of the generator.
    """
    rng = rng_for(seed, "people")
    people: list[Person] = []
    for index in range(1, count + 1):
        reference = f"C{index:05d}"
        if index == 1:
            people.append(_draw_person(rng, reference=reference, username="alice",
                                       systems=frozenset(SYSTEMS), first_name="Alice",
                                       last_name="Martin", gender="F"))
            continue
        if index == 2:
            people.append(_draw_person(rng, reference=reference, username="bob",
                                       systems=frozenset(SYSTEMS), first_name="Bob",
                                       last_name="Durand", gender="M"))
            continue
        draws = {system: rng.random() for system in SYSTEMS}
        systems = frozenset(s for s in SYSTEMS if draws[s] < MEMBERSHIP_RATE[s])
        people.append(_draw_person(rng, reference=reference, username=f"customer{index:03d}",
                                   systems=systems))
    return people


def legacy_only_people(seed: int, system: str, registered_count: int) -> list[Person]:
    """People a legacy system knows who never registered at the gateway (a tenth, at least 3)."""
    rng = rng_for(seed, "legacy-only", system)
    count = max(3, registered_count // 10)
    return [_draw_person(rng, reference=None, username=None, systems=frozenset({system}))
            for _ in range(count)]


def malformed_targets(rng: random.Random, references: list[str], count: int) -> list[str]:
    """Which registered customers get the malformed rows of a system, one per row.

    bob (C00002) gets the first, distinct random customers the others; alice (C00001) none,
    so her data stays clean for the demo of incremental changes. With too few customers,
    bob gets the rest.
    """
    candidates = sorted(r for r in references if r != "C00001")
    if not candidates:
        return []
    first = "C00002" if "C00002" in candidates else candidates[0]
    others = [r for r in candidates if r != first]
    picks = rng.sample(others, min(len(others), count - 1))
    return [first] + picks + [first] * (count - 1 - len(picks))
