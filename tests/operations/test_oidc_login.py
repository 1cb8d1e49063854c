"""Customer login through the holder's OpenID Connect provider, against a real provider process
(django-oauth-toolkit with OIDC: RS256 ID tokens, JWKS, userinfo, PKCE): the provider's member
number is mapped to the customer's legacy identity; strangers are refused; local logins stay."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from restitution.models import LegacyIdentity
from tests.conftest import ROOT
from tests.personas import PASSWORD

IDP_PASSWORD = "idp-password-" + "p" * 20  # noqa: S105
CLIENT_ID, CLIENT_SECRET = "gateway-rp", "gateway-rp-secret-" + "s" * 30
MEMBER = "M-000123"
CALLBACK = "http://testserver/oidc/callback/"


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (workdir / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    env = {**os.environ, "OIDC_PROVIDER_DB": str(workdir / "idp.sqlite3"),
           "OIDC_PROVIDER_KEY": str(workdir / "key.pem"),
           "OIDC_PROVIDER_PASSWORD": IDP_PASSWORD, "OIDC_PROVIDER_MEMBER": MEMBER,
           "OIDC_PROVIDER_CLIENT_ID": CLIENT_ID, "OIDC_PROVIDER_CLIENT_SECRET": CLIENT_SECRET,
           "OIDC_PROVIDER_REDIRECT_URI": CALLBACK, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings"}
    for name in ("DATABASE_URL", "REDIS_URL", "GATEWAY_MODE"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "tests.oidc_provider.serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"the OIDC provider did not start: {line}{process.stdout.read()[-2000:]}")
    yield f"http://127.0.0.1:{line.split()[1]}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def oidc(provider, settings):
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider}/o/authorize/"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider}/o/token/"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider}/o/userinfo/"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider}/o/.well-known/jwks.json"
    settings.GATEWAY_OIDC_CUSTOMER_CLAIM, settings.GATEWAY_OIDC_IDENTITY_SYSTEM = "member_number", "insurer"
    return provider


def _log_in_at_the_provider(provider: str, authorize_url: str, username: str) -> str:
    """What the person does at the holder's provider; returns where it sends the browser back."""
    idp = requests.Session()
    form = idp.get(f"{provider}/accounts/login/", timeout=10)
    assert form.status_code == 200
    done = idp.post(f"{provider}/accounts/login/", timeout=10, allow_redirects=False, data={
        "csrfmiddlewaretoken": idp.cookies["csrftoken"], "username": username, "password": IDP_PASSWORD,
        "next": authorize_url.removeprefix(provider)})
    assert done.status_code == 302, done.text[:500]
    back = idp.get(f"{provider}{done.headers['Location']}" if done.headers["Location"].startswith("/")
                   else done.headers["Location"], timeout=10, allow_redirects=False)
    assert back.status_code == 302 and back.headers["Location"].startswith(CALLBACK), back.text[:500]
    return back.headers["Location"]


def _oidc_login(browser: Client, provider: str, username: str):
    start = browser.get("/oidc/authenticate/", {"next": "/account/"})
    assert start.status_code == 302 and start["Location"].startswith(f"{provider}/o/authorize/")
    query = parse_qs(urlparse(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    callback = _log_in_at_the_provider(provider, start["Location"], username)
    return browser.get(callback.removeprefix("http://testserver"))


def test_a_customer_logs_in_with_the_holders_provider(personas, oidc):
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value=MEMBER)
    browser = Client()
    assert "Log in with your" in browser.get("/accounts/login/").content.decode()
    landed = _oidc_login(browser, oidc, "alice.idp")
    assert landed.status_code == 302 and landed["Location"] == "/account/"
    dashboard = browser.get("/account/")
    assert dashboard.status_code == 200
    assert dashboard.wsgi_request.user == personas.alice.user


def test_a_known_customer_without_an_account_gets_one_linked_to_their_record(personas, oidc):
    from restitution.models import Customer

    carol = Customer.objects.create(reference="C-CAROL", display_name="Carol")
    LegacyIdentity.objects.create(customer=carol, system="insurer", value=MEMBER)
    browser = Client()
    assert _oidc_login(browser, oidc, "alice.idp")["Location"] == "/account/"
    carol.refresh_from_db()
    assert carol.user is not None and not carol.user.has_usable_password()
    assert browser.get("/account/").wsgi_request.user == carol.user


def test_someone_the_holder_does_not_know_is_refused(personas, oidc):
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value=MEMBER)
    browser = Client()
    refused = _oidc_login(browser, oidc, "stranger.idp")
    assert refused.status_code == 302 and refused["Location"].startswith("/accounts/login/?oidc=failed")
    assert browser.get("/account/").status_code == 302  # still anonymous
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username__startswith="oidc-").exists()


def test_a_forged_callback_is_refused(personas, oidc):
    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value=MEMBER)
    browser = Client()
    browser.get("/oidc/authenticate/")
    forged = browser.get("/oidc/callback/", {"code": "made-up", "state": "made-up"})
    assert forged.status_code in (302, 400)
    assert browser.get("/account/").status_code == 302


def test_local_accounts_still_log_in_and_oidc_is_off_unless_configured(personas, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    browser = Client()
    assert "Log in with your" not in browser.get("/accounts/login/").content.decode()
    assert browser.get("/oidc/authenticate/").status_code == 404
    assert browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert browser.get("/account/").status_code == 200
