"""`manage.py demo_serve`: the demo telco service and the gateway's web server, together."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from .demo import DEMO_TELCO_TOKEN, demo_environment_into_process


class Command(BaseCommand):
    help = "Serve the demo: the telco legacy service in a thread and the gateway on --port."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--telco-port", type=int, default=8081)

    def handle(self, *args, port, telco_port, **options):
        from demo.telco_server import serve_in_thread

        demo_environment_into_process(telco_port=telco_port)
        server, url = serve_in_thread(settings.GATEWAY_DEMO_DIR / "telco", port=telco_port,
                                      token=DEMO_TELCO_TOKEN)
        self.stdout.write(f"Telco legacy service at {url}")
        self.stdout.write(f"Gateway at http://127.0.0.1:{port}/ — admin at http://127.0.0.1:{port}/admin/")
        try:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
        finally:
            server.shutdown()
