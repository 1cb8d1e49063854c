"""Cozy: a refusal at the Cozy's authorization page ends the pending connection with a message;
an error carrying another state ends nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from connectors_out.models import Delivery, Destination
from tests.connectors_out.peers import REFUSED, CozyPeer, _browser, _connect_form, messages_of


def test_a_refusal_at_the_cozy_ends_the_pending_connection(demo_customer, tmp_peer_dir, peers_log_dir):
    cozy = CozyPeer(tmp_peer_dir, peers_log_dir)
    cozy.process.start()
    try:
        browser = _browser(demo_customer)
        started = browser.post("/account/destinations/connect/cozy/", _connect_form(demo_customer,
                                                                                   instance=cozy.instance))
        query = {k: v[0] for k, v in parse_qs(urlsplit(started["Location"]).query).items()}
        refused = httpx.post(f"{cozy.instance}/auth/authorize", data={**query, "deny": "1"})
        assert refused.status_code == 302
        back = urlsplit(refused.headers["location"])
        assert parse_qs(back.query)["error"] == ["access_denied"]
        destination = Destination.objects.get(customer=demo_customer.customer)

        # refused side: an error with another state does not end the connection
        assert browser.get(f"{back.path}?error=access_denied&state=not-the-state").status_code == 302
        destination.refresh_from_db()
        assert destination.status() == "pending"

        done = browser.get(f"{back.path}?{back.query}", follow=True)
        assert REFUSED in messages_of(done)
        destination.refresh_from_db()
        assert destination.status() == "revoked" and destination.credentials == ""
        assert not Delivery.objects.filter(destination=destination).exists()
    finally:
        cozy.process.stop()
