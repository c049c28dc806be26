"""`agora report`: a run's HTML report, built from a real simulated run, opened in Chromium.

The browser test drives Debian's chromium through Playwright (``executable_path``); without
them it is skipped with the command that installs them, never passed silently.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.config import load_market
from agents.sim.sweep import run_history
from deploy.cli import app

pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
CHARTS = ("price", "pnl", "drawdown", "inventory", "markouts")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 simulated seconds of the example market (every strategy class)."""
    out = tmp_path_factory.mktemp("run") / "example"
    market = load_market(ROOT / "examples" / "market.toml")
    run_history(market, 1, 30.0, out)
    assert (out / "market.json").is_file()  # agora simulate keeps the market file with the run
    return out


@pytest.fixture(scope="module")
def report_file(run_dir: Path) -> Path:
    result = CliRunner().invoke(app, ["report", str(run_dir), "--max-points", "200"])
    assert result.exit_code == 0, result.output
    path = run_dir / "report.html"
    assert f"wrote {path}" in result.output
    return path


def _chart_data(page_html: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page_html,
                  re.S)  # fmt: skip
    assert m, "no data block in the page"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_report_is_self_contained_with_data(report_file: Path) -> None:
    page = report_file.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "loads from the net"
    assert "uPlot" in page and "FixedSpreadMarketMaker" in page and "Stylized facts" in page
    data = _chart_data(page)
    assert [c["id"] for c in data["charts"]] == list(CHARTS)
    for chart in data["charts"]:
        assert len(chart["x"]) >= 5, chart["id"]
        assert len(chart["x"]) <= 200 + 1, chart["id"]  # decimated to --max-points
        for name, ys in chart["series"].items():
            assert len(ys) == len(chart["x"]), (chart["id"], name)
            assert any(y is not None for y in ys), (chart["id"], name)
    price = next(c for c in data["charts"] if c["id"] == "price")
    assert set(price["series"]) == {"last trade", "mid", "F(t)"}
    # prices are shown as prices (ticks of 0.01 around 100.00), F(t) too
    assert all(90 < y < 110 for y in price["series"]["F(t)"] if y is not None)
    assert all(90 < y < 110 for y in price["series"]["last trade"] if y is not None)


def test_report_metrics_agree_with_the_agents_table(run_dir: Path) -> None:
    """The metrics' PnL split is the simulated market's own, agent by agent."""
    import pyarrow.parquet as pq

    from agents.analysis.run_metrics import run_metrics

    rm = run_metrics(run_dir)
    agents = pq.read_table(run_dir / "agents.parquet").to_pydict()
    assert len(rm.agents) == sum(1 for f in agents["fills"] if f)
    for name, pnl, trading in zip(agents["name"], agents["pnl"], agents["trading_pnl"],
                                  strict=True):  # fmt: skip
        if name in rm.agents:
            assert rm.agents[name].profitability.total == pytest.approx(pnl, abs=1e-6)
            assert rm.agents[name].profitability.trading == pytest.approx(trading, abs=1e-6)
    by_class = {k: float(v[-1]) for k, v in rm.pnl.items()}
    for strategy, m in rm.strategies.items():
        assert m.profitability.trading == pytest.approx(by_class[strategy], abs=1e-6)
    assert "no market file" not in " ".join(rm.notes)


def test_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a run directory" in lines[0]
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _browser_or_skip() -> None:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright is not installed: pip install playwright (the test extra)")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed: apt-get install -y chromium")


def test_report_renders_in_chromium(report_file: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_file.as_uri())
            page.wait_for_function("window.agoraCharts && window.agoraCharts.length === 5",
                                   timeout=60_000)  # fmt: skip
            charts = page.evaluate("""window.agoraCharts.map(c => ({
                id: c.id,
                points: c.plot.data[0].length,
                series: c.plot.data.length - 1,
                finite: c.plot.data.slice(1).map(s => s.filter(v => v !== null).length),
                canvas: document.querySelectorAll('#' + c.id + ' canvas').length,
                width: document.querySelector('#' + c.id + ' canvas').width,
            }))""")
            tables = page.locator("table").count()
        finally:
            browser.close()
    assert [c["id"] for c in charts] == list(CHARTS)
    for c in charts:
        assert c["canvas"] == 1 and c["width"] > 0, c
        assert c["points"] >= 5 and c["series"] >= 1, c
        assert all(n > 0 for n in c["finite"]), c  # every series has data points
    assert tables >= 3  # metrics per class, agents, stylized facts
    assert errors == []


def test_report_of_a_recording(tmp_path: Path) -> None:
    """A recorder's directory: price and mid, the stylized facts, and a note that a public
    feed has no accounts (so no PnL metrics)."""
    from agents.recorder import ParquetSink

    t0, s = 1_714_568_400_000_000_000, 1_000_000_000
    sink = ParquetSink(tmp_path / "recorder", rotate_s=3600, now_ns=t0, clock=lambda: 0)
    for i in range(1, 60):
        price = 10_000 + (i * 7) % 11 - 5
        sink.add("trades", {"type": "trade", "ts": t0 + i * s, "symbol": "AGR", "seq": i,
                            "trade_id": i, "price": price, "qty": 1,
                            "aggressor_side": "buy"}, recv_ts=t0 + i * s)  # fmt: skip
        sink.add("tob", {"type": "top_of_book", "ts": t0 + i * s, "symbol": "AGR", "seq": i,
                         "bid_price": price - 1, "bid_qty": 1, "ask_price": price + 1,
                         "ask_qty": 1, "last_price": price}, recv_ts=t0 + i * s)  # fmt: skip
    sink.flush()
    result = CliRunner().invoke(app, ["report", str(tmp_path)])  # an `agora up` data dir
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    data = _chart_data(page)
    assert [c["id"] for c in data["charts"]] == ["price"]
    price = data["charts"][0]
    assert set(price["series"]) == {"last trade", "mid"} and len(price["x"]) == 59
    assert price["series"]["mid"] == price["series"]["last trade"]  # quoted a tick either side
    assert "no accounts" in page and "Stylized facts" in page
