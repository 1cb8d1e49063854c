"""Authorization requests that cannot go back to the client: the customer reads what happened in
their language, in plain words, with a way back; the protocol error stays for developers."""

from __future__ import annotations

import re

from restitution.models import PimsClient


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_wrong_redirect_uri_is_explained_in_english_with_a_way_back(flow):
    response = flow.open_consent(redirect_uri="https://evil.example/callback")
    assert response.status_code == 400
    page = _text(response)
    assert "We cannot send you back to this app" in page and "nothing was shared" in page
    assert 'href="/account/"' in page and "Go to your account" in page
    assert not re.search(r"href=\"[^\"]*evil\.example", page)  # the unregistered address is never a link
    assert response.context["error"].error == "invalid_request"


def test_a_wrong_redirect_uri_is_explained_in_french(flow):
    flow.browser.cookies["django_language"] = "fr"
    response = flow.open_consent(redirect_uri="https://evil.example/callback")
    assert response.status_code == 400
    page = _text(response)
    assert '<html lang="fr">' in page
    assert "Nous ne pouvons pas vous renvoyer vers cette application" in page
    assert "Aller à votre compte" in page
    assert "Mismatching redirect URI" not in page.split("<code>")[0]  # only in the developers' line


def test_an_unknown_client_is_explained(flow):
    response = flow.open_consent(client_id="no-such-client")
    assert response.status_code == 400
    assert "We do not know the app that sent you here" in _text(response)


def test_a_client_awaiting_approval_says_so(flow, personas):
    personas.trusted.approval = PimsClient.Approval.PENDING
    personas.trusted.save()
    response = flow.open_consent()
    assert response.status_code == 400
    page = _text(response)
    assert "This app is not approved yet" in page and "Trusted cloud" in page
    flow.browser.cookies["django_language"] = "fr"
    assert "pas encore été approuvée" in _text(flow.open_consent())


def test_a_suspended_client_is_not_called_unknown(flow, personas):
    personas.trusted.approval = PimsClient.Approval.SUSPENDED
    personas.trusted.save()
    page = _text(flow.open_consent())
    assert "may not ask for your data" in page and "We do not know" not in page
