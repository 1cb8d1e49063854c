"""What every page must pass in a real browser: axe-core with no serious or critical violation,
and nothing wider than the viewport.

axe-core comes from npm (tests/web/package.json: `npm ci --prefix tests/web`); it is evaluated in
the page through the DevTools protocol, so the pages' Content Security Policy stays as served.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import missing

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = {"serious", "critical"}
WIDTHS = (320, 390, 1280)
# WCAG 2.2 A and AA (target-size is a 2.2 rule, off in axe's defaults) and axe's best practices.
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice")


def axe_violations(page: Page, *, impacts: set[str] = SERIOUS) -> list[str]:
    """The violations of the given impacts, one line each: rule, impact, first targets."""
    if not AXE.exists():
        missing(f"{AXE} is missing (npm ci --prefix tests/web)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    results = page.evaluate("""async (TAGS) => {
        const r = await axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag', values: TAGS}});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
                                       targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""", list(TAGS))
    return [f"{v['id']} ({v['impact']}): {', '.join(v['targets'])}" for v in results if v["impact"] in impacts]


def overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when it fits)."""
    return page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
                         " - window.innerWidth")


def wider_elements(page: Page) -> list[str]:
    """The elements that stick out of the viewport, to say why a page is too wide."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter(e => !e.closest('.scroll'))
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
            (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ').join('.') : '') +
            ' right=' + Math.round(e.getBoundingClientRect().right))""")
