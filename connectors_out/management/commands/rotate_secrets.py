"""Re-encrypt every stored credential and webhook secret with the newest key (the first of
GATEWAY_ENCRYPTION_KEYS). Run it after putting a new key first; then drop the old key."""

from django.core.management.base import BaseCommand

from connectors_out.delivery import rotate_credentials
from connectors_out.webhooks import rotate_endpoint_secrets


class Command(BaseCommand):
    help = "Re-encrypt stored destination credentials and webhook secrets with the newest key."

    def handle(self, *args, **options) -> None:
        destinations = rotate_credentials()
        endpoints = rotate_endpoint_secrets()
        self.stdout.write(f"re-encrypted {destinations} destination credential(s) and {endpoints} webhook secret(s)")
