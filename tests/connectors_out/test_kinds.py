"""Destination kinds come from the registry: a kind that lives only in the tests (a local
folder) is added with its own folder and one registry line, and is then connected from the
dashboard, pushed to and read back like any other; without that line it does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from connectors_out import delivery as deliveries
from connectors_out import registry
from connectors_out.models import Delivery, Destination
from tests.connectors_out.conftest import run_queued
from tests.connectors_out.kinds.localfolder.kind import KEY_FILE
from tests.connectors_out.peers import _browser, _connect_form

REGISTRY_LINE = {"localfolder": "tests.connectors_out.kinds.localfolder.kind.KIND"}


def _read_back(folder: Path) -> dict[tuple[str, str], dict]:
    found = {}
    for path in folder.glob("*/*.json"):
        document = json.loads(path.read_text())
        assert (document["dataset"], document["key"]) not in found
        found[(document["dataset"], document["key"])] = document["data"]
    return found


def test_a_kind_not_in_the_registry_does_not_exist(demo_customer, tmp_path):
    browser = _browser(demo_customer)
    assert browser.get("/account/destinations/connect/localfolder/").status_code == 404
    assert "localfolder" not in browser.get("/account/destinations/").content.decode()
    with pytest.raises(ValueError, match="unknown destination kind"):
        deliveries.connect_destination(customer=demo_customer.customer, kind="localfolder", label="x",
                                       settings_={"folder": str(tmp_path)}, credentials={"key": "k"},
                                       datasets=demo_customer.datasets, duration="3m")
    assert not Destination.objects.exists()


def test_a_registry_entry_naming_another_kind_is_refused(settings):
    settings.CONNECTORS_EXTRA_KINDS = {"elsewhere": REGISTRY_LINE["localfolder"]}
    with pytest.raises(ValueError, match="calls itself"):
        registry.kind("elsewhere")


def test_one_folder_and_one_registry_line_make_a_working_kind(demo_customer, tmp_path, settings):
    settings.CONNECTORS_EXTRA_KINDS = REGISTRY_LINE
    folder = tmp_path / "cloud"
    folder.mkdir()
    (folder / KEY_FILE).write_text("the-right-key")
    browser = _browser(demo_customer)
    page = browser.get("/account/destinations/").content.decode()
    assert reverse("connectors_out:connect", args=["localfolder"]) in page and "Local folder (tests)" in page

    # refused side: the store does not accept the key → the form says why, nothing is recorded
    refused = browser.post("/account/destinations/connect/localfolder/",
                           _connect_form(demo_customer, folder=str(folder), key="a-wrong-key"))
    assert refused.status_code == 200 and "refused the gateway" in refused.content.decode()
    assert not Destination.objects.exists() and _read_back(folder) == {}

    done = browser.post("/account/destinations/connect/localfolder/",
                        _connect_form(demo_customer, folder=str(folder), key="the-right-key"))
    assert done.status_code == 302 and done["Location"] == "/account/destinations/"
    destination = Destination.objects.get(customer=demo_customer.customer)
    assert (destination.kind, destination.label, destination.kind_label) == ("localfolder", str(folder),
                                                                            "Local folder (tests)")
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert _read_back(folder) == demo_customer.truth()

    # a change and a deletion at the source: the next delivery writes and removes just those
    contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert _read_back(folder) == demo_customer.stored() and claim not in _read_back(folder)
    assert _read_back(folder)[contract] != demo_customer.truth()[contract]
    last = Delivery.objects.filter(destination=destination).first()
    assert (last.written, last.removed) == (1, 1)

    # the page shows the kind's own renewable credential, generically
    page = browser.get("/account/destinations/").content.decode()
    assert "Local folder (tests)" in page
