"""`python -m tests.oidc_provider.serve`: migrate, seed, serve on a free port; prints `ready <port>`.

Seeds one person (username `alice.idp`, password from OIDC_PROVIDER_PASSWORD, member number from
OIDC_PROVIDER_MEMBER) and one confidential client for the gateway (OIDC_PROVIDER_CLIENT_*)."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oidc_provider.settings")

import django  # noqa: E402

django.setup()

from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    call_command("migrate", verbosity=0)
    people = {"alice.idp": os.environ["OIDC_PROVIDER_MEMBER"], "stranger.idp": "NOT-A-MEMBER"}
    for username, member in people.items():
        get_user_model().objects.create_user(username=username, password=os.environ["OIDC_PROVIDER_PASSWORD"],
                                             last_name=member, first_name=username)
    Application = get_application_model()
    Application.objects.create(
        name="Restitution gateway", client_id=os.environ["OIDC_PROVIDER_CLIENT_ID"],
        client_secret=os.environ["OIDC_PROVIDER_CLIENT_SECRET"], client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=os.environ["OIDC_PROVIDER_REDIRECT_URI"], algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True)
    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=ThreadedWSGIServer,
                         handler_class=QuietHandler)
    print(f"ready {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
