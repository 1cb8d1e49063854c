"""The datasets the gateway can publish: their JSON Schemas, keys, dates and scopes.

The definitions below are the catalogue shipped with the gateway; `sync_catalogue()` (run by
`manage.py publish_catalogue` at each deployment) writes them to the Dataset table, where the
operator can edit titles and descriptions. It never overwrites what an operator edited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_DATE = {"type": "string", "format": "date"}
_DATETIME = {"type": "string", "format": "date-time"}
# Amounts in units with two decimals. Not "multipleOf: 0.01": validators check that in binary
# floating point and would refuse valid amounts such as 0.07.
_MONEY = {"type": "number"}
_PDL = {"type": "string", "pattern": "^[0-9]{14}$"}
#: A record identifier from a legacy system (contract, claim, call, invoice number): it names
#: files in archives and pushes, so what cannot be an identifier — a path (slash, backslash,
#: `..`), spaces, control characters, more than 100 characters — is refused and the row
#: quarantined. `(?![\\s\\S])` ends the text in every regex dialect (`$` would let a final line
#: break through in Python's).
_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 100,
               "pattern": "^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._:-]*(?![\\s\\S])"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


@dataclass(frozen=True)
class DatasetDefinition:
    slug: str
    title_en: str
    title_fr: str
    description_en: str
    description_fr: str
    natural_key: list[str]
    date_field: str
    properties: dict[str, Any]
    required: list[str]
    field_help: dict[str, dict[str, str]] = field(default_factory=dict)
    schema_version: str = "1.0.0"
    #: Texts earlier releases published for this dataset, by field name (`title_en`, …, or
    #: `field_help.<field>.<language>`): a row still holding one of them was not edited by an
    #: operator, so re-publishing gives it the current text. List the old text here when you
    #: change a shipped title, description or field help.
    former_texts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Also served as Green Button ESPI XML (API `format=espi`, `<slug>.espi.xml` in archives):
    #: the shape of its records, one of `greenbutton.KINDS` ("day-blocks": one record per meter
    #: and local day with its readings; "daily-energy": one kWh figure per meter and local day).
    espi: str | None = None

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:restitution:dataset:{self.slug}:{self.schema_version}",
            "title": self.title_en,
            "type": "object",
            "properties": self.properties,
            "required": self.required,
            "additionalProperties": False,
        }


DOCUMENT_REF = _nullable(
    {
        "type": "object",
        "properties": {
            "filename": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        "required": ["filename", "content_type", "size", "sha256"],
        "additionalProperties": False,
    }
)

DEFINITIONS: list[DatasetDefinition] = [
    DatasetDefinition(
        slug="insurance-contracts",
        title_en="Insurance contracts",
        title_fr="Contrats d'assurance",
        description_en="Every insurance contract you hold or held with us: product, dates, "
        "yearly premium and what it covers.",
        description_fr="Tous vos contrats d'assurance, en cours ou passés : produit, dates, "
        "prime annuelle et ce qu'ils couvrent.",
        natural_key=["contract_id"],
        date_field="start_date",
        properties={
            "contract_id": _IDENTIFIER,
            "product_code": {"type": "string"},
            "product": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "suspended", "terminated"]},
            "start_date": _DATE,
            "end_date": _nullable(_DATE),
            "annual_premium": _MONEY,
            "currency": {"type": "string", "const": "EUR"},
            "insured_object": _nullable({"type": "string"}),
            "deductible": _nullable(_MONEY),
        },
        required=["contract_id", "product_code", "product", "status", "start_date", "end_date",
                  "annual_premium", "currency", "insured_object", "deductible"],
        field_help={
            "product_code": {"en": "Our short code for the product, as on your documents.",
                             "fr": "Notre code court du produit, tel qu'il figure sur vos documents."},
            "start_date": {"en": "The day the contract began.", "fr": "Le jour où le contrat a commencé."},
            "end_date": {"en": "The day the contract ended; empty while it runs.",
                         "fr": "Le jour où le contrat a pris fin ; vide tant qu'il est en cours."},
            "currency": {"en": "The currency of the amounts (EUR: euros).",
                         "fr": "La devise des montants (EUR : euros)."},
            "contract_id": {"en": "Your contract number.", "fr": "Votre numéro de contrat."},
            "product": {"en": "The kind of insurance.", "fr": "Le type d'assurance."},
            "status": {"en": "Whether the contract is running.", "fr": "Si le contrat est en cours."},
            "annual_premium": {"en": "What the contract costs per year, in euros.",
                               "fr": "Ce que coûte le contrat par an, en euros."},
            "insured_object": {"en": "What is insured: a home address or a vehicle plate.",
                               "fr": "Ce qui est assuré : une adresse ou une immatriculation."},
            "deductible": {"en": "The part of a claim you pay yourself, in euros.",
                           "fr": "La franchise : la part d'un sinistre restant à votre charge."},
        },
    ),
    DatasetDefinition(
        slug="insurance-claims",
        title_en="Insurance claims",
        title_fr="Sinistres déclarés",
        description_en="The claims you declared: what happened, when, and what was paid.",
        description_fr="Les sinistres que vous avez déclarés : ce qui s'est passé, quand, et ce "
        "qui a été remboursé.",
        natural_key=["claim_id"],
        date_field="occurred_on",
        properties={
            "claim_id": _IDENTIFIER,
            "contract_id": {"type": "string"},
            "occurred_on": _DATE,
            "declared_on": _DATE,
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "settled", "rejected"]},
            "description": _nullable({"type": "string"}),
            "amount_claimed": _nullable(_MONEY),
            "amount_paid": _nullable(_MONEY),
            "currency": {"type": "string", "const": "EUR"},
        },
        required=["claim_id", "contract_id", "occurred_on", "declared_on", "kind", "status",
                  "description", "amount_claimed", "amount_paid", "currency"],
        field_help={
            "claim_id": {"en": "Your claim number.", "fr": "Votre numéro de sinistre."},
            "contract_id": {"en": "The contract the claim was declared on.",
                            "fr": "Le contrat sur lequel le sinistre a été déclaré."},
            "occurred_on": {"en": "The day it happened.", "fr": "Le jour où il est survenu."},
            "declared_on": {"en": "The day you told us.", "fr": "Le jour où vous nous l'avez déclaré."},
            "status": {"en": "Where the claim stands: open, settled or rejected.",
                       "fr": "Où en est le sinistre : en cours, réglé ou refusé."},
            "description": {"en": "What you told us about it; may be empty.",
                            "fr": "Ce que vous nous en avez dit ; peut être vide."},
            "amount_claimed": {"en": "What you asked for, in euros; empty when no amount was asked.",
                               "fr": "Ce que vous avez demandé, en euros ; vide sans montant demandé."},
            "currency": {"en": "The currency of the amounts (EUR: euros).",
                         "fr": "La devise des montants (EUR : euros)."},
            "kind": {"en": "What happened (water damage, theft…).",
                     "fr": "Ce qui s'est passé (dégât des eaux, vol…)."},
            "amount_paid": {"en": "What we paid you, in euros.", "fr": "Ce que nous vous avons versé, en euros."},
        },
    ),
    DatasetDefinition(
        slug="energy-load-curve",
        title_en="Electricity load curve (30 minutes)",
        title_fr="Courbe de charge électrique (30 minutes)",
        description_en="Your average electrical power, every half hour, as measured by your meter: "
        "one record per local day.",
        description_fr="Votre puissance électrique moyenne, toutes les demi-heures, mesurée par "
        "votre compteur : un enregistrement par jour.",
        natural_key=["delivery_point", "day"],
        date_field="start",
        schema_version="2.0.0",
        espi="day-blocks",
        properties={
            "delivery_point": _PDL,
            "day": _DATE,
            "time_zone": {"type": "string", "minLength": 1},
            "start": _DATETIME,
            "duration_seconds": {"type": "integer", "minimum": 1},
            "interval_seconds": {"type": "integer", "minimum": 1},
            "unit": {"type": "string", "const": "kW"},
            "quantity": {"type": "string", "const": "average_power"},
            "expected_readings": {"type": "integer", "minimum": 1},
            "missing_count": {"type": "integer", "minimum": 0},
            "missing": {"type": "array", "items": _DATETIME},
            "readings": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "start": _DATETIME,
                    "value": {"type": "number", "minimum": 0},
                    "quality": {"type": "string", "enum": ["measured", "estimated", "corrected"]},
                },
                "required": ["start", "value"],
                "additionalProperties": False,
            }},
        },
        required=["delivery_point", "day", "time_zone", "start", "duration_seconds",
                  "interval_seconds", "unit", "quantity", "expected_readings", "missing_count",
                  "missing", "readings"],
        field_help={
            "delivery_point": {"en": "Your 14-digit delivery point number (PDL).",
                               "fr": "Votre numéro de point de livraison (PDL), 14 chiffres."},
            "day": {"en": "The day, in the local time of the time zone given.",
                    "fr": "Le jour, en heure locale du fuseau indiqué."},
            "start": {"en": "Local midnight that opens the day, in UTC.",
                      "fr": "Minuit (heure locale) qui ouvre le jour, en UTC."},
            "duration_seconds": {"en": "Length of the day in seconds: 23 or 25 hours on the days "
                                 "the clocks change.",
                                 "fr": "Durée du jour en secondes : 23 ou 25 heures les jours "
                                 "de changement d'heure."},
            "time_zone": {"en": "The time zone the day is cut in (IANA name).",
                          "fr": "Le fuseau horaire dans lequel le jour est découpé (nom IANA)."},
            "interval_seconds": {"en": "Length of each reading's interval, in seconds (1800: half an hour).",
                                 "fr": "Durée de l'intervalle de chaque relevé, en secondes (1800 : une "
                                 "demi-heure)."},
            "unit": {"en": "Unit of each reading's value (kW).", "fr": "Unité de la valeur de chaque relevé (kW)."},
            "quantity": {"en": "What each value is: the average power over its interval.",
                         "fr": "Ce qu'est chaque valeur : la puissance moyenne sur son intervalle."},
            "expected_readings": {"en": "How many readings a complete day has (46, 48 or 50).",
                                  "fr": "Le nombre de relevés d'un jour complet (46, 48 ou 50)."},
            "missing_count": {"en": "How many of them the meter did not give.",
                              "fr": "Combien d'entre eux le compteur n'a pas donnés."},
            "missing": {"en": "Half hours of the day with no reading (their UTC start).",
                        "fr": "Demi-heures du jour sans relevé (leur début en UTC)."},
            "readings": {"en": "Average power drawn during each half hour, in kW, each with its "
                         "UTC start.",
                         "fr": "Puissance moyenne appelée pendant chaque demi-heure, en kW, "
                         "avec son début en UTC."},
        },
        former_texts={
            "description_en": ("Your average electrical power, every half hour, as measured by "
                               "your meter.",),
            "description_fr": ("Votre puissance électrique moyenne, toutes les demi-heures, "
                               "mesurée par votre compteur.",),
            "field_help.start.en": ("Start of the half hour, in UTC.",),
            "field_help.start.fr": ("Début de la demi-heure, en UTC.",),
        },
    ),
    DatasetDefinition(
        slug="energy-daily-consumption",
        title_en="Daily electricity consumption",
        title_fr="Consommation électrique quotidienne",
        description_en="How much electricity you used each day, in kWh.",
        description_fr="L'électricité consommée chaque jour, en kWh.",
        natural_key=["delivery_point", "day"],
        date_field="day",
        properties={
            "delivery_point": _PDL,
            "day": _DATE,
            "energy_kwh": {"type": "number", "minimum": 0},
            "max_power_kva": _nullable({"type": "number", "minimum": 0}),
        },
        required=["delivery_point", "day", "energy_kwh", "max_power_kva"],
        espi="daily-energy",
        field_help={
            "delivery_point": {"en": "Your 14-digit delivery point number (PDL).",
                               "fr": "Votre numéro de point de livraison (PDL), 14 chiffres."},
            "max_power_kva": {"en": "The highest power drawn that day, in kVA; empty when the meter "
                                    "does not measure it.",
                              "fr": "La puissance maximale appelée ce jour, en kVA ; vide quand le "
                                    "compteur ne la mesure pas."},
            "day": {"en": "The day, in French local time.", "fr": "Le jour, en heure légale française."},
            "energy_kwh": {"en": "Energy used that day, in kWh.", "fr": "Énergie consommée ce jour, en kWh."},
        },
    ),
    DatasetDefinition(
        slug="energy-contract",
        title_en="Electricity supply point",
        title_fr="Point de livraison électrique",
        description_en="Your delivery point's technical contract: tariff option, subscribed power, meter.",
        description_fr="Le contrat technique de votre point de livraison : option tarifaire, "
        "puissance souscrite, compteur.",
        natural_key=["delivery_point"],
        date_field="start_date",
        properties={
            "delivery_point": _PDL,
            "tariff_option": {"type": "string"},
            "subscribed_power_kva": {"type": "integer", "minimum": 1},
            "meter_type": {"type": "string"},
            "start_date": _DATE,
            "end_date": _nullable(_DATE),
            "postcode": {"type": "string", "pattern": "^[0-9]{5}$"},
        },
        required=["delivery_point", "tariff_option", "subscribed_power_kva", "meter_type",
                  "start_date", "end_date", "postcode"],
        field_help={
            "delivery_point": {"en": "Your 14-digit delivery point number (PDL).",
                               "fr": "Votre numéro de point de livraison (PDL), 14 chiffres."},
            "tariff_option": {"en": "How your electricity is priced: one price all day (Base), peak and "
                                    "off-peak hours, Tempo or peak-day load shedding (EJP).",
                              "fr": "Comment votre électricité est facturée : prix unique (Base), heures "
                                    "pleines / heures creuses, Tempo ou effacement jours de pointe (EJP)."},
            "subscribed_power_kva": {"en": "The power your contract allows, in kVA: above it, the "
                                           "breaker trips.",
                                     "fr": "La puissance que permet votre contrat, en kVA : au-delà, le "
                                           "disjoncteur coupe."},
            "meter_type": {"en": "Your meter: Linky (smart meter), electronic or electromechanical.",
                           "fr": "Votre compteur : Linky (communicant), électronique ou électromécanique."},
            "start_date": {"en": "The day this contract began at your delivery point.",
                           "fr": "Le jour où ce contrat a commencé à votre point de livraison."},
            "end_date": {"en": "The day it ended; empty while it runs.",
                         "fr": "Le jour où il a pris fin ; vide tant qu'il est en cours."},
            "postcode": {"en": "The postcode of the delivery point.",
                         "fr": "Le code postal du point de livraison."},
        },
    ),
    DatasetDefinition(
        slug="telco-call-log",
        title_en="Call and message log",
        title_fr="Journal des appels et SMS",
        description_en="Your calls and text messages. Your correspondents' numbers are partly "
        "hidden: they are other people's data.",
        description_fr="Vos appels et SMS. Les numéros de vos correspondants sont partiellement "
        "masqués : ce sont les données d'autres personnes.",
        natural_key=["call_id"],
        date_field="started_at",
        properties={
            "call_id": _IDENTIFIER,
            "line": {"type": "string"},
            "started_at": _DATETIME,
            "direction": {"type": "string", "enum": ["incoming", "outgoing"]},
            "kind": {"type": "string", "enum": ["voice", "sms"]},
            "correspondent": {"type": "string"},
            "duration_s": {"type": "integer", "minimum": 0},
            "cost": _nullable(_MONEY),
        },
        required=["call_id", "line", "started_at", "direction", "kind", "correspondent",
                  "duration_s", "cost"],
        field_help={
            "call_id": {"en": "Our reference of the call or message.",
                        "fr": "Notre référence de l'appel ou du message."},
            "line": {"en": "Your phone line that made or received it.",
                     "fr": "Votre ligne qui l'a émis ou reçu."},
            "started_at": {"en": "When it started.", "fr": "Quand il a commencé."},
            "direction": {"en": "Whether you made it (outgoing) or received it (incoming).",
                          "fr": "Si vous l'avez émis ou reçu."},
            "kind": {"en": "A call or a text message.", "fr": "Un appel ou un SMS."},
            "duration_s": {"en": "How long the call lasted, in seconds (0 for a text message or a missed call).",
                           "fr": "La durée de l'appel, en secondes (0 pour un SMS ou un appel manqué)."},
            "cost": {"en": "What was charged for it on top of your plan, in euros; empty when no charge "
                           "was recorded.",
                     "fr": "Ce qui vous a été facturé en plus de votre forfait, en euros ; vide quand "
                           "aucun montant n'a été enregistré."},
            "correspondent": {"en": "The other party's number, partly masked.",
                              "fr": "Le numéro du correspondant, partiellement masqué."},
        },
    ),
    DatasetDefinition(
        slug="telco-invoices",
        title_en="Telephone invoices",
        title_fr="Factures téléphoniques",
        description_en="Your invoices, with the PDF of each.",
        description_fr="Vos factures, avec le PDF de chacune.",
        natural_key=["invoice_id"],
        date_field="issued_on",
        properties={
            "invoice_id": _IDENTIFIER,
            "issued_on": _DATE,
            "period_start": _DATE,
            "period_end": _DATE,
            "amount_incl_tax": _MONEY,
            "currency": {"type": "string", "const": "EUR"},
            "status": {"type": "string", "enum": ["paid", "due", "late"]},
            "document": DOCUMENT_REF,
        },
        required=["invoice_id", "issued_on", "period_start", "period_end", "amount_incl_tax",
                  "currency", "status", "document"],
        field_help={
            "invoice_id": {"en": "The invoice number.", "fr": "Le numéro de la facture."},
            "issued_on": {"en": "The day the invoice was issued.", "fr": "Le jour où la facture a été émise."},
            "period_start": {"en": "First day the invoice covers.", "fr": "Premier jour couvert par la facture."},
            "period_end": {"en": "Last day the invoice covers.", "fr": "Dernier jour couvert par la facture."},
            "amount_incl_tax": {"en": "The total, taxes included, in euros.",
                                "fr": "Le total, toutes taxes comprises, en euros."},
            "currency": {"en": "The currency of the amount (EUR: euros).",
                         "fr": "La devise du montant (EUR : euros)."},
            "status": {"en": "Whether it is paid, due or late.", "fr": "Si elle est payée, à payer ou en retard."},
            "document": {"en": "The invoice as a PDF file.", "fr": "La facture en fichier PDF."},
        },
    ),
]

BY_SLUG: dict[str, DatasetDefinition] = {d.slug: d for d in DEFINITIONS}


def espi_kind(slug: str) -> str | None:
    """The Green Button ESPI shape a shipped dataset declares (None: not offered as ESPI)."""
    definition = BY_SLUG.get(slug)
    return definition.espi if definition is not None else None


def date_is_day(schema: Any, date_field: str) -> bool:
    """Whether a dataset's date field holds days (JSON Schema format `date`), not instants."""
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    spec = properties.get(date_field)
    return isinstance(spec, dict) and spec.get("format") == "date"


def day_zone(schema: Any, date_field: str, current: str = "") -> str:
    """The time zone whose local days a dataset's dates are (Dataset.day_zone): for a date field
    of days, the zone the dataset already has, else the customers' (GATEWAY_CUSTOMER_TIME_ZONE);
    empty when its dates are instants. A zone once set stays: the stored dates are its midnights."""
    if not date_is_day(schema, date_field):
        return ""
    if current:
        return current
    from django.conf import settings

    return settings.GATEWAY_CUSTOMER_TIME_ZONE


#: What always follows the code (an operator cannot edit them: restitution/admin.py).
CODE_FIELDS = ("schema", "schema_version", "natural_key", "date_field")
#: The human texts: written when the dataset is created, then only while nobody edited them.
TEXT_FIELDS = ("title_en", "title_fr", "description_en", "description_fr")


@dataclass
class CatalogueSync:
    """What a publication did: datasets created, datasets whose row changed, and the texts kept
    because an operator edited them (`slug.field`)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def sync_catalogue(*, definitions: Iterable[DatasetDefinition] = DEFINITIONS) -> CatalogueSync:
    """Publish the shipped datasets to the Dataset table, keeping what operators edited.

    A new dataset is created whole (published). For an existing one, the schema, its version,
    the natural key and the date field always follow the code; a title, a description or a
    field's help is replaced only while it still holds a text the catalogue published (the
    current one or one of `former_texts`) — anything else is an operator's edit and is kept, as
    is the operator's choice to publish the dataset or not. Datasets the operator created in
    the admin are not touched.
    """
    from django.db import transaction

    from .models import Dataset

    result = CatalogueSync()
    with transaction.atomic():
        for definition in definitions:
            row = Dataset.objects.select_for_update().filter(slug=definition.slug).first()
            if row is None:
                Dataset.objects.create(slug=definition.slug, field_help=definition.field_help,
                                       day_zone=day_zone(definition.schema, definition.date_field),
                                       **{name: getattr(definition, name) for name in CODE_FIELDS + TEXT_FIELDS})
                result.created.append(definition.slug)
                continue
            before = {name: getattr(row, name) for name in CODE_FIELDS + TEXT_FIELDS + ("field_help",)}
            for name in CODE_FIELDS:
                setattr(row, name, getattr(definition, name))
            for name in TEXT_FIELDS:
                if _published(definition, name, getattr(row, name)):
                    setattr(row, name, getattr(definition, name))
                else:
                    result.kept.append(f"{definition.slug}.{name}")
            row.field_help = _field_help(definition, row.field_help or {}, result.kept)
            before["day_zone"] = row.day_zone
            row.day_zone = day_zone(row.schema, row.date_field, row.day_zone)
            if any(getattr(row, name) != value for name, value in before.items()):
                row.save()
                result.updated.append(definition.slug)
    return result


def _published(definition: DatasetDefinition, name: str, text: str, shipped: str | None = None) -> bool:
    """Whether a stored text is one the catalogue published (so no operator edited it)."""
    shipped = getattr(definition, name) if shipped is None else shipped
    return text == shipped or text in definition.former_texts.get(name, ())


def _field_help(definition: DatasetDefinition, stored: dict[str, dict[str, str]], kept: list[str]
                ) -> dict[str, dict[str, str]]:
    """Each field's help, per language, as sync_catalogue() treats a text; help for a field the
    code documents and the row does not yet (a new schema version) is added."""
    merged = {name: dict(texts) for name, texts in stored.items()}
    for name, texts in definition.field_help.items():
        for language, text in texts.items():
            current = merged.get(name, {}).get(language)
            if current is None or _published(definition, f"field_help.{name}.{language}", current, text):
                merged.setdefault(name, {})[language] = text
            else:
                kept.append(f"{definition.slug}.field_help.{name}.{language}")
    return merged


def field_order(dataset) -> list[str]:
    """A Dataset row's fields in the order the catalogue declares them (PostgreSQL's jsonb keeps
    the schema's properties in its own order, not the declared one)."""
    properties = list(dataset.schema.get("properties", {}))
    declared = BY_SLUG.get(dataset.slug)
    if declared is None:
        return properties
    order = [name for name in declared.properties if name in properties]
    return order + [name for name in properties if name not in order]


def field_descriptions(dataset, language: str, time_zone: str = "UTC") -> list[dict[str, str]]:
    """Each field of a Dataset row with its label and plain-language description (or its type,
    when none); date-times are described in `time_zone`, the zone the reader sees them in."""
    language = "fr" if language.startswith("fr") else "en"
    properties = dataset.schema.get("properties", {})
    return [{"name": name, "label": field_label(name, language),
             "help": (dataset.field_help.get(name) or {}).get(language)
             or describe_type(properties[name], language, time_zone)}
            for name in field_order(dataset)]


def describe_type(schema: dict[str, Any], language: str, time_zone: str = "UTC") -> str:
    """A field's JSON Schema type in plain words ("a date (YYYY-MM-DD); may be empty")."""
    options = schema.get("anyOf") or [schema]
    choices = [str(v) for o in options for v in o.get("enum", [])]
    if choices:
        return ("l'une des valeurs : " if language == "fr" else "one of: ") + ", ".join(choices)
    kinds = []
    for option in options:
        kind = option.get("format") or option.get("type")
        if kind and kind != "null":
            kinds.append(str(kind))
    nullable = any(o.get("type") == "null" for o in options)
    if language == "fr":
        names = {"date": "une date (AAAA-MM-JJ)", "date-time": f"une date et heure ({time_zone})", "string": "un texte",
                 "number": "un nombre", "integer": "un nombre entier", "object": "un objet"}
        described = ", ".join(names.get(k, k) for k in kinds) or "une valeur"
        return described + (" ; peut être vide" if nullable else "")
    names = {"date": "a date (YYYY-MM-DD)", "date-time": f"a date and time ({time_zone})", "string": "text",
             "number": "a number", "integer": "a whole number", "object": "an object"}
    described = ", ".join(names.get(k, k) for k in kinds) or "a value"
    return described + ("; may be empty" if nullable else "")


# --- Human labels: what pages, spreadsheets and archives' READMEs call fields and values ------

#: Each field's name for people, (English, French). A field missing here is shown by its name.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "amount_claimed": ("Amount claimed", "Montant demandé"),
    "amount_incl_tax": ("Amount incl. tax", "Montant TTC"),
    "amount_paid": ("Amount paid", "Montant versé"),
    "annual_premium": ("Annual premium", "Prime annuelle"),
    "average_power_kw": ("Average power (kW)", "Puissance moyenne (kW)"),
    "call_id": ("Call number", "N° d'appel"),
    "claim_id": ("Claim number", "N° de sinistre"),
    "content_type": ("File type", "Type de fichier"),
    "contract_id": ("Contract number", "N° de contrat"),
    "correspondent": ("Correspondent", "Correspondant"),
    "cost": ("Cost", "Coût"),
    "currency": ("Currency", "Devise"),
    "day": ("Day", "Jour"),
    "declared_on": ("Declared on", "Déclaré le"),
    "deductible": ("Deductible", "Franchise"),
    "delivery_point": ("Delivery point", "Point de livraison"),
    "description": ("Description", "Description"),
    "direction": ("Direction", "Sens"),
    "document": ("Document", "Document"),
    "duration_s": ("Duration (seconds)", "Durée (secondes)"),
    "duration_seconds": ("Length of the day (seconds)", "Durée du jour (secondes)"),
    "end": ("End", "Fin"),
    "expected_readings": ("Expected readings", "Relevés attendus"),
    "end_date": ("End date", "Date de fin"),
    "energy_kwh": ("Energy (kWh)", "Énergie (kWh)"),
    "filename": ("File name", "Nom du fichier"),
    "insured_object": ("Insured object", "Bien assuré"),
    "interval_seconds": ("Interval (seconds)", "Pas (secondes)"),
    "invoice_id": ("Invoice number", "N° de facture"),
    "issued_on": ("Issued on", "Émise le"),
    "kind": ("Kind", "Type"),
    "line": ("Line", "Ligne"),
    "max_power_kva": ("Maximum power (kVA)", "Puissance maximale (kVA)"),
    "meter_type": ("Meter type", "Type de compteur"),
    "missing": ("Missing", "Manquant"),
    "missing_count": ("Number of missing readings", "Nombre de relevés manquants"),
    "occurred_on": ("Occurred on", "Survenu le"),
    "period_end": ("Period end", "Fin de période"),
    "period_start": ("Period start", "Début de période"),
    "postcode": ("Postcode", "Code postal"),
    "product": ("Product", "Produit"),
    "product_code": ("Product code", "Code produit"),
    "quality": ("Quality", "Qualité"),
    "quantity": ("Quantity", "Grandeur"),
    "reading_start": ("Interval start", "Début de l'intervalle"),
    "readings": ("Readings", "Relevés"),
    "size": ("Size", "Taille"),
    "start": ("Start", "Début"),
    "start_date": ("Start date", "Date de début"),
    "started_at": ("Started at", "Début"),
    "status": ("Status", "Statut"),
    "subscribed_power_kva": ("Subscribed power (kVA)", "Puissance souscrite (kVA)"),
    "tariff_option": ("Tariff option", "Option tarifaire"),
    "time_zone": ("Time zone", "Fuseau horaire"),
    "unit": ("Unit", "Unité"),
    "value": ("Value", "Valeur"),
}

#: Enumerated values in words, (English, French), by field then value.
VALUE_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "status": {"active": ("active", "en cours"), "suspended": ("suspended", "suspendu"),
               "terminated": ("terminated", "résilié"), "open": ("open", "en cours"),
               "settled": ("settled", "réglé"), "rejected": ("rejected", "refusé"),
               "paid": ("paid", "payée"), "due": ("due", "à payer"), "late": ("late", "en retard")},
    "direction": {"incoming": ("incoming", "reçu"), "outgoing": ("outgoing", "émis")},
    "kind": {"voice": ("call", "appel"), "sms": ("text message", "SMS")},
    "quality": {"measured": ("measured", "mesuré"), "estimated": ("estimated", "estimé"),
                "corrected": ("corrected", "corrigé")},
    "quantity": {"average_power": ("average power", "puissance moyenne")},
}


def has_day_blocks(schema: dict[str, Any]) -> bool:
    """Whether a dataset's records are day blocks of interval readings (restitution.mapping's
    "group"): a `readings` list of {start, value[, quality]} and the `missing` interval starts."""
    properties = schema.get("properties") or {}
    readings = properties.get("readings") or {}
    return (readings.get("type") == "array" and "missing" in properties
            and "start" in ((readings.get("items") or {}).get("properties") or {}))
#: What one record of a dataset is, counted in a sentence ("read 396 days of your electricity load
#: curve"): per language, the phrase after the number for one and for several. French takes the
#: singular for 0 and 1. A dataset missing here is counted in "records".
RECORD_NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "insurance-contracts": {"en": ("of your insurance contracts", "of your insurance contracts"),
                            "fr": ("de vos contrats d'assurance", "de vos contrats d'assurance")},
    "insurance-claims": {"en": ("of your insurance claims", "of your insurance claims"),
                         "fr": ("de vos sinistres", "de vos sinistres")},
    "energy-load-curve": {"en": ("day of your electricity load curve", "days of your electricity load curve"),
                          "fr": ("jour de votre courbe de charge", "jours de votre courbe de charge")},
    "energy-daily-consumption": {"en": ("day of your electricity consumption", "days of your electricity consumption"),
                                 "fr": ("jour de votre consommation d'électricité",
                                        "jours de votre consommation d'électricité")},
    "energy-contract": {"en": ("of your electricity supply point contracts",
                               "of your electricity supply point contracts"),
                        "fr": ("de vos contrats de point de livraison", "de vos contrats de point de livraison")},
    "telco-call-log": {"en": ("call or text message from your log", "calls and text messages from your log"),
                       "fr": ("appel ou SMS de votre journal", "appels et SMS de votre journal")},
    "telco-invoices": {"en": ("of your telephone invoices", "of your telephone invoices"),
                       "fr": ("de vos factures téléphoniques", "de vos factures téléphoniques")},
}


def counted(slug: str, count: int, language: str) -> str | None:
    """`count` records of a dataset in words ("396 days of your electricity consumption"), or None
    when the catalogue has no noun for it."""
    nouns = RECORD_NOUNS.get(slug)
    if nouns is None:
        return None
    french = language.startswith("fr")
    one, several = nouns["fr" if french else "en"]
    return f"{count} {one if (count <= 1 if french else count == 1) else several}"


def field_label(name: str, language: str) -> str:
    labels = FIELD_LABELS.get(name)
    if labels is None:
        return name.replace("_", " ").capitalize()
    return labels[1] if language.startswith("fr") else labels[0]


def value_label(name: str, value: Any, language: str) -> Any:
    """An enumerated value in words; any other value unchanged."""
    labels = VALUE_LABELS.get(name, {}).get(value) if isinstance(value, str) else None
    if labels is None:
        return value
    return labels[1] if language.startswith("fr") else labels[0]
