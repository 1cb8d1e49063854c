#!/usr/bin/env python3
"""Drives a running gateway over HTTP as a browser and a personal cloud would (stdlib only).

Used by `make image-check` against the containers: probes, the customer's login, the consent
page, the code exchanged with PKCE (RFC 7636), an extraction asked through the API and run by
the worker, and a records page. Exits non-zero with the step that failed.

    check_flow.py BASE_URL [--ca FILE] [--proxy-header] [--host HOST] [--probes-only | --no-extraction]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import secrets
import ssl
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

DEMO_USER, DEMO_PASSWORD = "alice", "demo-password-2025"
CLIENT_ID, REDIRECT_URI = "demo-pims", "https://pims.example/callback"
DATASETS = ("energy-daily-consumption", "insurance-contracts")


class Form(HTMLParser):
    """The inputs of the page's forms: name -> values (checkboxes give every value)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"input", "button", "textarea"}:
            attributes = dict(attrs)
            if attributes.get("name"):
                self.fields.setdefault(attributes["name"], []).append(attributes.get("value") or "")


class Links(HTMLParser):
    """The href of the page's <link> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link" and dict(attrs).get("href"):
            self.hrefs.append(dict(attrs)["href"] or "")

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.hrefs


def form_of(html: str) -> dict[str, list[str]]:
    parser = Form()
    parser.feed(html)
    return parser.fields


class Browser:
    """One HTTP(S) origin, cookies kept by hand (Secure cookies travel over the proxy's HTTP)."""

    def __init__(self, base: str, *, ca: str | None, proxy_header: bool, host: str | None) -> None:
        self.url = urlsplit(base)
        self.ca, self.proxy_header = ca, proxy_header
        self.host = host or self.url.netloc
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.url.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca)
            conn = http.client.HTTPSConnection(self.url.hostname, self.url.port or 443, timeout=30, context=context)
        else:
            conn = http.client.HTTPConnection(self.url.hostname, self.url.port or 80, timeout=30)
        sent = {"Host": self.host, "User-Agent": "gateway-image-check"}
        if self.proxy_header:  # what the TLS proxy in front says
            sent["X-Forwarded-Proto"] = "https"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent["Referer"] = f"https://{self.host}{path}"
        sent.update(headers or {})
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def step(name: str, ok: bool, detail: object = "") -> None:
    print(f"  {'ok ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail else ''}", flush=True)
    if not ok:
        sys.exit(f"image check failed at: {name}")


def probes(browser: Browser) -> None:
    status, _, body = browser.request("GET", "/healthz")
    step("/healthz", status == 200 and body.strip() == b"ok", status)
    status, _, body = browser.request("GET", "/readyz", headers={"Accept": "application/json"})
    checks = json.loads(body or b"{}") if status in {200, 500} else {}
    step("/readyz (database, storage, Redis, broker)", status == 200, checks)
    status, headers, body = browser.request("GET", "/accounts/login/")
    step("login page (templates and static files from the installed package)",
         status == 200 and b"csrfmiddlewaretoken" in body, status)
    stylesheets = [href for href in Links.of(body.decode()) if href.endswith(".css")]
    step("the login page links its stylesheet", bool(stylesheets), stylesheets)
    status, _, _ = browser.request("GET", stylesheets[0])
    step(f"static file {stylesheets[0]}", status == 200, status)


def consent_flow(browser: Browser, *, extraction: bool = True) -> None:
    status, _, page = browser.request("GET", "/accounts/login/")
    token = form_of(page.decode())["csrfmiddlewaretoken"][0]
    status, headers, _ = browser.request("POST", "/accounts/login/", body={
        "csrfmiddlewaretoken": token, "username": DEMO_USER, "password": DEMO_PASSWORD})
    step("customer login", status == 302, f"{status} {headers.get('location')}")

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                       "scope": " ".join(f"dataset:{slug}" for slug in DATASETS), "state": "image-check",
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    status, _, page = browser.request("GET", "/o/authorize/?" + query)
    step("consent page", status == 200 and b"allow" in page, status)
    fields = form_of(page.decode())
    answer = {name: values[0] for name, values in fields.items() if name not in {"datasets", "allow", "cancel"}}
    answer.update({"datasets": list(DATASETS), "duration": fields.get("duration", ["3m"])[0] or "3m",
                   "allow": "Authorize"})
    status, headers, _ = browser.request("POST", "/o/authorize/", body=answer)
    location = headers.get("location", "")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    step("consent given, code sent to the client", status == 302 and location.startswith(REDIRECT_URI)
         and params.get("state") == "image-check" and "code" in params, f"{status} {location[:60]}")

    client = Browser(f"{browser.url.scheme}://{browser.url.netloc}", ca=browser.ca,
                     proxy_header=browser.proxy_header, host=browser.host)
    status, _, body = client.request("POST", "/o/token/", body={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "code_verifier": verifier})
    tokens = json.loads(body) if status == 200 else {}
    step("code exchanged for tokens (PKCE)", "access_token" in tokens, status)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"}
    status, _, body = client.request("GET", "/api/v1/me", headers=bearer)
    step("the token reads /api/v1/me", status == 200, status)
    if not extraction:
        return

    status, _, body = client.request("POST", "/api/v1/extractions", headers=bearer)
    queued = json.loads(body) if status == 202 else {}
    step("extraction asked through the API", status == 202, f"{status} {body[:120]!r}")
    runs = [run["id"] for run in queued.get("extractions", queued.get("items", []))] or [
        urlsplit(queued.get("location", "")).path.rstrip("/").rsplit("/", 1)[-1]]
    deadline, states = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        for run in runs:
            status, _, body = client.request("GET", f"/api/v1/extractions/{run}", headers=bearer)
            states[run] = json.loads(body).get("status") if status == 200 else status
        if all(state in {"succeeded", "failed"} for state in states.values()):
            break
        time.sleep(1)
    step("extraction run by the worker container", all(s == "succeeded" for s in states.values()), states)

    status, _, body = client.request("GET", f"/api/v1/datasets/{DATASETS[0]}/records?page_size=50", headers=bearer)
    items = json.loads(body).get("items", []) if status == 200 else []
    step(f"API page of {DATASETS[0]}", status == 200 and len(items) > 0, f"{status}, {len(items)} records")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--ca")
    parser.add_argument("--proxy-header", action="store_true")
    parser.add_argument("--host")
    parser.add_argument("--probes-only", action="store_true")
    parser.add_argument("--no-extraction", action="store_true", help="stop after the token")
    args = parser.parse_args()
    browser = Browser(args.base, ca=args.ca, proxy_header=args.proxy_header, host=args.host)
    probes(browser)
    if not args.probes_only:
        consent_flow(browser, extraction=not args.no_extraction)


if __name__ == "__main__":
    main()
