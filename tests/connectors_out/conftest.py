"""Fixtures of the push tests: a demo customer extracted from the insurer's legacy database,
personal-cloud servers run as real processes (stopped and started again at will), and helpers
that deliver and read back."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from connectors_out import delivery as deliveries
from connectors_out.models import Delivery, Destination
from demo.install import install_demo
from demo.pdf import text_pdf
from restitution import extraction
from restitution.models import Customer, Dataset, Record, Source
from tests.conftest import ROOT, TELCO_TOKEN, deliver_events, demo_env_for, load_ground_truth
from tests.connectors_out.peers_install import npm_peers  # noqa: F401 - used by peers.py

INSURANCE = ["insurance-claims", "insurance-contracts"]
CUSTOMER = "C00001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PeerProcess:
    """A server process on a fixed port that a test can stop (as an outage) and start again."""

    def __init__(self, name: str, command: list[str], port: int, *, cwd: Path, log_dir: Path,
                 env: dict[str, str] | None = None, ready_timeout: float = 60) -> None:
        self.name, self.command, self.port, self.cwd = name, command, port, cwd
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_dir / f"{name}.log"
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


@dataclass
class DemoCustomer:
    customer: Customer
    demo_dir: Path
    datasets: list[Dataset]

    def truth(self) -> dict[tuple[str, str], dict[str, Any]]:
        slugs = {d.slug for d in self.datasets}
        return {(slug, key): data for (ref, slug, key), data in load_ground_truth(self.demo_dir).items()
                if ref == self.customer.reference and slug in slugs}

    def stored(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = Record.objects.filter(customer=self.customer, deleted=False,
                                     dataset__in=self.datasets)
        return {(slug, key): data for slug, key, data in rows.values_list("dataset__slug", "key", "data")}

    def extract(self, source_slug: str = "insurer-policies") -> None:
        source = Source.objects.get(slug=source_slug)
        run = extraction.request_extraction(source=source, customer=self.customer)
        assert extraction.run_synchronously(run=run).status == "succeeded"
        deliver_events()  # the run's event: deliveries queued, webhooks announced

    def legacy_sql(self, sql: str, *params: Any) -> None:
        with sqlite3.connect(self.demo_dir / "insurer.sqlite3") as connection:
            assert connection.execute(sql, params).rowcount == 1
        # the sqlite3 context manager commits

    def change_one_contract_and_drop_one_claim(self) -> tuple[tuple[str, str], tuple[str, str]]:
        contract = next(k for k in sorted(self.stored()) if k[0] == "insurance-contracts")
        claim = next(k for k in sorted(self.stored()) if k[0] == "insurance-claims")
        self.legacy_sql("UPDATE T_CONTRAT SET MT_PRIME_ANNUELLE = MT_PRIME_ANNUELLE + 1234 WHERE NUM_CONTRAT = ?",
                        contract[1])
        self.legacy_sql("DELETE FROM T_SINISTRE WHERE NUM_SINISTRE = ?", claim[1])
        return contract, claim


def _demo_customer(demo_dir: Path, telco_url: str, monkeypatch: pytest.MonkeyPatch, datasets: list[str],
                   source: str) -> DemoCustomer:
    for name, value in demo_env_for(demo_dir, telco_url).items():
        monkeypatch.setenv(name, value)
    install_demo(demo_dir, with_users=False)
    customer = Customer.objects.get(reference=CUSTOMER)
    customer.user = get_user_model().objects.create_user(username="c00001", password="not-used-here-3b1")
    customer.save()
    demo = DemoCustomer(customer, demo_dir, list(Dataset.objects.filter(slug__in=datasets)))
    demo.extract(source)
    assert demo.stored() == demo.truth() and len(demo.truth()) >= 4
    return demo


@pytest.fixture
def demo_customer(db, fresh_demo_dir: Path, monkeypatch: pytest.MonkeyPatch, flush_gate) -> DemoCustomer:
    """C00001 with their insurance contracts and claims, extracted from the insurer's database
    (a private copy: tests change it)."""
    return _demo_customer(fresh_demo_dir, "http://127.0.0.1:9/", monkeypatch, INSURANCE, "insurer-policies")


@pytest.fixture
def invoice_customer(db, demo_dir: Path, telco_server: str, monkeypatch: pytest.MonkeyPatch,
                     flush_gate) -> DemoCustomer:
    """C00001 with their telco invoices and the invoices' PDFs, from the telco billing API."""
    return _demo_customer(demo_dir, telco_server, monkeypatch, ["telco-invoices"], "telco-billing")


def connect(demo: DemoCustomer, kind: str, settings_: dict[str, Any], credentials: dict[str, Any],
            **kwargs: Any) -> Destination:
    return deliveries.connect_destination(customer=demo.customer, kind=kind, label=f"test {kind}",
                                          settings_=settings_, credentials=credentials, datasets=demo.datasets,
                                          duration="3m", **kwargs)


def run_queued(destination: Destination) -> list[deliveries.DeliveryOutcome]:
    """Execute the destination's queued deliveries in this process, as a worker would once each
    backoff step is over (the step is declared over, not slept through); returns each outcome."""
    outcomes = []
    for _ in range(20):
        queued = Delivery.objects.filter(destination=destination, status=Delivery.Status.QUEUED).first()
        if queued is None:
            break
        Delivery.objects.filter(pk=queued.pk).update(retry_at=None)
        outcome = deliveries.execute_delivery(delivery_id=queued.pk)
        outcomes.append(outcome)
        if outcome.retry_in is not None:
            break
    return outcomes


@pytest.fixture(scope="session")
def peers_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


@pytest.fixture(scope="session")
def solid_server(tmp_path_factory: pytest.TempPathFactory, peers_log_dir: Path):
    """One Community Solid Server for the session (file-backed)."""
    from tests.connectors_out.peers import SolidServer

    server = SolidServer(tmp_path_factory.mktemp("css"), peers_log_dir)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def armadietto(tmp_path_factory: pytest.TempPathFactory, peers_log_dir: Path):
    """One armadietto (remoteStorage) server for the session."""
    from tests.connectors_out.peers import ArmadiettoServer

    server = ArmadiettoServer(tmp_path_factory.mktemp("armadietto"), peers_log_dir)
    yield server
    server.process.stop()


def python_server(name: str, module: str, args: list[str], port: int, log_dir: Path) -> PeerProcess:
    return PeerProcess(name, [sys.executable, "-m", module, *args], port, cwd=ROOT, log_dir=log_dir)


@pytest.fixture
def tmp_peer_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "peer"
    path.mkdir()
    yield path


class ChangingTelco:
    """C00001's telco invoices served from a private copy of the billing system, which the test
    changes: an invoice's PDF re-issued, an invoice withdrawn."""

    def __init__(self, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = demo_dir / "telco"
        self.monkeypatch = monkeypatch
        self.demo_dir = demo_dir
        self.server = None
        self.url = self.serve()

    def serve(self) -> str:
        from demo.telco_server import serve_in_thread

        if self.server is not None:  # the billing API reads its invoice lists once
            self.server.shutdown()
        self.server, url = serve_in_thread(self.root, token=TELCO_TOKEN)
        for name, value in demo_env_for(self.demo_dir, url).items():
            self.monkeypatch.setenv(name, value)
        return url

    def _pdf(self, key: str) -> Path:
        return next(self.root.rglob(f"accounts/*/invoices/{key}.pdf"))

    def reissue(self, key: str) -> None:
        path = self._pdf(key)
        path.write_bytes(text_pdf(f"Facture {key} (rectificative)", ["Montant corrigé"]))

    def withdraw(self, key: str) -> None:
        listing = self._pdf(key).parent.parent / "invoices.json"
        invoices = json.loads(listing.read_text())
        kept = [item for item in invoices if item.get("invoice_id") != key]
        assert len(kept) == len(invoices) - 1
        listing.write_text(json.dumps(kept))
        self.url = self.serve()


@pytest.fixture
def changing_telco(db, fresh_demo_dir, monkeypatch, flush_gate):
    telco = ChangingTelco(fresh_demo_dir, monkeypatch)
    demo = _demo_customer(fresh_demo_dir, telco.url, monkeypatch, ["telco-invoices"], "telco-billing")
    yield demo, telco
    telco.server.shutdown()
