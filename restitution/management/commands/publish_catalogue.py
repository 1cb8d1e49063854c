"""`manage.py publish_catalogue`: publish the shipped datasets, keeping what operators edited.

Run at every deployment, after `migrate` (docs/operations.md); idempotent.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from restitution.catalogue import sync_catalogue


class Command(BaseCommand):
    help = ("Publish the dataset catalogue: schemas, keys and dates follow the code; titles, "
            "descriptions and field help an operator edited are kept.")

    def handle(self, *args, **options):
        result = sync_catalogue()
        self.stdout.write(f"Catalogue: {len(result.created)} created, {len(result.updated)} updated.")
        for kept in result.kept:
            self.stdout.write(f"  kept the operator's text of {kept}")
