"""In real headless Chromium: "Download all my data" shows its progress to completion and the
archive downloads and verifies; the load-curve page draws its chart. Screenshots kept as test
artefacts (tests/artifacts/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_records_api import write
from tests.exports.archive_reader import csv_rows, ndjson_items, open_checked
from tests.personas import CONTRACTS, CURVE, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
DAYS = 120  # 120 day blocks of 48 half-hour readings (5 760): the archive's CSV has a row for each


def readings(days: int) -> list[dict]:
    """`days` load-curve day blocks (Europe/Paris days from 1 January 2025, no clock change
    before 30 March), every half hour present: an evening peak, a smaller morning one."""
    from datetime import UTC, datetime, timedelta

    out = []
    for day in range(days):
        first = datetime(2024, 12, 31, 23, tzinfo=UTC) + timedelta(days=day)
        block = []
        for slot in range(48):
            moment = first + timedelta(minutes=30 * slot)
            hour = (moment.hour + 1) % 24 + moment.minute / 60  # local (winter) time
            step = day * 48 + slot
            power = round(0.4 + (1.8 if 18 <= hour < 22 else 0.6 if 7 <= hour < 9 else 0.0) + (step % 7) / 20, 3)
            block.append({"start": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": power})
        out.append({"delivery_point": "12345678901234", "day": (first + timedelta(hours=1)).date().isoformat(),
                    "time_zone": "Europe/Paris", "start": block[0]["start"], "duration_seconds": 86400,
                    "interval_seconds": 1800, "unit": "kW", "quantity": "average_power", "expected_readings": 48,
                    "missing_count": 0, "missing": [], "readings": block})
    return out


def log_in(page: Page, base_url: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base_url + "/account/")


def test_download_all_with_progress_then_a_chart(live_server, personas, page, artifacts_dir, start_worker,
                                                 settings, tmp_path: Path):
    from tests.api.test_records_api import _contract

    settings.MEDIA_ROOT = tmp_path / "media"
    write(personas.alice, CURVE, readings(DAYS))
    write(personas.alice, CONTRACTS, [_contract("A1")])
    log_in(page, live_server.url)

    page.get_by_role("button", name="Download all my data").click()
    expect(page.locator("#download-progress")).to_be_visible()  # queued: no worker yet
    expect(page.locator("#download-link")).to_be_hidden()
    page.evaluate("""() => {  // record every state the progress bar goes through
        const box = document.getElementById('download-progress');
        window.seen = [box.dataset.status];
        new MutationObserver(() => window.seen.push(box.dataset.status + ':' + document.getElementById(
            'download-bar').value)).observe(box, {attributes: true, attributeFilter: ['data-status']});
    }""")
    # The worker starts only now, so the bar is seen before the archive is ready.
    start_worker(concurrency=1, env={"GATEWAY_MEDIA_ROOT": str(settings.MEDIA_ROOT)})
    link = page.locator("#download-link")
    expect(link).to_be_visible(timeout=60_000)
    expect(page.locator("#download-progress")).to_be_hidden()
    seen = page.evaluate("window.seen")
    assert seen[0] == "queued" and seen[-1].startswith("succeeded"), seen
    page.screenshot(path=str(artifacts_dir / "download-all-ready.png"), full_page=True)

    with page.expect_download() as caught:
        link.click()
    saved = tmp_path / "archive.zip"
    caught.value.save_as(saved)
    archive, manifest = open_checked(saved.read_bytes())
    assert {d["slug"]: d["records"] for d in manifest["datasets"]} == {CURVE: DAYS, CONTRACTS: 1}
    assert len(ndjson_items(archive, CURVE)) == DAYS
    assert len(csv_rows(archive, CURVE)) == DAYS * 48  # the spreadsheet table: a row per half hour
    assert "README.txt" in archive.namelist()

    page.get_by_role("link", name="Electricity load curve (30 minutes)").click()
    page.get_by_role("heading", name="Over time").wait_for()
    expect(page.locator("#chart[data-rendered=true] canvas")).to_be_visible()
    painted = page.evaluate("""() => {
        const canvas = document.querySelector('#chart canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) n++;
        return n;
    }""")
    assert painted > 1000  # the series were drawn, not just an empty frame
    expect(page.locator(".u-legend")).to_contain_text("Average power")
    page.get_by_role("link", name="by week").click()
    expect(page.locator("#chart[data-rendered=true] canvas")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "dataset-load-curve-chart.png"), full_page=True)
