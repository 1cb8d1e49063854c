"""In real headless Chromium, in English and in French: the dashboard tells alice of her withheld
record, reads her history in sentences and shows a replaced consent as replaced; the receipt page
reads as a page and links its JSON. Screenshots kept as test artefacts (tests/artifacts/)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from restitution import audit, consent
from restitution.models import AccessEvent, Dataset, ExtractionRun, Record, RejectedRow, Source
from tests.personas import CONTRACTS, CURVE, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def story(personas):
    """alice: a consent replaced by a second one, a read under it, a claim withheld."""
    curve, contracts = Dataset.objects.get(slug=CURVE), Dataset.objects.get(slug=CONTRACTS)
    first = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=[curve], duration="1m")
    second = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=[curve, contracts],
                                  duration="3m", window_start=date(2025, 10, 26), window_end=date(2025, 10, 26))
    audit.record_event(kind=AccessEvent.Kind.DATA_READ, customer=personas.alice, grant=second, dataset=curve,
                       record_count=50)
    Record.objects.create(customer=personas.alice, dataset=contracts, key="C-1", data={}, content_hash="h",
                          extracted_at=timezone.now(), seq=1)
    source = Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="NOPE",
                                   identity_system="insurer")
    run = ExtractionRun.objects.create(source=source, customer=personas.alice, status="succeeded",
                                       finished_at=timezone.now())
    source.datasets.add(contracts)
    RejectedRow.objects.create(run=run, source=source, dataset=contracts, customer=personas.alice,
                               locator="T_CONTRAT NUM_CONTRAT=C-2", reason="mapping: impossible date", raw={"x": 1},
                               fingerprint="f" * 64)
    return first, second


def log_in(page: Page, base_url: str, button: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(base_url + "/account/")


TEXTS = {
    "en": {"button": "Log in", "withheld": "1 of your records could not be given back to you",
           "read": "Trusted cloud read 50 days of your electricity load curve",
           "allowed": "You allowed Trusted cloud to read your data",
           "replaced": "replaced by your consent of", "receipt": "Consent receipt", "see": "See the consent receipt",
           "zone": "whole days, Europe/Paris time", "json": "Download it (JSON)"},
    "fr": {"button": "Se connecter", "withheld": "1 de vos enregistrements n'a pas pu vous être restitué",
           "read": "Trusted cloud a lu 50 jours de votre courbe de charge",
           "allowed": "Vous avez autorisé Trusted cloud à lire vos données",
           "replaced": "remplacé par votre consentement du", "receipt": "Reçu de consentement",
           "see": "Voir le reçu de consentement", "zone": "jours entiers, heure de Europe/Paris",
           "json": "Le télécharger (JSON)"},
}


@pytest.mark.parametrize("language", ["en", "fr"])
def test_dashboard_and_receipt_pages(live_server, story, browser: Browser, artifacts_dir: Path, language):
    first, second = story
    context = browser.new_context(locale="fr-FR" if language == "fr" else "en-GB",
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        texts = TEXTS[language]
        log_in(page, live_server.url, texts["button"])
        expect(page.locator("#withheld")).to_contain_text(texts["withheld"])
        expect(page.locator("#history-download")).to_be_visible()
        expect(page.locator("ul.history")).to_contain_text(texts["read"])
        expect(page.locator("ul.history")).to_contain_text(texts["allowed"])
        expect(page.locator("td.status.replaced")).to_contain_text(texts["replaced"])
        page.screenshot(path=str(artifacts_dir / f"transparency-dashboard-{language}.png"), full_page=True)

        page.get_by_role("link", name=texts["see"]).click()
        page.wait_for_url(f"{live_server.url}/account/grants/{second.receipt_id}/receipt/")
        expect(page.locator("h1")).to_have_text(texts["receipt"])
        expect(page.locator("dl.receipt")).to_contain_text(texts["zone"])
        expect(page.locator("dl.receipt")).to_contain_text(str(second.receipt_id))
        page.screenshot(path=str(artifacts_dir / f"transparency-receipt-{language}.png"), full_page=True)
        with page.expect_download() as download:
            page.get_by_role("link", name=texts["json"]).click()
        assert download.value.suggested_filename == f"consent-receipt-{second.receipt_id}.json"

        page.goto(f"{live_server.url}/account/grants/{first.receipt_id}/receipt/")
        expect(page.locator("#receipt-status")).to_contain_text(texts["replaced"])
    finally:
        context.close()
