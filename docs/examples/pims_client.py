"""A minimal PIMS client of the restitution gateway — standard library only.

    python docs/examples/pims_client.py http://127.0.0.1:8000

Registers nothing (it uses the demo's public client `demo-pims`), then:
1. builds a PKCE S256 pair and a state, and prints the authorization URL to open;
2. catches the redirect on http://127.0.0.1:8765/callback (the demo client's redirect URI);
3. exchanges the code, calls the API, refreshes (the refresh token rotates), revokes.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import sys
import threading
import urllib.parse
import urllib.request

CLIENT_ID = "demo-pims"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
SCOPES = "dataset:energy-daily-consumption dataset:insurance-contracts"


def post_form(url: str, fields: dict[str, str]) -> dict:
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - the gateway
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the gateway's URL
        text = response.read().decode()
    return json.loads(text) if text else {}


def get_json(url: str, access_token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {access_token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def wait_for_callback(port: int, opened: threading.Event | None = None) -> dict[str, str]:
    """Serve one request on the redirect URI and return its query parameters."""
    received: dict[str, str] = {}

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            received.update(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"You can close this window.\n")

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", port), Callback) as server:
        if opened is not None:
            opened.set()
        server.handle_request()
    return received


def main(base: str, on_authorization_url=print) -> dict:
    meta = json.load(urllib.request.urlopen(f"{base}/.well-known/oauth-authorization-server"))  # noqa: S310

    # 1. PKCE (RFC 7636, S256 only) and state.
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    url = meta["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
        "scope": SCOPES, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
    })

    # 2. The customer logs in, chooses what to share, and is sent back here.
    opened = threading.Event()
    result: dict[str, str] = {}
    listener = threading.Thread(target=lambda: result.update(wait_for_callback(8765, opened)))
    listener.start()
    opened.wait()
    on_authorization_url(url)
    listener.join()
    if result.get("state") != state:
        raise SystemExit("state mismatch: not our request")
    if "error" in result:
        raise SystemExit(f"the customer declined: {result['error']}")

    # 3. Code → tokens (public client: no secret, the PKCE verifier proves it is us).
    tokens = post_form(meta["token_endpoint"], {
        "grant_type": "authorization_code", "code": result["code"], "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "code_verifier": verifier,
    })
    print("granted scopes:", tokens["scope"])
    print("me:", get_json(f"{base}/api/v1/me", tokens["access_token"]))

    # 4. Refresh: the old refresh token is now spent — never use it again (that revokes all).
    renewed = post_form(meta["token_endpoint"], {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": CLIENT_ID,
    })
    print("refreshed, new refresh token issued:", renewed["refresh_token"] != tokens["refresh_token"])

    # 5. Revoke when done (RFC 7009).
    post_form(meta["revocation_endpoint"], {"token": renewed["refresh_token"], "client_id": CLIENT_ID,
                                            "token_type_hint": "refresh_token"})
    print("revoked")
    return renewed


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000",
         on_authorization_url=lambda url: print("Open this URL, log in as alice and approve:\n" + url))
