"""Every customer page on a phone and on a desktop, in English and French (real Chromium): no page
wider than its viewport at 320, 390 and 1280 px, and axe-core (WCAG 2.2 AA and best practices)
with no serious or critical violation. Screenshots of each page and width in tests/artifacts/."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from restitution import consent
from restitution.models import AccessEvent, Dataset
from tests.api.test_records_api import write
from tests.personas import CONTRACTS, CURVE, PASSWORD
from tests.web.a11y import WIDTHS, axe_violations, overflow, wider_elements
from tests.web.test_download_browser import readings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sample_value(schema: dict[str, Any], name: str, index: int) -> Any:
    """A valid value of a catalogue field, long enough to stress a narrow screen."""
    if "anyOf" in schema:
        return sample_value(next(s for s in schema["anyOf"] if s.get("type") != "null"), name, index)
    if "enum" in schema:
        return schema["enum"][index % len(schema["enum"])]
    kind = schema.get("type")
    if kind == "integer":
        return 60 + index
    if kind == "number":
        return round(1234.5 + index, 2)
    if kind == "boolean":
        return index % 2 == 0
    if schema.get("format") == "date":
        return (date(2025, 3, 1) + timedelta(days=index)).isoformat()
    if schema.get("format") == "date-time":
        return (datetime(2025, 3, 1, 18, 30, tzinfo=UTC) + timedelta(hours=index * 5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pattern = schema.get("pattern", "")
    if pattern.startswith("^[0-9]{"):
        return "1" * int(pattern[len("^[0-9]{"):].split("}")[0])
    if "A-Za-z0-9" in pattern:
        return f"{name.upper()[:6]}-2025-{index:05d}"
    return f"{name.replace('_', ' ')} {index} — a rather long value written out in full"


def sample_records(dataset: Dataset, count: int = 12) -> list[dict]:
    properties = dataset.schema["properties"]
    records: dict[tuple, dict] = {}
    for i in range(count):
        record = {name: sample_value(schema, name, i) for name, schema in properties.items()}
        records.setdefault(tuple(str(record[k]) for k in dataset.natural_key), record)
    return list(records.values())


@pytest.fixture
def rich_alice(personas):
    """Alice with data in every dataset, a revoked grant, a grant with history, and a connected
    destination."""
    from connectors_out.models import Destination

    for dataset in Dataset.objects.filter(is_published=True):
        write(personas.alice, dataset.slug, readings(10) if dataset.slug == CURVE else sample_records(dataset))
    earlier = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                   datasets=list(Dataset.objects.filter(slug=CURVE)), duration="1m")
    consent.revoke_grant(grant=earlier)
    grant = consent.create_grant(customer=personas.alice, client=personas.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS])), duration="12m")
    for kind in (AccessEvent.Kind.TOKEN_ISSUED, AccessEvent.Kind.DATA_READ, AccessEvent.Kind.TOKEN_REFRESHED):
        AccessEvent.objects.create(kind=kind, customer=personas.alice, grant=grant, client=personas.trusted,
                                   dataset=Dataset.objects.get(slug=CURVE), record_count=480)
    destination = Destination.objects.create(
        receipt_id=uuid.uuid4(), customer=personas.alice, kind="webdav",
        label="https://cloud.a-rather-long-personal-server-name.example/remote.php/dav/files/alice/",
        duration="12m", expires_at=timezone.now() + timedelta(days=365))
    destination.datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    return personas


def customer_pages() -> list[str]:
    from connectors_out import registry
    from restitution.models import Grant

    pages = ["/account/", "/account/destinations/", "/account/history/"]
    pages += [f"/account/destinations/connect/{name}/" for name in registry.names()]
    pages += [f"/account/grants/{receipt_id}/receipt/" for receipt_id in
              Grant.objects.order_by("created_at").values_list("receipt_id", flat=True)]
    pages += [f"/account/data/{slug}/" for slug in
              Dataset.objects.filter(is_published=True).order_by("slug").values_list("slug", flat=True)]
    return pages


ERROR_PAGES = ["/o/authorize/?response_type=code&client_id=no-such-client&state=s",
               "/o/authorize/?response_type=code&client_id=trusted-cloud&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"
               "&state=s&code_challenge=abc&code_challenge_method=S256",
               "/o/authorize/?response_type=code&client_id=intruder&state=s"]


def consent_page(base: str) -> str:
    from tests.personas import TRUSTED_REDIRECT, scope_of

    return (f"{base}/o/authorize/?response_type=code&client_id=trusted-cloud&redirect_uri={TRUSTED_REDIRECT}"
            f"&scope={scope_of(CURVE, CONTRACTS).replace(' ', '+')}&state=st&code_challenge="
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_customer_page_is_wider_than_the_screen_and_axe_finds_nothing_serious(
        live_server, rich_alice, browser: Browser, artifacts_dir, language):
    base = live_server.url
    paths = customer_pages()
    wide: dict[str, list[str]] = {}
    violations: dict[str, list[str]] = {}
    for width in WIDTHS:
        context = browser.new_context(locale="fr-FR" if language == "fr" else "en-GB",
                                      viewport={"width": width, "height": 800})
        context.add_cookies([{"name": "django_language", "value": language, "url": base}])
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", PASSWORD)
        page.locator("main button[type=submit], main input[type=submit]").first.click()
        page.wait_for_url(base + "/account/")
        for path in [*paths, consent_page(base).removeprefix(base), *ERROR_PAGES]:
            response = page.goto(base + path)
            assert response is not None and response.status in (200, 400), (path, response and response.status)
            if page.locator("#chart").count():
                page.locator("#chart[data-rendered=true]").wait_for()
            page.wait_for_load_state("load")
            name = f"{width}-{language}-{path.strip('/').split('?')[0].replace('/', '-') or 'home'}"
            if "?" in path:
                name += f"-{ERROR_PAGES.index(path) if path in ERROR_PAGES else 'consent'}"
            page.screenshot(path=str(artifacts_dir / f"pages-{name}.png"), full_page=True)
            if overflow(page) > 0:
                wide[name] = [f"{overflow(page)} px too wide", *wider_elements(page)]
            found = axe_violations(page)
            if found:
                violations[name] = found
        # The dashboard with a message at its top (here: nothing to update, no system knows Alice).
        page.goto(base + "/account/")
        page.locator("form[action$='/account/refresh/'] button").click()
        page.locator("ul.messages li").wait_for()
        name = f"{width}-{language}-account-message"
        page.screenshot(path=str(artifacts_dir / f"pages-{name}.png"), full_page=True)
        if overflow(page) > 0:
            wide[name] = [f"{overflow(page)} px too wide", *wider_elements(page)]
        if found := axe_violations(page):
            violations[name] = found
        context.close()
    report = "\n".join([f"{k}: {v}" for k, v in wide.items()] + [f"{k}: {v}" for k, v in violations.items()])
    assert not wide and not violations, report


def log_in(page, base: str, language: str) -> None:
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit], main input[type=submit]").first.click()
    page.wait_for_url(base + "/account/")


def chart_facts(page) -> list[dict]:
    page.locator("#chart[data-rendered=true]").wait_for()
    return page.evaluate("""() => document.getElementById('chart').plots.map(u => ({
        ticks: u.axes[0]._values || [], min: u.scales.x.min, max: u.scales.x.max,
        first: u.data[0][0], last: u.data[0][u.data[0].length - 1],
        labels: u.series.map(s => s.label), width: u.width}))""")


def test_charts_speak_the_pages_language_and_clip_nothing(live_server, rich_alice, page, artifacts_dir):
    import re

    base = live_server.url
    log_in(page, base, "fr")
    page.goto(base + "/account/data/telco-call-log/?by=day")
    plots = chart_facts(page)
    assert len(plots) == 3  # calls, text messages, minutes: one small chart each, never overlapping bars
    assert [p["labels"][1] for p in plots] == ["Appels", "SMS", "Minutes d'appel (min)"]
    assert all(p["labels"][0] == "Période" for p in plots)
    for plot in plots:
        assert plot["min"] < plot["first"] and plot["max"] > plot["last"]  # half a step each side
        assert all(re.fullmatch(r"\d{2}/\d{2}", tick) for tick in plot["ticks"] if tick), plot["ticks"]
    page.screenshot(path=str(artifacts_dir / "chart-calls-fr.png"), full_page=True)

    page.goto(base + f"/account/data/{CURVE}/?by=raw")
    (plot,) = chart_facts(page)
    assert plot["labels"] == ["Heure", "Puissance moyenne (kW)"]  # the peak equals the average: drawn once
    ticks = [t for t in plot["ticks"] if t]
    assert ticks and all(re.fullmatch(r"\d{2}/\d{2} \d{2}:\d{2}", t) for t in ticks), ticks  # 24 h, day/month
    page.goto(base + f"/account/data/{CURVE}/?by=day")
    (plot,) = chart_facts(page)
    assert plot["labels"] == ["Période", "Demi-heure la plus forte (kW)", "Puissance moyenne (kW)"]  # peak under
    page.screenshot(path=str(artifacts_dir / "chart-load-curve-fr.png"), full_page=True)


def test_long_actions_show_they_are_busy(live_server, rich_alice, page):
    base = live_server.url
    log_in(page, base, "en")
    page.evaluate("""() => document.querySelector('form[action$="/revoke/"]')
                          .addEventListener('submit', e => e.preventDefault())""")
    page.get_by_role("button", name="Revoke access for Trusted cloud").click()
    form = page.locator('form[action$="/revoke/"]')
    assert form.get_attribute("aria-busy") == "true"
    button = form.locator("button")
    page.wait_for_function("() => document.querySelector('form[data-busy][aria-busy=true] button').disabled")
    assert button.inner_text() == "Revoking…"


def test_the_update_message_goes_when_the_runs_end(live_server, personas, page):
    """“Updating your data from 1 system(s)…” while the run is under way; once it ended, the page
    (polling the status endpoint) says nothing of it, and a page drawn after the end neither."""
    from restitution.models import ExtractionRun, LegacyIdentity, Source

    LegacyIdentity.objects.create(customer=personas.alice, system="insurer", value="S0000001")
    Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="NOPE",
                          identity_system="insurer")
    base = live_server.url
    log_in(page, base, "en")
    page.get_by_role("button", name="Update my data").click()
    box = page.locator("#refresh-progress")
    box.get_by_text("Updating your data from 1 system(s)…").wait_for()
    ExtractionRun.objects.filter(customer=personas.alice).update(status=ExtractionRun.Status.SUCCEEDED)
    box.wait_for(state="hidden")
    page.wait_for_load_state("load")
    assert "Updating your data" not in page.content()
    page.goto(base + "/account/")
    assert box.is_hidden() and "Updating your data" not in page.content()


def test_on_a_phone_every_value_of_a_record_is_on_screen_under_its_label(live_server, rich_alice, browser: Browser):
    """Amounts are often the last columns: at 320 px a record is a card, nothing is scrolled away."""
    base = live_server.url
    context = browser.new_context(locale="fr-FR", viewport={"width": 320, "height": 800})
    page = context.new_page()
    log_in(page, base, "fr")
    for slug in ("insurance-contracts", "telco-invoices"):
        page.goto(f"{base}/account/data/{slug}/")
        cells = page.evaluate("""() => [...document.querySelectorAll('#records tbody td')].map(td => {
            const box = td.getBoundingClientRect();
            return {label: td.dataset.label, left: box.left, right: box.right,
                    before: getComputedStyle(td, '::before').content};})""")
        assert cells, slug
        off = [c for c in cells if c["left"] < 0 or c["right"] > 320]
        assert off == [], (slug, off[:3])
        assert all(c["before"] == f'"{c["label"]}"' for c in cells), cells[:3]
        money = {"insurance-contracts": "Prime annuelle", "telco-invoices": "Montant TTC"}[slug]
        assert money in {c["label"] for c in cells}
    context.close()
