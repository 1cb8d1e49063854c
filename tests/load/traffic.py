"""Traffic for the load and fault runs: PIMS clients that get their tokens through the real
consent flow over HTTP, and an open-loop generator of a CDR-like request mix.

Loopback only, bounded in time: every loop here stops at its deadline or on a stop event.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from demo.install import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_REDIRECT_URI
from tests.personas import pkce_pair

#: Endpoint tiers and their share of the mix (after the CDR's "high/low priority" tiers).
MIX = {"record-page": 0.60, "dataset-list": 0.20, "change-feed": 0.15, "token-refresh": 0.05}
#: The load run's mix adds archives: a small share of "export" actions, each one either asks for
#: an archive (POST /exports, tier export-request), or, while the client's archive is being
#: built, polls it (GET /exports/{id}, tier export-poll), or, once a poll has seen it ready,
#: downloads it through the signed link of the poll's answer (tier export-download), as a PIMS
#: client does.
LOAD_MIX = {"record-page": 0.58, "dataset-list": 0.19, "change-feed": 0.15, "token-refresh": 0.05, "export": 0.03}


class _Inputs(HTMLParser):
    """The named <input> fields of a page (hidden fields, CSRF token)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name") and attributes.get("type") in ("hidden", None):
            self.fields.setdefault(attributes["name"], attributes.get("value") or "")


def _inputs(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


@dataclass
class Tokens:
    username: str
    access: str
    refresh: str
    datasets: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)


def consent_over_http(base_url: str, *, username: str, datasets: list[str], password: str = DEMO_PASSWORD,
                      client_id: str = DEMO_CLIENT_ID, redirect_uri: str = DEMO_REDIRECT_URI,
                      duration: str = "12m", timeout: float = 30.0) -> Tokens:
    """Log in, approve the consent page, exchange the code (PKCE): what a customer and their
    personal cloud do. Raises AssertionError with the step that failed."""
    verifier, challenge = pkce_pair()
    with httpx.Client(base_url=base_url, timeout=timeout) as browser:
        page = browser.get("/accounts/login/")
        assert page.status_code == 200, f"login page: HTTP {page.status_code}"
        form = _inputs(page.text)
        done = browser.post("/accounts/login/", data={**form, "username": username, "password": password},
                            headers={"Referer": f"{base_url}/accounts/login/"})
        assert done.status_code == 302, f"login: HTTP {done.status_code}"
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                  "scope": " ".join(f"dataset:{slug}" for slug in datasets), "state": "load",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        consent = browser.get("/o/authorize/?" + urlencode(params))
        assert consent.status_code == 200, f"consent page: HTTP {consent.status_code}"
        form = _inputs(consent.text)
        answer = browser.post("/o/authorize/", data={**form, "datasets": datasets, "duration": duration,
                                                      "window_start": "", "window_end": "", "allow": "Authorize"},
                              headers={"Referer": f"{base_url}/o/authorize/"})
        assert answer.status_code == 302, f"consent: HTTP {answer.status_code}"
        query = parse_qs(urlparse(answer.headers["Location"]).query)
        assert "code" in query, f"consent: no code in the redirect ({sorted(query)})"
        token = browser.post("/o/token/", data={
            "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect_uri,
            "client_id": client_id, "code_verifier": verifier})
        assert token.status_code == 200, f"token: HTTP {token.status_code}"
        body = token.json()
    return Tokens(username, body["access_token"], body["refresh_token"], datasets)


@dataclass
class Sample:
    tier: str
    status: int  # 0: no answer (connection error, timeout; `error` says which)
    seconds: float
    at: float  # time.monotonic() when sent
    error: str = ""  # set when there is no usable answer: see failure_name(), or a download's body check
    bytes: int = 0  # body bytes read (archive downloads)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error

    @property
    def outcome(self) -> str:
        """The HTTP status, or the name of what went wrong when there is no usable answer."""
        return self.error or str(self.status)


@dataclass
class Outcome:
    """What Mix.perform() saw, when a status is not enough (downloads)."""

    status: int
    bytes: int = 0
    error: str = ""


#: Names of the failures without an HTTP answer, in the reports' errors by status.
FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (httpx.ConnectTimeout, "connect-timeout"), (httpx.ReadTimeout, "read-timeout"),
    (httpx.WriteTimeout, "write-timeout"), (httpx.PoolTimeout, "pool-timeout"),
    (httpx.ConnectError, "connect-error"), (httpx.ReadError, "read-error"), (httpx.WriteError, "write-error"),
    (httpx.RemoteProtocolError, "server-disconnected"),
)


def failure_name(exc: Exception) -> str:
    """A short name for a request that got no usable answer: `read-timeout`, `connect-error`…;
    `unexpected-<Exception>` for an error of the generator itself (never silent)."""
    for kind, name in FAILURES:
        if isinstance(exc, kind):
            return name
    if isinstance(exc, httpx.HTTPError):
        return f"http-{type(exc).__name__}"
    return f"unexpected-{type(exc).__name__}"


class Mix:
    """Chooses and performs one request of the mix for one of the clients (async)."""

    def __init__(self, clients: list[Tokens], *, refreshers: list[Tokens] = (), mix: dict[str, float] | None = None,
                 page_size: int = 100, seed: int = 1) -> None:
        self.clients = clients
        # Refreshing rotates the tokens and ends the old access token (RFC 9700 §4.14.2): the
        # refresh tier has clients of its own, so no data request is sent with a token just ended.
        self.refreshers = list(refreshers)
        self.mix = {k: v for k, v in (mix or MIX).items() if k != "token-refresh" or self.refreshers}
        self.page_size = page_size
        self.random = random.Random(seed)
        self.cursors: dict[tuple[str, str], str | None] = {}
        self.refreshing: set[str] = set()
        # Exports: per client, the job being polled ("" while its request is on its way), when it
        # was asked for, and how long each archive took to be ready (request to the poll saying 200).
        self.exports: dict[str, tuple[str, float]] = {}
        self.export_ready_s: list[float] = []
        self.exports_failed = 0
        # Archives seen ready, per client: (signed link, size, SHA-256), waiting for the client's
        # next export action, then being downloaded; the client asks for no new archive meanwhile.
        self.downloads: dict[str, tuple[str, int, str]] = {}
        self.downloading: dict[str, tuple[str, int, str]] = {}
        self.polls: dict[str, tuple[str, float]] = {}

    def choose(self) -> tuple[str, Tokens]:
        tier = self.random.choices(list(self.mix), weights=list(self.mix.values()))[0]
        tokens = self.random.choice(self.refreshers if tier == "token-refresh" else self.clients)
        if tier == "export":
            job = self.exports.get(tokens.username)
            if tokens.username in self.downloads:
                self.downloading[tokens.username] = self.downloads.pop(tokens.username)
                tier = "export-download"
            elif tokens.username in self.downloading:
                tier = "dataset-list"
            elif job is None:
                self.exports[tokens.username] = ("", time.monotonic())  # one request at a time per client
                tier = "export-request"
            elif job[0]:
                # Polls of one job may overlap, and the first to see it finished closes it: the
                # others still poll the job they were chosen for.
                self.polls[tokens.username] = job
                tier = "export-poll"
            else:
                tier = "dataset-list"
        return tier, tokens

    async def perform(self, http: httpx.AsyncClient, tier: str, tokens: Tokens) -> int | Outcome:
        if tier == "token-refresh":
            return await self._refresh(http, tokens)
        if tier == "export-download":
            return await self._download(http, tokens)
        headers = {"Authorization": f"Bearer {tokens.access}"}
        if tier.startswith("export-"):
            return await self._export(http, tier, tokens, headers)
        if tier == "dataset-list":
            return (await http.get("/api/v1/datasets", headers=headers)).status_code
        if tier == "change-feed":
            since = self.random.choice([0, 0, 1000, 10000])
            return (await http.get(f"/api/v1/changes?since={since}&page_size={self.page_size}",
                                   headers=headers)).status_code
        # A record page: each client walks its datasets page after page, then starts again.
        slug = self.random.choice(tokens.datasets)
        url = self.cursors.get((tokens.username, slug)) or (
            f"/api/v1/datasets/{slug}/records?page_size={self.page_size}")
        response = await http.get(url, headers=headers)
        if response.status_code == 200:
            next_url = response.json().get("next")
            self.cursors[(tokens.username, slug)] = urlparse(next_url)._replace(scheme="", netloc="").geturl() \
                if next_url else None
        return response.status_code

    async def _export(self, http: httpx.AsyncClient, tier: str, tokens: Tokens, headers: dict[str, str]) -> int:
        """Ask for an archive of one of the client's datasets, or poll the one being built."""
        if tier == "export-request":
            asked = self.exports.get(tokens.username, ("", time.monotonic()))[1]
            response = await http.post("/api/v1/exports", headers=headers,
                                       json={"datasets": [self.random.choice(tokens.datasets)]})
            if response.status_code == 202:
                self.exports[tokens.username] = (urlparse(response.headers["Content-Location"]).path, asked)
            else:
                self.exports.pop(tokens.username, None)
            return response.status_code
        url, asked = self.polls[tokens.username]
        response = await http.get(url, headers=headers)
        # Polls of one job may overlap (at high rates answers take seconds): only the first answer
        # that closes the job counts it.
        current = self.exports.get(tokens.username, ("", 0.0))[0] == url
        if response.status_code == 200 and current:
            self.exports.pop(tokens.username, None)
            body = response.json()
            if body.get("status") == "succeeded":
                self.export_ready_s.append(time.monotonic() - asked)
                archive = body["archive"]
                self.downloads[tokens.username] = (archive["url"], archive["size"], archive["sha256"])
            else:
                self.exports_failed += 1
        elif response.status_code != 202 and current:
            self.exports.pop(tokens.username, None)
        return response.status_code

    async def _download(self, http: httpx.AsyncClient, tokens: Tokens) -> Outcome:
        """Download the archive a poll saw ready, through its signed link (no token), streamed:
        the body is read to its end and hashed as it comes, never held in memory. A body of the
        wrong size or SHA-256 is an error (`size-mismatch`, `digest-mismatch`)."""
        link, size, sha256 = self.downloading[tokens.username]
        status = received = 0
        digest = hashlib.sha256()
        try:
            async with http.stream("GET", link) as response:
                status = response.status_code
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    digest.update(chunk)
        except httpx.HTTPError as exc:
            return Outcome(status, received, failure_name(exc))
        finally:
            # Done with this archive, whatever happened (a failed download is not retried): the
            # client may ask for a new one.
            self.downloading.pop(tokens.username, None)
        if status == 200 and received != size:
            return Outcome(status, received, "size-mismatch")
        if status == 200 and digest.hexdigest() != sha256:
            return Outcome(status, received, "digest-mismatch")
        return Outcome(status, received)

    async def _refresh(self, http: httpx.AsyncClient, tokens: Tokens) -> int:
        # Refresh tokens rotate: one refresh at a time per client, as a real client does.
        if tokens.username in self.refreshing:
            return await self.perform(http, "dataset-list", self.random.choice(self.clients))
        self.refreshing.add(tokens.username)
        try:
            response = await http.post("/o/token/", data={"grant_type": "refresh_token",
                                                          "refresh_token": tokens.refresh,
                                                          "client_id": DEMO_CLIENT_ID})
            if response.status_code == 200:
                body = response.json()
                tokens.access, tokens.refresh = body["access_token"], body["refresh_token"]
            return response.status_code
        finally:
            self.refreshing.discard(tokens.username)


async def _open_loop(base_url: str, mix: Mix, *, rate: float, duration: float, stop: threading.Event | None,
                     samples: list[Sample], max_in_flight: int, timeout: float) -> int:
    """Send requests at `rate` per second (not waiting for answers) for `duration` seconds.
    Returns how many could not be sent because `max_in_flight` answers were outstanding."""
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    in_flight = 0
    skipped = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as http:
        async def one(tier: str, tokens: Tokens) -> None:
            nonlocal in_flight
            sent = time.monotonic()
            try:
                outcome = await mix.perform(http, tier, tokens)
            except Exception as exc:  # no usable answer (or a fault of the generator): named, counted
                outcome = Outcome(0, error=failure_name(exc))
            finally:
                in_flight -= 1
            if isinstance(outcome, int):
                outcome = Outcome(outcome)
            samples.append(Sample(tier, outcome.status, time.monotonic() - sent, sent, outcome.error, outcome.bytes))

        tasks = set()
        started = time.monotonic()
        n = 0
        while True:
            due = started + n / rate
            now = time.monotonic()
            if now - started >= duration or (stop is not None and stop.is_set()):
                break
            if due > now:
                await asyncio.sleep(due - now)
            n += 1
            if in_flight >= max_in_flight:
                skipped += 1
                continue
            in_flight += 1
            task = asyncio.create_task(one(*mix.choose()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout + 1)
    return skipped


def open_loop(base_url: str, mix: Mix, *, rate: float, duration: float, stop: threading.Event | None = None,
              max_in_flight: int = 64, timeout: float = 10.0) -> tuple[list[Sample], int]:
    samples: list[Sample] = []
    skipped = asyncio.run(_open_loop(base_url, mix, rate=rate, duration=duration, stop=stop, samples=samples,
                                     max_in_flight=max_in_flight, timeout=timeout))
    return samples, skipped


class BackgroundLoad:
    """The mix at a steady rate in a thread, until stopped (or `limit` seconds at most)."""

    def __init__(self, base_url: str, clients: list[Tokens], *, refreshers: list[Tokens] = (), rate: float,
                 limit: float = 900, mix: dict[str, float] | None = None) -> None:
        self.stop_event = threading.Event()
        self.samples: list[Sample] = []
        self.skipped = 0
        mix_ = Mix(clients, refreshers=refreshers, mix=mix)

        def run() -> None:
            self.samples, self.skipped = open_loop(base_url, mix_, rate=rate, duration=limit, stop=self.stop_event)

        self.thread = threading.Thread(target=run, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def stop(self) -> list[Sample]:
        self.stop_event.set()
        self.thread.join(timeout=60)
        return self.samples


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(samples: list[Sample], *, seconds: float | None = None) -> dict[str, dict]:
    """Per tier: count, throughput, errors (non-2xx or no usable answer) and the same broken down
    by status (`{"503": 2, "read-timeout": 1}`), p50/p95/p99 in ms of the answered requests; the
    body bytes read, for the tiers that count them (downloads)."""
    by_tier: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_tier[sample.tier].append(sample)
    by_tier["all"] = list(samples)
    span = seconds or (max((s.at for s in samples), default=0) - min((s.at for s in samples), default=0)) or 1
    report = {}
    for tier, items in sorted(by_tier.items()):
        latencies = [s.seconds * 1000 for s in items if s.ok]
        failed = errors_by_status(items)
        report[tier] = {
            "requests": len(items), "per_s": round(len(items) / span, 1),
            "errors": sum(failed.values()), "errors_by_status": failed,
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
        }
        if tier != "all" and (tier in BYTE_TIERS or any(s.bytes for s in items)):
            report[tier]["bytes"] = sum(s.bytes for s in items)
            report[tier]["bytes_ok"] = sum(s.bytes for s in items if s.ok)
    return report


#: Tiers whose report always counts the bytes read.
BYTE_TIERS = {"export-download"}


def errors_by_status(samples: list[Sample]) -> dict[str, int]:
    """The failed requests counted by HTTP status, or by failure name when there was no usable
    answer (`read-timeout`, `connect-error`, `digest-mismatch`…); most frequent first."""
    counts: dict[str, int] = defaultdict(int)
    for sample in samples:
        if not sample.ok:
            counts[sample.outcome] += 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def statuses(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for sample in samples:
        counts[str(sample.status)] += 1
    return dict(sorted(counts.items()))


async def _closed_loop(base_url: str, request: Callable[[httpx.AsyncClient], Awaitable[int]], *, concurrency: int,
                       duration: float, samples: list[Sample], tier: str) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        deadline = time.monotonic() + duration

        async def user() -> None:
            while time.monotonic() < deadline:
                sent = time.monotonic()
                error = ""
                try:
                    status = await request(http)
                except httpx.HTTPError as exc:
                    status, error = 0, failure_name(exc)
                samples.append(Sample(tier, status, time.monotonic() - sent, sent, error))

        await asyncio.gather(*(user() for _ in range(concurrency)))


def closed_loop(base_url: str, request: Callable[[httpx.AsyncClient], Awaitable[int]], *, concurrency: int,
                duration: float, tier: str) -> list[Sample]:
    """`concurrency` users sending `request` back to back for `duration` seconds: the saturation
    throughput of one endpoint."""
    samples: list[Sample] = []
    asyncio.run(_closed_loop(base_url, request, concurrency=concurrency, duration=duration, samples=samples,
                             tier=tier))
    return samples
