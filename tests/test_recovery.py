"""Nothing missed on the client side: execution reports are sequenced per account and sent again
on request (after a disconnect, after an exchange restart), and the public trade tape can be
replayed by anyone to fill a gap in the trades stream."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from test_clearing_process import WAIT_S, settled_through

from agents.client import ExchangeClient, MarketDataClient
from clearing.client import ClearingClient
from deploy.launch import Proc, client_env, free_endpoint, start_exchange, start_market
from exchange.engine import Engine
from exchange.protocol import TapeRequest, TradeReplayRequest, decode_batch, encode
from exchange.reports import Reporter
from exchange.symbols import SymbolSpec

SYM = "AGR"


# ------------------------------------------------------------------------------ the reporter


def run(engine: Engine, reporter: Reporter, commands: list[tuple]) -> list[dict[str, Any]]:
    out = []
    for ts, (acct, side, qty, price) in enumerate(commands, start=1):
        events = engine.submit(SYM, side, "limit", qty, price, acct, None, "GTC", ts)
        box = reporter.translate_raw(events)
        out.extend(report for _owner, report in box.private)
        for n, msg in enumerate(box.public):  # what the feed does: a seq per stream
            msg["seq"] = ts * 100 + n
    return out


COMMANDS = [("a", "sell", 2, 100), ("b", "buy", 1, 100), ("a", "sell", 1, 101),
            ("b", "buy", 3, 101), ("c", "buy", 1, 99)]  # fmt: skip


def test_reports_are_numbered_per_account_and_kept_for_resends() -> None:
    reporter = Reporter(resend_window=3)
    reports = run(Engine([SymbolSpec(symbol=SYM)]), reporter, COMMANDS)
    for acct in ("a", "b", "c"):
        seqs = [r["account_seq"] for r in reports if r["account"] == acct]
        assert seqs == list(range(1, len(seqs) + 1))
    last_a = reporter.account_seqs["a"]
    kept, last, first = reporter.resend("a", 1, 100)
    assert (last, first) == (last_a, last_a - 2)  # a window of 3
    assert [r["account_seq"] for r in kept] == [last_a - 2, last_a - 1, last_a]
    kept, _, _ = reporter.resend("a", last_a, 100)
    assert [r["account_seq"] for r in kept] == [last_a]
    assert reporter.resend("a", last_a + 1, 100)[0] == []
    assert reporter.resend("nobody", 1, 100) == ([], 0, 0)
    # A replay of the same commands numbers every report the same way.
    again = Reporter(resend_window=3)
    assert run(Engine([SymbolSpec(symbol=SYM)]), again, COMMANDS) == reports
    assert again.account_seqs == reporter.account_seqs


def test_unsequenced_reporter_is_unchanged() -> None:
    reports = run(Engine([SymbolSpec(symbol=SYM)]), Reporter(), COMMANDS)
    assert all("account_seq" not in r for r in reports)


def test_the_tape_keeps_public_fields_only() -> None:
    reporter = Reporter(tape_window=2)
    run(Engine([SymbolSpec(symbol=SYM)]), reporter, COMMANDS)
    trades, last, first = reporter.tape(SYM, 1, 10)
    assert len(trades) == 2 and trades[-1]["seq"] == last and trades[0]["seq"] == first
    for t in trades:
        assert set(t) == {"type", "v", "ts", "symbol", "trade_id", "seq", "price", "qty",
                          "aggressor_side"}  # fmt: skip


# ------------------------------------------------------------------------------ real processes


async def open_pair(ep: dict[str, str], admin: ClearingClient) -> dict[str, str]:
    tokens = {}
    for name, cash, pos in (("alice", 100_000_000, {}), ("bob", 0, {SYM: 1000})):
        tokens[name] = (await admin.open_account(name, cash=cash, positions=pos)).token
    return tokens


class Fills:
    """What an agent is told: each fill once, by trade id (a repeat fails the test)."""

    def __init__(self) -> None:
        self.fills: dict[int, tuple[str, int, int]] = {}
        self.seqs: list[int] = []

    def __call__(self, r: Any) -> None:
        if r.type != "execution_report":
            return
        self.seqs.append(r.account_seq)
        if r.exec_type == "trade":
            assert r.trade_id not in self.fills, "a fill delivered twice"
            self.fills[r.trade_id] = (r.side, r.last_qty, r.last_price)


async def clearing_fills(ep: dict[str, str], name: str, token: str) -> dict[int, tuple]:
    owner = ClearingClient(ep["clearing"], account=name, token=token)
    try:
        return {t.trade_id: (t.side, t.qty, t.price) for t in await owner.all_trades()}
    finally:
        await owner.close()


async def test_missed_fills_are_resent_after_a_disconnect_and_a_kill(tmp_path: Path) -> None:
    market = start_market(tmp_path)
    ep = market.endpoints
    exchange = market.exchange
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    heard = Fills()
    clients: list[ExchangeClient] = []
    try:
        tokens = await open_pair(ep, admin)
        alice = ExchangeClient("alice", tokens["alice"], gateway=ep["gateway"])
        bob = ExchangeClient("bob", tokens["bob"], gateway=ep["gateway"])
        clients += [alice, bob]
        await alice.connect()
        await bob.connect()
        alice.listener = heard
        for price in range(10_000, 10_010):  # alice's bids rest on the book
            assert (await alice.create_order(SYM, "buy", "limit", 2, price)).exec_type == "new"
        assert (await bob.create_order(SYM, "sell", "limit", 3, 10_009)).exec_type == "new"
        # alice is away: bob fills some of her resting bids
        await alice.close()
        for price in (10_008, 10_007, 10_006):
            assert (await bob.create_order(SYM, "sell", "limit", 2, price)).exec_type == "new"
        await alice.connect()  # logs on again and asks for what it missed
        assert alice.recovered >= 3 and not alice.resend_incomplete
        # away again; more fills; the exchange is killed (-9) and restarted
        await alice.close()
        for price in (10_005, 10_004):
            assert (await bob.create_order(SYM, "sell", "limit", 2, price)).exec_type == "new"
        await bob.close()
        exchange.kill()
        exchange = market.restart_exchange()
        await alice.connect()  # the new exchange rebuilt its reports from the journal
        assert not alice.resend_incomplete
        await bob.connect()
        assert (await bob.create_order(SYM, "sell", "limit", 1, 10_003)).exec_type == "new"
        theirs: dict[int, tuple] = {}
        async with asyncio.timeout(WAIT_S):
            while len(heard.fills) < 7 or theirs != heard.fills:
                await asyncio.sleep(0.05)  # polling clearing's records, not a synchronisation
                theirs = await clearing_fills(ep, "alice", tokens["alice"])
        assert heard.fills == theirs and len(theirs) == 7
        sequenced = [s for s in heard.seqs if s]
        assert sorted(sequenced) == list(range(1, len(sequenced) + 1))  # each report once
    finally:
        for c in clients:
            await c.close()
        await admin.close()
        exchange.stop()
        market.clearing.stop()


async def trade_count(snapshot: str, token: str) -> int:
    """How many trades the exchange's journal holds (paging its replay service)."""
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(snapshot)
    n, nxt = 0, 1
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                await sock.send(encode(TradeReplayRequest(from_trade_id=nxt, max_count=1000,
                                                          token=token)))  # fmt: skip
                page = decode_batch(await sock.recv())[0]
                n += len(page.trades)
                if not page.trades or page.trades[-1].trade_id >= page.end_trade_id:
                    return n
                nxt = page.trades[-1].trade_id + 1
    finally:
        sock.close()


async def test_agents_fills_equal_clearing_after_an_exchange_kill(tmp_path: Path) -> None:
    """kill -9 while agents trade: each agent's fills (told by the SDK, resends included)
    are exactly clearing's records for its account, without the runner's fallback to them."""
    market = start_market(tmp_path)
    ep = market.endpoints
    env = client_env(ep, market.admin_token)
    runner = Proc([sys.executable, "-m", "agents", "run", "zi", "--count", "8",
                   "--cash", "10000000", "--position", "AGR=1000",
                   "--param", "mean_interval_ns=20000000", "--json-logs"], env)  # fmt: skip
    exchange = market.exchange
    try:
        await settled_through(ep["clearing"], market.link_secret, 30)  # trading
        exchange.kill()  # kill -9 while the agents trade
        exchange = market.restart_exchange()
        for _ in range(8):  # every agent notices and logs on again
            restored = runner.wait_log(lambda line: '"session_restored"' in line)
            assert "reports_recovered" in restored
        # trades of the new epoch settle too
        await settled_through(ep["clearing"], market.link_secret, (1 << 32) + 20)
        runner.stop(signal.SIGINT, timeout=60)
        line = next(x for x in runner.output.splitlines() if x.startswith("AGORA_RESULT "))
        result = json.loads(line[len("AGORA_RESULT ") :])
        trades = await trade_count(ep["snapshot"], market.admin_token)
    finally:
        if runner.returncode is None:
            runner.kill()
        exchange.stop()
        market.clearing.stop()
    assert runner.returncode == 0
    assert result["errors"] == 0
    # every agent's own view equals clearing's, from what the SDK delivered alone
    assert result["mismatches"] == [] and result["recovered_fills"] == 0
    # every trade was told to both of its sides once: fills = 2 x the journal's trades
    assert result["fills"] == 2 * trades


async def test_trade_stream_gaps_are_filled_from_the_public_tape(tmp_path: Path) -> None:
    """A subscriber that misses prints (here: the exchange restarted where it could not reach
    it, traded, and came back) gets every one, in order, from the public tape."""
    data = tmp_path / "ex"
    ports = {k: free_endpoint() for k in ("gateway", "feed", "snapshot", "dropcopy")}
    exchange = start_exchange(data, ports)
    md = MarketDataClient(feed=ports["feed"], snapshot=ports["snapshot"])
    seen: list[Any] = []
    got_two = asyncio.Event()
    got_all = asyncio.Event()
    want = [2**62]  # how many prints to wait for, once known

    async def watch() -> None:
        async for t in md.watch_trades(SYM):
            seen.append(t)
            if len(seen) >= 2:
                got_two.set()
            if len(seen) >= want[0]:
                got_all.set()
                return

    async def cross(n: int, price: int) -> None:
        async with ExchangeClient("s", gateway=ports["gateway"]) as s, \
                ExchangeClient("b", gateway=ports["gateway"]) as b:  # fmt: skip
            for _ in range(n):
                assert (await s.create_order(SYM, "sell", "limit", 1, price)).exec_type == "new"
                assert (await b.create_order(SYM, "buy", "limit", 1, price)).exec_type == "new"

    task = asyncio.create_task(watch())
    try:
        # the subscription is live once a print reaches it: trade until one does
        async with asyncio.timeout(WAIT_S):
            while not got_two.is_set():
                await cross(1, 10_000)
                await asyncio.wait([asyncio.ensure_future(got_two.wait())], timeout=0.2)
        before = len(seen)
        want[0] = before + 4
        exchange.kill()
        elsewhere = dict(ports, feed=free_endpoint())  # the subscriber cannot reach this feed
        exchange = start_exchange(data, elsewhere)
        await cross(3, 10_001)  # prints nobody subscribed receives
        exchange.kill()
        exchange = start_exchange(data, ports)  # back where the subscriber listens
        await cross(1, 10_002)
        async with asyncio.timeout(WAIT_S):  # a heartbeat reveals a lost tail at the latest
            await got_all.wait()
        # public fields only: the tape names no accounts, no order ids
        async with MarketDataClient(feed=ports["feed"], snapshot=ports["snapshot"]) as anyone:
            page = await anyone._ask(TapeRequest(symbol=SYM, from_seq=1), 10.0, "tape")
        assert page.type == "tape_replay" and page.complete
        assert [t.seq for t in page.trades] == list(range(1, len(page.trades) + 1))
        assert "account" not in json.dumps([t.model_dump() for t in page.trades])
    finally:
        task.cancel()
        await md.close()
        exchange.stop()
    assert [t.seq for t in seen] == list(range(1, len(seen) + 1))  # all, in order, once
    assert len(seen) >= before + 4 and md.filled >= 3 and md.gaps == 0


# ------------------------------------------------------------------------------ the SDK alone


async def test_a_gap_on_a_live_session_is_filled_once() -> None:
    """A frame lost on the way (report 2 never came): the client notices at report 3, asks
    for 2, and delivers 1, 3, 2 once each, even when the exchange repeats some."""
    from test_client import FAST, _er, fake_gateway

    from exchange.protocol import ResendReply

    asked: list[int] = []

    def report(seq: int) -> Any:
        return _er(
            f"o{seq}",
            seq,
            "trade",
            last_qty=1,
            last_price=100,
            trade_id=10 + seq,
            cum_qty=1,
            leaves_qty=4,
            order_status="partially_filled",
            account_seq=seq,
        )

    ack: list[Any] = []

    def h(m: Any) -> list[Any]:
        if m.type == "new_order":  # fills 1 and 3 (2 is lost), then the order's ack
            ack.append(_er(m.client_order_id, 99, "new", account_seq=4))
            return [report(1), report(3), ack[0]]
        assert m.type == "resend_request"
        asked.append(m.from_seq)
        again = [report(s) for s in range(m.from_seq, 4)] + ack  # 3 and 4: repeats to drop
        return [*again, ResendReply(
            request_id=m.request_id, from_seq=m.from_seq, next_seq=5, last_seq=4, first_seq=1,
            complete=True)]  # fmt: skip

    async with fake_gateway(h) as ep, ExchangeClient("alice", gateway=ep) as c:
        got: list[int] = []
        done = asyncio.Event()

        def hear(r: Any) -> None:
            got.append(r.account_seq)
            if len(got) == 4:
                done.set()

        c.listener = hear
        await asyncio.wait_for(c.create_order(SYM, "buy", "limit", 5, 100), FAST)
        await asyncio.wait_for(done.wait(), FAST)
        assert sorted(got) == [1, 2, 3, 4] and len(got) == 4
        assert c.account_seq == 4 and c.duplicates == 2
        assert await asyncio.wait_for(c.recover(), FAST) == 0  # asks from 5: nothing new
        assert asked == [2, 5] and len(got) == 4


async def test_a_mass_cancel_of_hundreds_of_orders_reaches_the_client_whole(
    tmp_path: Path,
) -> None:
    """Hundreds of reports in one go (a kill switch over 300 orders) arrive in frames the
    client can read: none is dropped for size, none needs a resend."""
    proc = start_exchange(tmp_path / "ex")
    heard = Fills()
    try:
        async with ExchangeClient("mm", gateway=proc.ready["gateway"]) as c:
            c.listener = heard
            orders = [
                {"symbol": SYM, "side": "buy", "amount": 1, "price": 9_000 + i} for i in range(300)
            ]
            for i in range(0, 300, 100):
                acks = await c.create_orders(orders[i : i + 100])
                assert all(a.exec_type == "new" for a in acks)
            report = await c.cancel_all()
            assert report.cancelled == 300
            async with asyncio.timeout(WAIT_S):
                while len(heard.seqs) < 600:
                    await asyncio.sleep(0.01)  # until the cancels are all delivered
            assert sorted(heard.seqs) == list(range(1, 601))
            assert c.recovered == 0 and c.duplicates == 0
    finally:
        proc.stop()
