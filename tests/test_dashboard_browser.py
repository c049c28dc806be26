"""The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by
Playwright's Python package through `executable_path`; Playwright cannot download its own
browsers here) against a real market started by `agora up`.

Screenshots are kept as test artefacts in ``$AGORA_TEST_ARTIFACTS`` (default
``var/test-artifacts`` at the repository's root). Any console error fails a test. Without
Chromium the tests are skipped with the command that installs it, never passed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_up import AGENTS, LiveUp

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("AGORA_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
WAIT_MS = 180_000  # a safety net against a hang, never a synchronisation
TRADES = 20  # the price chart must have drawn at least this many trades

if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed: apt-get install -y chromium (as root; Debian's "
                "package, which Playwright drives)", allow_module_level=True)  # fmt: skip
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    up = LiveUp(tmp_path_factory.mktemp("dashboard-browser"), "--metrics")
    try:
        assert "dashboard" in up.ready, "agora up started no dashboard (is the web extra in?)"
        yield up
    finally:
        up.stop()


@pytest.fixture
def page(market: LiveUp) -> Iterator[tuple[Any, list[str]]]:
    """A page of the dashboard, and every console error and uncaught exception it raises."""
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.goto(market.ready["dashboard"])
            yield page, errors
        finally:
            browser.close()


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_market_and_the_leaderboard_draw_live(page: tuple[Any, list[str]]) -> None:
    pg, errors = page
    pg.wait_for_function(f"window.agoraDashboard.tradesDrawn >= {TRADES}", timeout=WAIT_MS)
    assert pg.locator("#price-chart canvas").count() > 0  # the chart library drew
    assert pg.locator("#tape tbody tr").count() > 0
    price = pg.locator("#last").inner_text()
    assert price.replace(",", "").replace(".", "", 1).isdigit() and "." in price  # a price
    pg.wait_for_function("document.querySelectorAll('#ladder tbody tr').length > 0",
                         timeout=WAIT_MS)  # fmt: skip
    market_shot = _shot(pg, "dashboard-market.png")

    pg.click("button[data-tab=participants]")
    pg.wait_for_function(f"window.agoraDashboard.leaderboardRows >= {len(AGENTS)}",
                         timeout=WAIT_MS)  # fmt: skip
    accounts = set(pg.locator("#leaderboard tbody tr td:nth-child(2)").all_inner_texts())
    assert accounts >= AGENTS
    strategies = set(pg.locator("#classes tbody tr td:first-child").all_inner_texts())
    assert len(strategies) == 2  # the market's two populations, each a strategy class
    _shot(pg, "dashboard-participants.png")

    pg.click("button[data-tab=services]")
    pg.wait_for_function("document.querySelectorAll('#services tbody tr').length > 0",
                         timeout=WAIT_MS)  # fmt: skip
    _shot(pg, "dashboard-services.png")
    assert market_shot.stat().st_size > 10_000
    assert errors == []


def test_a_halt_needs_the_admin_token(market: LiveUp, page: tuple[Any, list[str]]) -> None:
    pg, errors = page
    pg.wait_for_function("window.agoraDashboard.phase.AGR === 'continuous'", timeout=WAIT_MS)

    def outcome(after: str) -> str:
        pg.click(after)
        pg.wait_for_function("document.querySelector('#control-result').dataset.outcome",
                             timeout=WAIT_MS)  # fmt: skip
        got = pg.locator("#control-result").get_attribute("data-outcome") or ""
        pg.evaluate("delete document.querySelector('#control-result').dataset.outcome")
        return got

    assert outcome("#halt") == "admin_token_required"  # no token: refused, nothing sent
    pg.fill("#token", "a-guess")
    assert outcome("#halt") == "not_authorised"  # a wrong one: the exchange refuses it
    assert pg.evaluate("window.agoraDashboard.phase.AGR") == "continuous"

    pg.fill("#token", market.admin_token)
    assert outcome("#halt") == "ok"
    pg.wait_for_function("document.querySelector('#phase').textContent === 'halted'",
                         timeout=WAIT_MS)  # fmt: skip  (the feed's status, drawn by the page)
    _shot(pg, "dashboard-halted.png")
    assert market.admin_token not in pg.content()
    assert outcome("#resume") == "ok"
    pg.wait_for_function("document.querySelector('#phase').textContent === 'continuous'",
                         timeout=WAIT_MS)  # fmt: skip
    assert errors == []
    assert market.admin_token not in market.logs()


def test_a_stress_scenario_needs_the_admin_token(
    market: LiveUp, page: tuple[Any, list[str]]
) -> None:
    pg, errors = page
    pg.wait_for_function("document.querySelectorAll('#scenario option').length > 0",
                         timeout=WAIT_MS)  # fmt: skip
    pg.select_option("#scenario", "fundamental-shock")  # F(t) falls 10%
    pg.wait_for_function("window.agoraDashboard.fair.AGR > 0", timeout=WAIT_MS)
    before = pg.evaluate("window.agoraDashboard.fair.AGR")

    def outcome() -> str:
        pg.click("#run-scenario")
        pg.wait_for_function("document.querySelector('#control-result').dataset.outcome",
                             timeout=WAIT_MS)  # fmt: skip
        got = pg.locator("#control-result").get_attribute("data-outcome") or ""
        pg.evaluate("delete document.querySelector('#control-result').dataset.outcome")
        return got

    pg.fill("#token", "")
    assert outcome() == "admin_token_required"
    pg.fill("#token", "a-guess")
    assert outcome() == "invalid_token"  # refused by the fair-value process
    pg.fill("#token", market.admin_token)
    assert outcome() == "ok"
    # the shock reaches the fair-value feed and the page: F(t) at least 5% lower
    pg.wait_for_function(f"window.agoraDashboard.fair.AGR < {before * 0.95}", timeout=WAIT_MS)
    _shot(pg, "dashboard-scenario.png")
    assert errors == []
    assert market.admin_token not in market.logs()
