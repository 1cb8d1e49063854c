"""Install the demo into the gateway's database: catalogue, demo sources, customers, a PIMS client.

Reads what the generator wrote (ground_truth/customers.json); never generates data itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from restitution.mapping import compile_mapping
from restitution.models import Customer, Dataset, LegacyIdentity, PimsClient, Source

DEMO_PASSWORD = "demo-password-2025"  # noqa: S105 - the demo's published credentials
DEMO_CLIENT_ID = "demo-pims"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def install_sources(definitions: list[dict[str, Any]]) -> list[Source]:
    """Create or update Sources from plain definitions, checking every mapping first."""
    sources = []
    for definition in definitions:
        datasets = list(Dataset.objects.filter(slug__in=definition["datasets"]))
        for dataset in datasets:
            compile_mapping(definition["mappings"][dataset.slug], dataset.schema)
        fields = {k: v for k, v in definition.items() if k not in {"slug", "datasets"}}
        source, _ = Source.objects.update_or_create(slug=definition["slug"], defaults=fields)
        source.datasets.set(datasets)
        sources.append(source)
    return sources


def install_customers(customers: list[dict[str, Any]], *, password: str | None = DEMO_PASSWORD,
                      with_users: bool = True) -> list[Customer]:
    """Customers with their legacy identities (and, for the demo, login accounts)."""
    User = get_user_model()
    result = []
    for entry in customers:
        customer, _ = Customer.objects.update_or_create(
            reference=entry["reference"], defaults={"display_name": entry.get("display_name", "")}
        )
        if with_users and entry.get("username"):
            user, created = User.objects.get_or_create(username=entry["username"])
            if created and password:
                user.set_password(password)
                user.save()
            if customer.user_id != user.pk:
                customer.user = user
                customer.save(update_fields=["user"])
        for system, value in entry.get("identities", {}).items():
            LegacyIdentity.objects.update_or_create(system=system, value=value,
                                                    defaults={"customer": customer})
        result.append(customer)
    return result


@transaction.atomic
def install_demo(out_dir: Path, *, with_users: bool = True) -> dict[str, Any]:
    """Everything the demo needs in the database; idempotent."""
    from .sources import DEMO_SOURCES

    call_command("publish_catalogue", verbosity=0)
    sources = install_sources(DEMO_SOURCES)
    customers = json.loads((out_dir / "ground_truth" / "customers.json").read_text(encoding="utf-8"))
    installed = install_customers(customers, with_users=with_users)
    return {"sources": sources, "customers": installed}


def install_demo_client() -> PimsClient:
    """The demo personal cloud: a public client (PKCE), approved, allowed every dataset."""
    client, _ = PimsClient.objects.update_or_create(
        client_id=DEMO_CLIENT_ID,
        defaults={
            "name": "Demo personal cloud",
            "client_type": PimsClient.CLIENT_PUBLIC,
            "authorization_grant_type": PimsClient.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": DEMO_REDIRECT_URI,
            "algorithm": "",
            "approval": PimsClient.Approval.APPROVED,
            "homepage_url": "https://pims.example/",
            "privacy_policy_url": "https://pims.example/privacy",
            "purpose_en": "Keep a copy of your data in your personal cloud and show you your "
                          "energy use, your contracts and your bills in one place.",
            "purpose_fr": "Garder une copie de vos données dans votre cloud personnel et vous "
                          "montrer votre consommation, vos contrats et vos factures au même endroit.",
        },
    )
    client.allowed_datasets.set(Dataset.objects.all())
    return client
