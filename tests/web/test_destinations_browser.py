"""In real headless Chromium: a customer connects their remoteStorage (armadietto, a real
server) from the dashboard — WebFinger, the storage's own authorization page, and back to the
gateway, whose callback page reads the token from the URL fragment and posts it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from connectors_out.models import Destination
from restitution import crypto
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_connects_a_remotestorage_through_its_authorization_page(live_server, personas, page,
                                                                            artifacts_dir, tmp_path):
    from tests.connectors_out.peers import ArmadiettoServer

    storage = ArmadiettoServer(tmp_path, tmp_path)
    try:
        user, password = f"u{uuid.uuid4().hex[:8]}", "storage-pw-1234"
        httpx.post(f"{storage.origin}/signup", data={"username": user, "email": f"{user}@example.org",
                                                     "password": password}).raise_for_status()
        page.goto(live_server.url + "/account/destinations/connect/remotestorage/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Your remoteStorage address").fill(f"{user}@127.0.0.1:{storage.port}")
        page.get_by_label("Insurance contracts").check()
        page.screenshot(path=str(artifacts_dir / "connect-remotestorage.png"), full_page=True)
        page.get_by_role("button", name="Connect", exact=True).click()

        page.wait_for_url(f"{storage.origin}/oauth/**")  # the storage's own page
        page.locator("#password").fill(password)
        page.get_by_role("button", name="Allow").click()

        page.wait_for_url(live_server.url + "/account/destinations/")
        page.get_by_text("Connected: your data is on its way.").wait_for()
        page.screenshot(path=str(artifacts_dir / "destinations.png"), full_page=True)
        destination = Destination.objects.get(customer=personas.alice)
        assert destination.is_active() and destination.settings["storage_root"].startswith(storage.origin)
        token = crypto.decrypt_json(destination.credentials)["access_token"]
        assert token and token not in page.content()
        # the token works on the storage, within the category it was granted for
        root = f"{storage.origin}/storage/{user}/restitution/"
        assert httpx.put(root + "probe.json", content=b"{}", headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"}).status_code in (200, 201)
    finally:
        storage.process.stop()


def test_a_customer_who_denies_at_the_storage_is_told_and_the_pending_connection_ends(
        live_server, personas, page, artifacts_dir, tmp_path):
    """armadietto answers a refusal with `#error=access_denied` in the fragment and no state: the
    callback page's script carries it to the gateway, which ends the connection and says so."""
    from tests.connectors_out.peers import ArmadiettoServer

    storage = ArmadiettoServer(tmp_path, tmp_path)
    try:
        user, password = f"u{uuid.uuid4().hex[:8]}", "storage-pw-1234"
        httpx.post(f"{storage.origin}/signup", data={"username": user, "email": f"{user}@example.org",
                                                     "password": password}).raise_for_status()
        page.goto(live_server.url + "/account/destinations/connect/remotestorage/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Your remoteStorage address").fill(f"{user}@127.0.0.1:{storage.port}")
        page.get_by_label("Insurance contracts").check()
        page.get_by_role("button", name="Connect", exact=True).click()

        page.wait_for_url(f"{storage.origin}/oauth/**")
        assert Destination.objects.get(customer=personas.alice).status() == "pending"
        page.locator("#password").fill(password)
        page.get_by_role("button", name="Deny").click()

        page.wait_for_url(live_server.url + "/account/destinations/")
        page.get_by_text("Your cloud did not authorize the gateway").wait_for()
        page.screenshot(path=str(artifacts_dir / "destinations-denied.png"), full_page=True)
        destination = Destination.objects.get(customer=personas.alice)
        assert destination.status() == "revoked" and destination.revoked_at is not None
        assert destination.revoked_reason == "authorization refused at the cloud"
        assert not destination.deliveries.exists()
        assert "waiting for your authorization" not in page.content()
    finally:
        storage.process.stop()
