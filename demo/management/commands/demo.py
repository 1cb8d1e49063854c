"""`manage.py demo`: generate the demo legacy systems, install them, extract, print how to log in.

Idempotent: run it again and it reuses what is there (`--regenerate` starts over).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from demo.install import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_REDIRECT_URI, install_demo
from restitution import extraction
from restitution.models import ExtractionRun, Source

DEMO_TELCO_TOKEN = "demo-telco-token"  # noqa: S105 - the demo service's published token
OPERATOR_USERNAME = "operator"


def demo_environment_into_process(*, telco_port: int) -> dict[str, str]:
    """Point the demo sources at the demo legacy systems (values already set are kept)."""
    from demo.sources import demo_environment

    env = demo_environment(settings.GATEWAY_DEMO_DIR, telco_url=f"http://127.0.0.1:{telco_port}")
    env["TELCO_API_TOKEN"] = DEMO_TELCO_TOKEN
    for name, value in env.items():
        os.environ.setdefault(name, value)
    return env


class Command(BaseCommand):
    help = "Set up the demo: legacy systems, sources, customers alice and bob, a PIMS client."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=24)
        parser.add_argument("--seed", type=int, default=20251115)
        parser.add_argument("--regenerate", action="store_true")
        parser.add_argument("--telco-port", type=int, default=8081)
        parser.add_argument("--no-extract", action="store_true")

    def handle(self, *args, customers, seed, regenerate, telco_port, no_extract, **options):
        from demo.generator import generate
        from demo.telco_server import serve_in_thread

        out_dir = settings.GATEWAY_DEMO_DIR
        if regenerate or not (out_dir / "ground_truth" / "customers.json").exists():
            self.stdout.write(f"Generating the demo legacy systems in {out_dir} …")
            out_dir.mkdir(parents=True, exist_ok=True)
            generate(out_dir, customers=customers, seed=seed)
        demo_environment_into_process(telco_port=telco_port)
        installed = install_demo(out_dir)
        self._operator_and_client()
        if not no_extract:
            server, _ = serve_in_thread(out_dir / "telco", port=telco_port, token=DEMO_TELCO_TOKEN)
            try:
                for source in Source.objects.filter(enabled=True).order_by("slug"):
                    run = extraction.request_extraction(source=source)
                    run = extraction.run_synchronously(run=run)
                    self.stdout.write(
                        f"  {source.slug}: {run.status}, {run.created} created, {run.updated} "
                        f"updated, {run.unchanged} unchanged, {run.deleted} deleted, "
                        f"{run.rejected} quarantined"
                    )
                    if run.status != ExtractionRun.Status.SUCCEEDED:
                        raise CommandError(f"extraction of {source.slug} failed: {run.error}")
            finally:
                server.shutdown()
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: {len(installed['customers'])} customers.\n"
            f"  Customers: alice / {DEMO_PASSWORD}, bob / {DEMO_PASSWORD}\n"
            f"  Operator (admin at /admin/): {OPERATOR_USERNAME} / {DEMO_PASSWORD}\n"
            f"  Demo PIMS client: client_id={DEMO_CLIENT_ID}, redirect_uri={DEMO_REDIRECT_URI}"
        ))

    def _operator_and_client(self) -> None:
        User = get_user_model()
        operator, created = User.objects.get_or_create(
            username=OPERATOR_USERNAME, defaults={"is_staff": True, "is_superuser": True})
        if created:
            operator.set_password(DEMO_PASSWORD)
            operator.save()
        from demo.install import install_demo_client

        install_demo_client()
