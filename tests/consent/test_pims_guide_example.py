"""The PIMS guide's copy-paste example runs against a live gateway set up like the demo."""

from __future__ import annotations

import importlib.util
import threading

import pytest
import requests

from demo.install import install_demo_client
from restitution.catalogue import sync_catalogue
from restitution.models import Grant
from tests.conftest import ROOT
from tests.consent.test_independent_client import Customer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_guide_example_runs_end_to_end(live_server, live_issuer, personas):
    sync_catalogue()
    install_demo_client()
    spec = importlib.util.spec_from_file_location("pims_client", ROOT / "docs" / "examples" / "pims_client.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    alice = Customer(live_server.url, "alice")
    errors: list[BaseException] = []

    def customer_approves(url: str) -> None:
        def go():
            try:
                callback = alice.approve(url, datasets=["energy-daily-consumption", "insurance-contracts"])
                requests.get(callback, timeout=10)  # the browser follows the redirect to the example
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threading.Thread(target=go).start()

    renewed = example.main(live_server.url, on_authorization_url=customer_approves)
    assert not errors
    assert set(renewed["scope"].split()) == {"dataset:energy-daily-consumption", "dataset:insurance-contracts"}
    assert Grant.objects.get(customer=personas.alice, client__client_id="demo-pims").is_active()
