"""The dashboard: conflation (property tests of its pure state), the services page's figures,
the exchange's operator halt, and the web service against a real market on loopback.

The browser itself is driven in tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from probes import dealer, wait_until
from wire import WireClient

from dashboard.scrape import parse, summarise
from dashboard.state import TAPE, MarketState
from deploy.launch import Proc, start_market
from exchange.protocol import NewOrder, SymbolControl, decode_batch, encode
from exchange.symbols import SymbolSpec

SPEC = SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000)
SECOND = 1_000_000_000


# ------------------------------------------------------------------ conflation (pure)
trades = st.lists(
    st.tuples(st.integers(0, 30 * SECOND), st.integers(9_000, 11_000), st.integers(1, 50)),
    min_size=1, max_size=400,
)  # fmt: skip


@given(trades, st.integers(1, 50), st.integers(1, 7))
@settings(max_examples=60, deadline=None)
def test_an_update_is_bounded_whatever_the_feed_sent(
    ticks: list[tuple[int, int, int]], frame: int, every: int
) -> None:
    """However many trades arrive between two updates, an update carries at most one price
    point per second touched, TAPE trades of tape and one top of book; and every trade is
    counted once in the price line the page draws."""
    state = MarketState([SPEC])
    ticks = sorted(ticks)
    drawn: dict[int, int] = {}
    frames = [ticks[i : i + frame] for i in range(0, len(ticks), frame)]
    for n, chunk in enumerate(frames, 1):
        msgs: list[Any] = [{"type": "trade", "symbol": "AGR", "seq": 0, "ts": ts, "price": p,
                            "qty": q, "aggressor_side": "buy"} for ts, p, q in chunk]  # fmt: skip
        msgs.append({"type": "top_of_book", "symbol": "AGR", "seq": 0, "bid_price": 9_999,
                     "bid_qty": 3, "ask_price": 10_001, "ask_qty": 4})  # fmt: skip
        state.on_feed(msgpack.unpackb(msgpack.packb(msgs)))  # as the wire gives them
        if n % every == 0 or n == len(frames):
            part = state.tick().get("AGR", {})
            seconds = {ts // SECOND for ts, _, _ in ticks}
            assert len(part.get("line", [])) <= len(seconds)
            assert len(part.get("tape", [])) <= TAPE
            assert set(part) <= {"line", "candles", "tape", "stats", "tob"}
            for second, _price, count in part.get("line", []):
                drawn[second] = count  # a second sent again carries its new total
    assert sum(drawn.values()) == len(ticks)
    assert state.tick() == {}  # nothing new: nothing sent
    full = state.full()["AGR"]
    assert sum(count for _s, _p, count in full["line"]) == len(ticks)
    assert full["stats"]["trades"] == len(ticks)
    assert full["line"][-1][1] == pytest.approx(ticks[-1][1] / 100)  # the last second's close


def test_prices_leave_as_prices() -> None:
    state = MarketState([SymbolSpec(symbol="XYZ", tick_size="0.05", reference_price=2_000)])
    state.on_feed([{"type": "trade", "symbol": "XYZ", "seq": 1, "ts": 5 * SECOND,
                    "price": 2_001, "qty": 3, "aggressor_side": "sell"}])  # fmt: skip
    state.on_feed([{"type": "market_status", "symbol": "XYZ", "seq": 1, "phase": "halted",
                    "reason": "operator", "band_low": 1_800, "band_high": 2_200}])  # fmt: skip
    part = state.tick()["XYZ"]
    assert part["line"] == [[5, 100.05, 1]]  # 2,001 ticks of 0.05
    assert part["tape"][0][1:] == ["100.05", "3", "sell"]
    assert part["status"]["phase"] == "halted"
    assert (part["status"]["band_low"], part["status"]["band_high"]) == ("90.00", "110.00")
    assert part["stats"]["decimals"] == 2


def test_a_sequence_gap_is_counted() -> None:
    state = MarketState([SPEC])
    for seq in (1, 2, 5):
        state.on_feed([{"type": "top_of_book", "symbol": "AGR", "seq": seq, "bid_price": 1}])
    assert state.gaps == 1


# ------------------------------------------------------------------ the services page
PAGE = """\
# TYPE agora_exchange_batch_seconds histogram
agora_exchange_batch_seconds_bucket{{le="0.001"}} {a}
agora_exchange_batch_seconds_bucket{{le="0.01"}} {b}
agora_exchange_batch_seconds_bucket{{le="+Inf"}} {b}
agora_exchange_batch_seconds_count {b}
agora_exchange_batch_seconds_sum 0.5
# TYPE agora_exchange_rejects counter
agora_exchange_rejects_total{{reason="rate_limited"}} {r}
# TYPE agora_exchange_messages counter
agora_exchange_messages_total{{type="new_order"}} {m}
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1000
"""


def test_the_services_page_turns_two_scrapes_into_rates_and_percentiles() -> None:
    old = parse(PAGE.format(a=50, b=100, r=2, m=1_000), at=10.0)
    new = parse(PAGE.format(a=60, b=200, r=7, m=3_000), at=12.0)
    row = summarise("exchange", new, old, now_s=1_090.0)
    assert row["up"] and row["uptime_s"] == 90
    assert row["rates"]["requests/s"] == 1_000.0  # (3,000 - 1,000) / 2 s
    assert row["rejects"] == {"rate_limited": 7}
    # in the interval: 10 of 100 batches under 1 ms, the other 90 between 1 and 10 ms
    assert row["ack_ms"]["p50"] == pytest.approx(1 + 9 * (50 - 10) / 90, rel=1e-3)
    assert 1.0 < row["ack_ms"]["p99"] <= 10.0
    down = summarise("clearing", None, None, 0.0, "connection refused")
    assert down == {"service": "clearing", "up": False, "error": "connection refused"}


# ------------------------------------------------------------------ the operator's halt
def _control(ctx: zmq.Context, endpoint: str, **fields: Any) -> Any:
    sock = dealer(ctx, endpoint)
    try:
        sock.send(encode(SymbolControl(**fields)))
        assert sock.poll(20_000), "no answer from the snapshot service"
        return decode_batch(sock.recv())[0]
    finally:
        sock.close()


def test_only_the_admin_token_halts_a_symbol_and_a_restart_keeps_it_halted(
    tmp_path: Path,
) -> None:
    market = start_market(tmp_path)
    ctx = zmq.Context()
    try:
        snap = market.endpoints["snapshot"]
        for token in ("", "not-the-token"):
            reply = _control(ctx, snap, symbol="AGR", action="halt", token=token)
            assert (reply.type, reply.reason) == ("protocol_reject", "not_authorised")
            assert token not in reply.text or not token
        reply = _control(ctx, snap, symbol="AGR", action="resume", token=market.admin_token)
        assert (reply.type, reply.reason) == ("protocol_reject", "not_halted")
        reply = _control(ctx, snap, symbol="AGR", action="halt", token=market.admin_token)
        assert (reply.type, reply.phase, reply.reason) == ("market_status", "halted", "operator")
        reply = _control(ctx, snap, symbol="NOPE", action="halt", token=market.admin_token)
        assert reply.reason == "unknown_symbol"

        market.exchange.stop()
        market.restart_exchange()  # the halt is in the journal: still halted after replay
        snap = market.endpoints["snapshot"]
        reply = _control(ctx, snap, symbol="AGR", action="halt", token=market.admin_token)
        assert (reply.type, reply.reason) == ("protocol_reject", "already_halted")
        reply = _control(ctx, snap, symbol="AGR", action="resume", token=market.admin_token)
        assert (reply.type, reply.phase) == ("market_status", "continuous")
    finally:
        ctx.destroy(linger=0)
        market.stop()
    log = (market.exchange.stderr_text() + market.clearing.stderr_text())
    assert market.admin_token not in log and "not-the-token" not in log


# ------------------------------------------------------------------ the web service
@pytest.fixture
def market_with_dashboard(tmp_path: Path) -> Any:
    market = start_market(tmp_path)
    env = dict(os.environ)
    env.update({
        "AGORA_DASHBOARD_PORT": "0", "AGORA_DASHBOARD_FEED": market.endpoints["feed"],
        "AGORA_DASHBOARD_SNAPSHOT": market.endpoints["snapshot"],
        "AGORA_DASHBOARD_CLEARING": market.endpoints["clearing"],
        "AGORA_DASHBOARD_ADMIN_TOKEN": market.admin_token, "AGORA_DASHBOARD_POLL_S": "0.2",
        "AGORA_DASHBOARD_LOG_JSON": "1", "AGORA_DASHBOARD_METRICS_PORT": "0",
    })  # fmt: skip
    dash = Proc([sys.executable, "-m", "dashboard"], env)
    try:
        yield market, dash
    finally:
        dash.stop()
        market.stop()


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_dashboard_is_read_only_without_the_token(market_with_dashboard: Any) -> None:
    market, dash = market_with_dashboard
    url = dash.ready["dashboard"]
    control = url + "api/control"
    status, body = _http(control, {"symbol": "AGR", "action": "halt"})
    assert (status, body["reason"]) == (403, "admin_token_required")
    status, body = _http(control, {"symbol": "AGR", "action": "halt", "token": "guess"})
    assert (status, body["reason"]) == (403, "not_authorised")
    status, body = _http(control, {"symbol": "AGR", "action": "explode", "token": "x"})
    assert (status, body["reason"]) == (400, "unknown_action")
    status, body = _http(control, {"action": "scenario", "scenario": "flash-crash"})
    assert (status, body["reason"]) == (403, "admin_token_required")
    status, body = _http(control, {"action": "scenario", "scenario": "flash-crash",
                                   "token": market.admin_token})  # fmt: skip
    assert (status, body["reason"]) == (409, "unknown_scenario")  # no scenario control here
    assert _http(url + "api/scenarios")[1]["scenarios"] == {}
    status, body = _http(control, {"symbol": "AGR", "action": "halt",
                                   "token": market.admin_token})  # fmt: skip
    assert (status, body["ok"], body["phase"]) == (200, True, "halted")

    def phase() -> str | None:
        return (_http(url + "api/state")[1]["market"]["AGR"].get("status") or {}).get("phase")

    wait_until(lambda: phase() == "halted", "the dashboard shows the halt from the feed")
    assert market.admin_token not in json.dumps(_http(url + "api/state")[1])
    status, body = _http(control, {"symbol": "AGR", "action": "resume",
                                   "token": market.admin_token})  # fmt: skip
    assert (status, body["phase"]) == (200, "continuous")
    wait_until(lambda: phase() == "continuous", "the dashboard shows the resumption")
    dash.stop()
    assert market.admin_token not in dash.stderr_text() and "guess" not in dash.stderr_text()


def test_the_dashboard_shows_trades_and_the_leaderboard(market_with_dashboard: Any) -> None:
    market, dash = market_with_dashboard
    url = dash.ready["dashboard"]
    ctx = zmq.Context()
    try:
        for account in ("alice", "bob"):
            _open(market, account)
        # logons are refused for unknown accounts: the two accounts above have the token
        alice = WireClient(ctx, market.endpoints["gateway"])
        _logon(alice, "alice", market)
        bob = WireClient(ctx, market.endpoints["gateway"])
        _logon(bob, "bob", market)
        alice.send(NewOrder(client_order_id="a1", symbol="AGR", side="sell", order_type="limit",
                            qty=5, price=10_010))  # fmt: skip
        alice.wait(lambda m: m.type == "execution_report" and m.exec_type == "new")
        bob.send(NewOrder(client_order_id="b1", symbol="AGR", side="buy", order_type="limit",
                          qty=2, price=10_010))  # fmt: skip
        bob.wait(lambda m: m.type == "execution_report" and m.exec_type == "trade")

        def state() -> dict[str, Any]:
            return _http(url + "api/state")[1]

        wait_until(lambda: state()["market"]["AGR"].get("stats", {}).get("trades") == 1,
                   "the trade on the dashboard")  # fmt: skip
        s = state()
        assert s["market"]["AGR"]["tape"][-1][1:3] == ["100.10", "2"]
        wait_until(lambda: {"alice", "bob"} <= {r["account"] for r in
                                               state()["leaderboard"]["rows"]},
                   "the accounts on the leaderboard")  # fmt: skip
        wait_until(lambda: any(level[1] == "100.10" for level in
                               state()["market"]["AGR"].get("depth", {}).get("asks", [])),
                   "alice's rest in the ladder")  # fmt: skip
        own = next(r for r in state()["services"]["rows"] if r["service"] == "dashboard")
        assert own["up"] and own["feed_gaps"] == 0
    finally:
        ctx.destroy(linger=0)


def _open(market: Any, account: str) -> None:
    import asyncio

    from clearing.client import ClearingClient

    async def go() -> Any:
        async with ClearingClient(market.endpoints["clearing"],
                                  admin_token=market.admin_token) as c:  # fmt: skip
            return await c.open_account(account=account, cash=10_000_000,
                                        positions={"AGR": 100})  # fmt: skip

    opened = asyncio.run(go())
    _TOKENS[account] = opened.token


_TOKENS: dict[str, str] = {}


def _logon(client: WireClient, account: str, market: Any) -> None:
    from exchange.protocol import Logon

    def accepted() -> bool:  # a fresh token reaches the exchange's gate shortly after
        client.send(Logon(account=account, token=_TOKENS[account]))
        reply = client.wait(lambda m: m.type == "logon_reply")
        return bool(reply.accepted)

    wait_until(accepted, f"{account} logs on")


def test_risk_figures_are_the_metrics_modules_over_the_sampled_equity() -> None:
    from agents.metrics import historical_var, max_drawdown
    from dashboard.risk import risk_figures

    assert risk_figures([(0, 100), (1, 90)], 2.0) == {}  # too few samples to say anything
    equity = [(i * 2 * SECOND, v) for i, v in enumerate([10_000, 10_500, 9_000, 9_800, 9_200])]
    fig = risk_figures(equity, 2.0)
    ts = [t for t, _ in equity]
    values = [float(v) for _, v in equity]
    assert fig["max drawdown"] == "15.00" == f"{max_drawdown(ts, values).depth / 100:.2f}"
    changes = [b - a for a, b in itertools.pairwise(values)]
    assert fig["VaR 95% / 2 s"] == f"{historical_var(changes, 0.95) / 100:,.2f}"
    assert set(fig) == {"max drawdown", "VaR 95% / 2 s", "Sharpe / 2 s"}
