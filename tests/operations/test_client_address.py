"""The client's address behind the reverse proxy: login lockout, the access log's "from where"
and DRF's address key all read it from the entries the operator's trusted proxies appended to
X-Forwarded-For, never from what a client wrote there. Real login views and database."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import AnonRateThrottle

from restitution.models import AccessEvent
from tests.personas import PASSWORD, Flow

PROXY = "10.0.0.2"  # the reverse proxy in front of the gateway: every request arrives from it
INNER_PROXY = "10.0.0.3"
ATTACKER = "203.0.113.66"
ALICE_AT_HOME = "198.51.100.7"


def _through_proxy(*forwarded_for: str) -> Client:
    """A browser whose requests reach the gateway through the proxy, with this X-Forwarded-For."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=", ".join(forwarded_for))


def _fail_five_logins(browser: Client) -> None:
    """Enough wrong passwords for alice's name to be locked out from the browser's address."""
    statuses = [browser.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code
                for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def _logs_in(browser: Client) -> bool:
    response = browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    return response.status_code == 302 and "_auth_user_id" in browser.session


@pytest.mark.django_db(transaction=True)
def test_a_lockout_behind_the_proxy_does_not_lock_out_the_same_customer_elsewhere(personas, settings):
    settings.GATEWAY_TRUSTED_PROXY_COUNT = 1
    _fail_five_logins(_through_proxy(ATTACKER))
    assert _logs_in(_through_proxy(ALICE_AT_HOME))
    assert not _logs_in(_through_proxy(ATTACKER))  # the attacker's address stays locked


@pytest.mark.django_db(transaction=True)
def test_a_forged_forwarded_entry_cannot_lock_out_the_address_it_names(personas, settings):
    """The attacker writes alice's address into X-Forwarded-For; the proxy appends the attacker's
    real address after it, and only that one counts."""
    settings.GATEWAY_TRUSTED_PROXY_COUNT = 1
    _fail_five_logins(_through_proxy(ALICE_AT_HOME, ATTACKER))
    assert _logs_in(_through_proxy(ALICE_AT_HOME))


@pytest.mark.django_db(transaction=True)
def test_with_two_trusted_proxies_the_client_is_the_second_entry_from_the_right(personas, settings):
    settings.GATEWAY_TRUSTED_PROXY_COUNT = 2
    _fail_five_logins(_through_proxy(ALICE_AT_HOME, ATTACKER, INNER_PROXY))
    assert _logs_in(_through_proxy(ALICE_AT_HOME, INNER_PROXY))
    assert not _logs_in(_through_proxy("192.0.2.1", ATTACKER, INNER_PROXY))


@pytest.mark.django_db(transaction=True)
def test_with_no_trusted_proxy_a_client_sent_forwarded_for_changes_nothing(personas, settings):
    """The default: a client cannot escape its lockout by writing a new address on each try."""
    settings.GATEWAY_TRUSTED_PROXY_COUNT = 0
    browser = Client(REMOTE_ADDR=ATTACKER)
    statuses = [browser.post("/accounts/login/", {"username": "alice", "password": "wrong"},
                             HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}").status_code for attempt in range(5)]
    assert statuses[-1] == 429
    assert not _logs_in(Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=ALICE_AT_HOME))


def test_the_access_log_records_the_client_behind_the_proxy_not_the_proxy(personas, settings):
    settings.GATEWAY_TRUSTED_PROXY_COUNT = 1
    browser = _through_proxy("192.0.2.99", ALICE_AT_HOME)  # the first entry is the client's own claim
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    Flow(browser, Client()).code()
    event = AccessEvent.objects.get(customer=personas.alice, kind=AccessEvent.Kind.GRANT_CREATED)
    assert event.ip_address == ALICE_AT_HOME


class _PerAddress(AnonRateThrottle):
    rate = "1/s"


def test_drf_address_throttles_do_not_believe_a_client_sent_forwarded_for():
    request = Request(APIRequestFactory().get("/api/v1/me", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=ALICE_AT_HOME))
    assert _PerAddress().get_ident(request) == ATTACKER
