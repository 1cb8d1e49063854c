"""The Sources the gateway installs for the demo systems, and the environment they read.

Each entry of DEMO_SOURCES is a Source definition: adapter kind and options, the environment
variable holding its connection (a URL or a directory), and one mapping per dataset in the
language of `restitution.mapping`. `demo_environment()` gives those variables' values for a
directory written by `generator.generate()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import energy, insurer, telco

INSURER_ENV = "INSURER_DB_URL"
METERING_ENV = "METERING_EXPORT_DIR"
TELCO_URL_ENV = "TELCO_API_URL"
TELCO_TOKEN_ENV = "TELCO_API_TOKEN"  # noqa: S105 - a variable name
#: The bearer token of the demo telco API (a demo value, not a secret).
DEMO_TELCO_TOKEN = "demo-telco-token"  # noqa: S105
DEFAULT_TELCO_URL = "http://127.0.0.1:8081"

_CONTRACTS_QUERY = """
SELECT c.NUM_CONTRAT AS NUM_CONTRAT,
       c.NUM_SOCIETAIRE AS NUM_SOCIETAIRE,
       c.CD_PRODUIT AS CD_PRODUIT,
       p.LB_PRODUIT AS LB_PRODUIT,
       c.CD_STATUT AS CD_STATUT,
       c.DT_EFFET AS DT_EFFET,
       c.DT_FIN AS DT_FIN,
       c.MT_PRIME_ANNUELLE AS MT_PRIME_ANNUELLE,
       c.LB_OBJET_ASSURE AS LB_OBJET_ASSURE,
       c.MT_FRANCHISE AS MT_FRANCHISE
FROM T_CONTRAT c
LEFT JOIN T_CODE_PRODUIT p ON p.CD_PRODUIT = c.CD_PRODUIT
WHERE {customer_filter}
ORDER BY c.NUM_CONTRAT
""".strip()

# A claim belongs to a member through its contract.
_CLAIMS_QUERY = """
SELECT s.ID_SINISTRE AS ID_SINISTRE,
       s.NUM_SINISTRE AS NUM_SINISTRE,
       s.NUM_CONTRAT AS NUM_CONTRAT,
       c.NUM_SOCIETAIRE AS NUM_SOCIETAIRE,
       s.DT_SURVENANCE AS DT_SURVENANCE,
       s.DT_DECLARATION AS DT_DECLARATION,
       s.CD_NATURE AS CD_NATURE,
       n.LB_NATURE AS LB_NATURE,
       s.CD_ETAT AS CD_ETAT,
       s.LB_DESCRIPTIF AS LB_DESCRIPTIF,
       s.MT_RECLAME AS MT_RECLAME,
       s.MT_REGLE AS MT_REGLE
FROM T_SINISTRE s
JOIN T_CONTRAT c ON c.NUM_CONTRAT = s.NUM_CONTRAT
LEFT JOIN T_CODE_NATURE_SINISTRE n ON n.CD_NATURE = s.CD_NATURE
WHERE {customer_filter}
ORDER BY s.ID_SINISTRE
""".strip()

_YMD = {"convert": "date", "format": "%Y%m%d"}

INSURER_SOURCE: dict[str, Any] = {
    "slug": insurer.SOURCE_SLUG,
    "name": "Assureur — base contrats et sinistres",
    "kind": "sql",
    "connection_env": INSURER_ENV,
    "identity_system": "insurer",
    "options": {"datasets": {
        "insurance-contracts": {"query": _CONTRACTS_QUERY, "customer_column": "c.NUM_SOCIETAIRE",
                                "table": "T_CONTRAT", "row_key": ["NUM_CONTRAT"]},
        "insurance-claims": {"query": _CLAIMS_QUERY, "customer_column": "c.NUM_SOCIETAIRE",
                             "table": "T_SINISTRE", "row_key": ["ID_SINISTRE"]},
    }},
    "mappings": {
        "insurance-contracts": {
            "customer": "NUM_SOCIETAIRE",
            "fields": {
                "contract_id": {"from": "NUM_CONTRAT"},
                "product_code": {"from": "CD_PRODUIT"},
                "product": {"from": "LB_PRODUIT"},
                "status": {"from": "CD_STATUT", "convert": "code",
                           "codes": dict(insurer.CONTRACT_STATUS_CODES)},
                "start_date": {"from": "DT_EFFET", **_YMD},
                "end_date": {"from": "DT_FIN", **_YMD, "nullable": True,
                             "null_values": ["", "00000000"]},
                "annual_premium": {"from": "MT_PRIME_ANNUELLE", "convert": "cents"},
                "currency": {"const": "EUR"},
                "insured_object": {"from": "LB_OBJET_ASSURE", "nullable": True},
                "deductible": {"from": "MT_FRANCHISE", "convert": "cents", "nullable": True},
            },
        },
        "insurance-claims": {
            "customer": "NUM_SOCIETAIRE",
            "fields": {
                "claim_id": {"from": "NUM_SINISTRE"},
                "contract_id": {"from": "NUM_CONTRAT"},
                "occurred_on": {"from": "DT_SURVENANCE", **_YMD},
                "declared_on": {"from": "DT_DECLARATION", **_YMD},
                "kind": {"from": "LB_NATURE"},
                "status": {"from": "CD_ETAT", "convert": "code",
                           "codes": dict(insurer.CLAIM_STATUS_CODES)},
                "description": {"from": "LB_DESCRIPTIF", "nullable": True},
                "amount_claimed": {"from": "MT_RECLAME", "convert": "cents", "nullable": True},
                "amount_paid": {"from": "MT_REGLE", "convert": "cents", "nullable": True},
                "currency": {"const": "EUR"},
            },
        },
    },
    "datasets": ["insurance-contracts", "insurance-claims"],
    "max_concurrent_runs": 4,
    "max_requests_per_second": 50.0,
}

_PDL_FIELD, _TIME_FIELD, _POWER_FIELD = energy.LOAD_CURVE_HEADER
_LOCAL_TIME = {"convert": "datetime_local", "format": energy.LOCAL_FORMAT, "tz": "Europe/Paris"}
_DECIMAL_COMMA = {"convert": "decimal", "decimal_comma": True, "scale": 3}
_CSV_COMMON = {"encoding": energy.CSV_ENCODING, "delimiter": energy.CSV_DELIMITER,
               "quotechar": '"', "header": True}

METERING_SOURCE: dict[str, Any] = {
    "slug": energy.LOAD_CURVE_SOURCE,
    "name": "Gestionnaire de réseau — exports de comptage",
    "kind": "csv",
    "connection_env": METERING_ENV,
    "identity_system": "energy",
    "options": {"datasets": {
        "energy-load-curve": {"pattern": energy.LOAD_CURVE_PATTERN, **_CSV_COMMON},
        "energy-daily-consumption": {"pattern": energy.DAILY_PATTERN, **_CSV_COMMON},
    }},
    "mappings": {
        # One line per half hour → one record per PDL and local day (restitution.mapping's
        # "group"). Each file is one day with each PDL's lines together: blocks are consecutive.
        "energy-load-curve": {
            "customer": _PDL_FIELD,
            "fields": {
                "delivery_point": {"from": _PDL_FIELD},
                "start": {"from": _TIME_FIELD, **_LOCAL_TIME},
                "value": {"from": _POWER_FIELD, **_DECIMAL_COMMA},
            },
            "group": {"by": ["delivery_point"], "start": "start", "value": "value",
                      "time_zone": "Europe/Paris", "interval_seconds": 1800, "unit": "kW",
                      "quantity": "average_power", "order": "block"},
        },
        "energy-daily-consumption": {
            "customer": energy.DAILY_HEADER[0],
            "fields": {
                "delivery_point": {"from": energy.DAILY_HEADER[0]},
                "day": {"from": energy.DAILY_HEADER[1], "convert": "date",
                        "format": energy.DAY_FORMAT},
                "energy_kwh": {"from": energy.DAILY_HEADER[2], **_DECIMAL_COMMA},
                "max_power_kva": {"from": energy.DAILY_HEADER[3], **_DECIMAL_COMMA,
                                  "nullable": True},
            },
        },
    },
    "datasets": ["energy-load-curve", "energy-daily-consumption"],
    "max_concurrent_runs": 2,
    # Export files on a shared directory: opening them needs no rate cap (0 = none).
    "max_requests_per_second": 0,
}

CONTRACTS_SOURCE: dict[str, Any] = {
    "slug": energy.CONTRACT_SOURCE,
    "name": "Gestionnaire de réseau — contrats des points de livraison",
    "kind": "fixed-width",
    "connection_env": METERING_ENV,
    "identity_system": "energy",
    "options": {"datasets": {
        "energy-contract": {
            "pattern": energy.CONTRACT_PATTERN,
            "encoding": energy.CONTRACT_ENCODING,
            "record_length": energy.RECORD_LENGTH,
            "columns": [{"name": name, "start": start, "length": length}
                        for name, start, length in energy.CONTRACT_COLUMNS],
            "skip_if_prefix": list(energy.CONTRACT_SKIP_PREFIXES),
        },
    }},
    "mappings": {
        "energy-contract": {
            "customer": "PDL",
            "fields": {
                "delivery_point": {"from": "PDL"},
                "tariff_option": {"from": "OPTION_TARIFAIRE", "convert": "code",
                                  "codes": dict(energy.TARIFF_OPTIONS)},
                "subscribed_power_kva": {"from": "PUISSANCE_SOUSCRITE", "convert": "int"},
                "meter_type": {"from": "TYPE_COMPTEUR", "convert": "code",
                               "codes": dict(energy.METER_TYPES)},
                "start_date": {"from": "DATE_DEBUT", **_YMD},
                "end_date": {"from": "DATE_FIN", **_YMD, "nullable": True},
                "postcode": {"from": "CODE_POSTAL"},
            },
        },
    },
    "datasets": ["energy-contract"],
    "max_concurrent_runs": 2,
    "max_requests_per_second": 0,
}

TELCO_SOURCE: dict[str, Any] = {
    "slug": telco.SOURCE_SLUG,
    "name": "Opérateur mobile — facturation et relevés d'appels",
    "kind": "http-json",
    "connection_env": TELCO_URL_ENV,
    "identity_system": "telco",
    "options": {
        "token_env": TELCO_TOKEN_ENV,
        "timeout": 2.0,
        "datasets": {
            "telco-call-log": {
                "path": "/v2/accounts/{customer}/calls", "id_field": "call_id",
                "items_field": "items", "page_param": "page", "page_size_param": "per_page",
                "page_size": 200, "next_field": "next_page",
            },
            "telco-invoices": {
                "path": "/v2/accounts/{customer}/invoices", "id_field": "invoice_id",
                "items_field": "items", "page_param": "page", "page_size_param": "per_page",
                "page_size": 200, "next_field": "next_page",
                "attachments": {"pdf_url": {"content_type": "application/pdf",
                                            "filename": "{invoice_id}.pdf"}},
            },
        },
    },
    "mappings": {
        "telco-call-log": {
            "customer": "account_id",
            "fields": {
                "call_id": {"from": "call_id"},
                "line": {"from": "line"},
                "started_at": {"from": "started_at", "convert": "datetime_utc"},
                "direction": {"from": "direction", "convert": "code",
                              "codes": dict(telco.DIRECTIONS)},
                "kind": {"from": "type", "convert": "code", "codes": dict(telco.CALL_TYPES)},
                "correspondent": {"from": "correspondent", "convert": "mask_phone"},
                "duration_s": {"from": "duration", "convert": "int"},
                "cost": {"from": "charge.amount", "convert": "decimal", "scale": 2,
                         "nullable": True},
            },
        },
        "telco-invoices": {
            "customer": "account_id",
            "fields": {
                "invoice_id": {"from": "invoice_id"},
                "issued_on": {"from": "issue_date", "convert": "date", "format": "%Y-%m-%d"},
                "period_start": {"from": "period.start", "convert": "date", "format": "%Y-%m-%d"},
                "period_end": {"from": "period.end", "convert": "date", "format": "%Y-%m-%d"},
                "amount_incl_tax": {"from": "total.amount_incl_tax", "convert": "decimal",
                                    "scale": 2},
                "currency": {"const": "EUR"},
                "status": {"from": "status", "convert": "code",
                           "codes": dict(telco.INVOICE_STATUSES)},
                "document": {"from": "pdf_url", "convert": "attachment"},
            },
        },
    },
    "datasets": ["telco-call-log", "telco-invoices"],
    "max_concurrent_runs": 2,
    "max_requests_per_second": 10.0,
}

DEMO_SOURCES: list[dict[str, Any]] = [INSURER_SOURCE, METERING_SOURCE, CONTRACTS_SOURCE,
                                      TELCO_SOURCE]


def demo_environment(out_dir: Path, *, insurer_url: str | None = None,
                     telco_url: str | None = None) -> dict[str, str]:
    """The environment variables DEMO_SOURCES read, for the data generated in `out_dir`."""
    base = Path(out_dir).resolve()
    return {
        INSURER_ENV: insurer_url or f"sqlite:///{base / insurer.DB_FILENAME}",
        METERING_ENV: str(base / energy.EXPORT_DIR),
        TELCO_URL_ENV: telco_url or DEFAULT_TELCO_URL,
        TELCO_TOKEN_ENV: DEMO_TELCO_TOKEN,
    }
