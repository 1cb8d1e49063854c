"""A Nextcloud-shaped WebDAV server for the tests: wsgidav serving a folder at
/remote.php/dav/files/{user}/ with HTTP Basic auth (an app password), on cheroot, plus
Nextcloud's Login Flow v2 endpoints as its documentation describes them (the real Nextcloud,
a PHP application, does not run here): `POST /index.php/login/v2` starts a flow,
`POST /login/v2/poll` answers 404 until the user granted access at the login URL, then once
with {server, loginName, appPassword}. The user "grants" by POSTing to the login URL with
their credentials (Basic), standing in for Nextcloud's login page; the app password handed
out is the one this server accepts.

Run: python -m tests.connectors_out.webdav_server ROOT PORT USER PASSWORD
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import threading
import urllib.parse

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp


class LoginFlow:
    """The Login Flow v2 endpoints, in front of the WebDAV app."""

    def __init__(self, dav, *, port: int, user: str, password: str) -> None:
        self.dav, self.user, self.password = dav, user, password
        self.base = f"http://127.0.0.1:{port}"
        self.flows: dict[str, dict] = {}  # login id -> {token, granted}
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if method == "POST" and path == "/index.php/login/v2":
            login_id, token = secrets.token_hex(16), secrets.token_hex(32)
            with self.lock:
                self.flows[login_id] = {"token": token, "granted": False}
            return self._json(start_response, "200 OK", {
                "poll": {"token": token, "endpoint": f"{self.base}/login/v2/poll"},
                "login": f"{self.base}/login/v2/flow/{login_id}"})
        if method == "POST" and path.startswith("/login/v2/flow/"):
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            with self.lock:
                flow = self.flows.get(path.rsplit("/", 1)[-1])
                if flow is None or environ.get("HTTP_AUTHORIZATION") != expected:
                    return self._json(start_response, "403 Forbidden", {})
                flow["granted"] = True
            return self._json(start_response, "200 OK", {"granted": True})
        if method == "POST" and path == "/login/v2/poll":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = dict(urllib.parse.parse_qsl(environ["wsgi.input"].read(size).decode()))
            with self.lock:
                for login_id, flow in list(self.flows.items()):
                    if flow["token"] == form.get("token") and flow["granted"]:
                        del self.flows[login_id]  # answered once
                        return self._json(start_response, "200 OK", {
                            "server": self.base, "loginName": self.user, "appPassword": self.password})
            return self._json(start_response, "404 Not Found", {})
        return self.dav(environ, start_response)

    @staticmethod
    def _json(start_response, status: str, body: dict):
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def main(root: str, port: int, user: str, password: str) -> None:
    dav = WsgiDAVApp({
        "host": "127.0.0.1", "port": port,
        "provider_mapping": {f"/remote.php/dav/files/{user}": root},
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
        "verbose": 1, "logging": {"enable_loggers": []}, "property_manager": True, "lock_storage": True,
    })
    server = wsgi.Server(("127.0.0.1", port), LoginFlow(dav, port=port, user=user, password=password), numthreads=4)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
