"""An OAuth client written with an independent library (authlib) against the running server:
authorization code + PKCE S256, refresh (rotation), revocation (RFC 7009)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.personas import PASSWORD, TRUSTED_REDIRECT, scope_of

pytestmark = pytest.mark.django_db(transaction=True)


def _hidden_fields(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = (value.group(1) if value else "").replace("&amp;", "&")
    return fields


class Customer:
    """The person in the browser: logs in on the gateway and approves on the consent page."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.http = requests.Session()
        page = self.http.get(urljoin(base, "/accounts/login/"))
        token = _hidden_fields(page.text)["csrfmiddlewaretoken"]
        done = self.http.post(urljoin(base, "/accounts/login/"), allow_redirects=False,
                              data={"username": username, "password": PASSWORD,
                                    "csrfmiddlewaretoken": token},
                              headers={"Referer": urljoin(base, "/accounts/login/")})
        assert done.status_code == 302, done.text[:300]

    def approve(self, authorization_url: str, datasets: list[str]) -> str:
        page = self.http.get(authorization_url)
        assert page.status_code == 200, page.text[:500]
        form = {k: v for k, v in _hidden_fields(page.text).items() if k != "next" and k != "language"}
        form.update({"datasets": datasets, "duration": "1m", "allow": "Authorize"})
        answer = self.http.post(urljoin(self.base, "/o/authorize/"), data=form, allow_redirects=False,
                                headers={"Referer": authorization_url})
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]


def test_an_authlib_client_completes_code_pkce_refresh_and_revoke(live_server, live_issuer, personas):
    base = live_server.url
    meta = requests.get(urljoin(base, "/.well-known/oauth-authorization-server")).json()
    client = OAuth2Session(client_id="trusted-cloud", redirect_uri=TRUSTED_REDIRECT,
                           scope=scope_of("energy-load-curve", "insurance-contracts"),
                           code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = "v" * 20 + "independent-client-verifier-0123456789"
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
    assert "code_challenge=" in url and "code_challenge_method=S256" in url

    callback = Customer(base, "alice").approve(url, datasets=["energy-load-curve"])
    assert callback.startswith(TRUSTED_REDIRECT)
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback,
                               code_verifier=verifier, state=state)
    assert token["scope"] == "dataset:energy-load-curve"
    me = requests.get(urljoin(base, "/api/v1/me"), headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json()["datasets"] == ["energy-load-curve"]

    # RFC 6749 §6: a refresh may not ask for more than was granted — ask for what was granted.
    renewed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"],
                                   scope=token["scope"])
    assert renewed["refresh_token"] != token["refresh_token"]
    assert renewed["access_token"] != token["access_token"]

    revoked = client.revoke_token(meta["revocation_endpoint"], token=renewed["access_token"],
                                  token_type_hint="access_token")
    assert revoked.status_code == 200
    after = requests.get(urljoin(base, "/api/v1/me"),
                         headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert after.status_code == 401
    assert "invalid_token" in after.headers.get("WWW-Authenticate", "")
