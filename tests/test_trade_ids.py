"""Trade ids never repeat with a different trade, even when the exchange's journal loses its tail;
and clearing treats "same id, different trade" as a fault, never as a duplicate to drop."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_clearing_process import settled_through

from agents.client import ExchangeClient
from clearing.client import ClearingClient
from clearing.house import ClearingHouse
from clearing.ledger import OutOfOrder
from clearing.protocol import ListAccounts
from clearing.store import Store
from deploy.launch import start_market
from exchange.engine import EPOCH_BITS, Engine
from exchange.epoch import advance_epoch, epoch_path, read_epoch
from exchange.journal import Journal, records_at
from exchange.settings import default_symbols
from exchange.symbols import SymbolSpec

SYM = "AGR"
E1 = 1 << EPOCH_BITS  # the first trade id of epoch 1 is E1 + 1


# ------------------------------------------------------------------------------ engine, epoch


def crossing_pair(engine: Engine, ts: int) -> list[tuple]:
    engine.submit(SYM, "sell", "limit", 1, 100, "s", None, "GTC", ts)
    return [ev for ev in engine.submit(SYM, "buy", "limit", 1, 100, "b", None, "GTC", ts + 1)
            if ev[0] == "trade"]  # fmt: skip


def test_trade_ids_carry_the_epoch_and_only_move_forward() -> None:
    engine = Engine([SymbolSpec(symbol=SYM)])
    assert [t[3] for t in crossing_pair(engine, 1)] == [1]  # epoch 0: plain ids
    engine.start_epoch(1)
    assert [t[3] for t in crossing_pair(engine, 3)] == [E1 + 1]
    assert [t[3] for t in crossing_pair(engine, 5)] == [E1 + 2]
    assert engine.epoch == 1 and engine.last_trade_id == E1 + 2
    for bad in (0, 1, -1, 2**31, 1.0):
        with pytest.raises(ValueError):
            engine.start_epoch(bad)  # type: ignore[arg-type]
    engine.start_epoch(7)
    assert [t[3] for t in crossing_pair(engine, 7)] == [(7 << EPOCH_BITS) + 1]


def test_epoch_file_claims_a_new_epoch_at_every_start(tmp_path: Path) -> None:
    path = epoch_path(tmp_path / "exchange.journal")
    assert read_epoch(path) is None
    assert advance_epoch(path, -1) == 0  # the first start ever, empty journal
    assert advance_epoch(path, -1) == 1  # the journal was removed: still a new epoch
    assert advance_epoch(path, 5) == 6  # the journal knows a later epoch than the file
    assert read_epoch(path) == 6
    path.unlink()
    assert advance_epoch(path, 0) == 1  # an old journal (epoch 0 ids), no file


def test_journal_pages_trades_across_epochs(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    ids = [1, 2, 3, E1 + 1, E1 + 2]
    for tid in ids:
        journal.append(["T", tid, {"trade_id": tid}])
    journal.commit()
    assert journal.last_trade_id == E1 + 2
    assert [r[1] for r in journal.trades_from(2, 10)] == ids[1:]
    assert [r[1] for r in journal.trades_from(4, 10)] == ids[3:]  # the next one journalled
    assert journal.trades_from(E1 + 3, 10) == []
    journal.close()
    again = Journal(tmp_path / "j")
    assert len(again.trade_offsets) == len(ids) and again.last_trade_id == E1 + 2
    assert [r[1] for r in again.trades_from(4, 1)] == [E1 + 1]
    resumed = Journal(tmp_path / "j", resume=again.position())  # from a snapshot's position
    assert resumed.resume_refused is None and resumed.last_trade_id == E1 + 2
    assert [r[1] for r in resumed.trades_from(3, 2)] == [3, E1 + 1]
    again.close()
    resumed.close()


# ------------------------------------------------------------------------------ clearing


def capture(trade_id: int, buyer: str = "alice", seller: str = "bob", price: int = 10_000,
            qty: int = 1, ts: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "trade_id": trade_id, "ts": ts, "symbol": SYM, "price": price, "qty": qty,
        "buy_account": buyer, "sell_account": seller, "buy_order_id": 2 * trade_id,
        "sell_order_id": 2 * trade_id - 1, "aggressor_side": "buy",
    }  # fmt: skip


@pytest.fixture
def house(tmp_path: Path) -> ClearingHouse:
    h = ClearingHouse(Store(tmp_path / "c.db"), default_symbols(), "admin-token")
    h.settle([capture(1), capture(2), capture(3)])
    return h


def positions(h: ClearingHouse) -> dict[str, tuple[int, int]]:
    return {n: (a.cash, a.positions[SYM].qty) for n, a in h.ledger.accounts.items()
            if SYM in a.positions}  # fmt: skip


def test_identical_redelivery_is_an_idempotent_no_op(house: ClearingHouse) -> None:
    before = positions(house)
    assert house.settle([capture(2), capture(3), capture(2)]) == set()
    assert positions(house) == before and house.conflicts == 0 and house.new_conflicts == []
    assert house.store.conflicts() == []


def test_same_id_different_trade_is_refused_loudly(house: ClearingHouse) -> None:
    before = positions(house)
    other = capture(2, buyer="carol", price=10_100, qty=5)  # id 2, another trade
    assert house.settle([other, capture(4)]) == {"alice", "bob", "_fees"}  # 4 still settles
    assert house.ledger.settled_through == 4
    after = positions(house)
    assert "carol" not in after  # the impostor moved nothing
    assert after["alice"][1] == before["alice"][1] + 1  # only trade 4
    assert house.conflicts == 1
    [alarm] = house.new_conflicts
    assert alarm["trade_id"] == 2 and alarm["reason"] == "conflicting_duplicate"
    assert alarm["received"]["buy_account"] == "carol" and alarm["received"]["price"] == 10_100
    assert alarm["settled"]["buy_account"] == "alice" and alarm["settled"]["price"] == 10_000
    [stored] = house.store.conflicts()
    assert stored == alarm  # recorded in the database, in the same transaction
    # the operator's status shows it, and it survives a restart
    listed = house.handle(ListAccounts(admin_token="admin-token"), 0).reply
    assert listed.trade_conflicts == 1
    again = ClearingHouse(house.store, default_symbols(), "admin-token")
    assert again.conflicts == 1


def test_conflicts_within_a_batch_and_below_a_gap_are_refused(house: ClearingHouse) -> None:
    house.settle([capture(4), capture(4, qty=9)])  # two trades claim id 4 in one batch
    assert house.ledger.accounts["alice"].positions[SYM].qty == 4  # the first one settled
    assert [c["reason"] for c in house.new_conflicts] == ["conflicting_in_batch"]
    house.new_conflicts.clear()
    with pytest.raises(OutOfOrder):  # a gap: nothing settles, but the conflict is recorded
        house.settle([capture(3, qty=7), capture(9)])
    assert [c["reason"] for c in house.new_conflicts] == ["conflicting_duplicate"]
    assert house.conflicts == 2 and len(house.store.conflicts()) == 2


def test_a_new_epoch_is_followed_only_as_the_journal_says(house: ClearingHouse) -> None:
    with pytest.raises(OutOfOrder):  # live: trades 4.. may exist, fetch them first
        house.settle([capture(E1 + 1)])
    with pytest.raises(OutOfOrder):  # not the first trade of the epoch
        house.settle([capture(E1 + 2)], from_journal=True)
    with pytest.raises(OutOfOrder):  # a jump inside an epoch is never an epoch change
        house.settle([capture(9)], from_journal=True)
    touched = house.settle([capture(E1 + 1), capture(E1 + 2)], from_journal=True)
    assert touched and house.ledger.settled_through == E1 + 2
    house.settle([capture(E1 + 3)])  # and then live again
    assert house.ledger.settled_through == E1 + 3
    # an id in the range the journal said did not exist now names a trade: refused
    house.settle([capture(5)])
    assert [c["reason"] for c in house.new_conflicts] == ["unknown_below_settled"]
    reloaded = ClearingHouse(house.store, default_symbols(), "admin-token")
    assert reloaded.ledger.settled_through == E1 + 3


# ------------------------------------------------------------------------------ real processes


def cut_journal(path: Path, trades_to_lose: int) -> int:
    """Truncate the journal at a record boundary so that its last `trades_to_lose` trades (and
    the orders that made them) are gone, as a power cut without fsync could leave it. Returns
    the new last trade id."""
    records = list(records_at(path))
    trade_at = [i for i, (_o, r) in enumerate(records) if r[0] == "T"]
    first_lost = trade_at[-trades_to_lose]
    cut = max(i for i in range(first_lost) if records[i][1][0] == "N")  # the order that traded
    with open(path, "r+b") as f:
        f.truncate(records[cut][0])
    kept = [r for _o, r in records[:cut] if r[0] == "T"]
    return kept[-1][1]


async def test_a_journal_tail_loss_never_reissues_a_settled_trade_id(tmp_path: Path) -> None:
    market = start_market(tmp_path)
    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    exchange = market.exchange
    fills: dict[str, dict[int, tuple[str, int, int]]] = {"alice": {}, "bob": {}}
    clients: list[ExchangeClient] = []

    async def trade_rounds(n: int, price: int) -> None:
        a, b = clients
        for i in range(n):
            assert (await b.create_order(SYM, "sell", "limit", 1 + i % 3, price)).exec_type == "new"
            assert (await a.create_order(SYM, "buy", "limit", 1 + i % 3, price)).exec_type == "new"

    def on_report(name: str) -> Any:
        def hear(r: Any) -> None:
            if r.type == "execution_report" and r.exec_type == "trade":
                assert r.trade_id not in fills[name], "a fill reported twice"
                fills[name][r.trade_id] = (r.side, r.last_qty, r.last_price)

        return hear

    try:
        tokens = {}
        for name, cash, pos in (("alice", 100_000_000, {}), ("bob", 0, {SYM: 1000})):
            tokens[name] = (await admin.open_account(name, cash=cash, positions=pos)).token
        for name in ("alice", "bob"):
            c = await ExchangeClient(name, tokens[name], gateway=ep["gateway"]).connect()
            c.listener = on_report(name)
            clients.append(c)
        await trade_rounds(12, 10_000)
        await settled_through(ep["clearing"], market.link_secret, 12)
        for c in clients:
            await c.close()
        exchange.stop()
        last_kept = cut_journal(tmp_path / "exchange" / "exchange.journal", 4)
        assert last_kept == 8  # 4 settled trades are gone from the exchange's journal

        exchange = market.restart_exchange()
        for c in clients:
            await c.connect()
        await trade_rounds(5, 10_010)
        new_ids = sorted(set(fills["alice"]) - set(range(1, 13)))
        # Epoch 1: nothing reissued. (The replayed journal still had a sell order whose trade
        # was lost with the tail: it trades again, as a new trade with a new id.)
        assert len(new_ids) >= 5 and new_ids == [E1 + i for i in range(1, len(new_ids) + 1)]
        await settled_through(ep["clearing"], market.link_secret, new_ids[-1])

        listed = await admin.list_accounts()
        assert listed.trade_conflicts == 0 and listed.settled_through == new_ids[-1]
        for name in ("alice", "bob"):
            owner = ClearingClient(ep["clearing"], account=name, token=tokens[name])
            bal = await owner.balance()
            history = await owner.all_trades()
            await owner.close()
            # every trade the exchange reported, settled once, as reported
            assert {t.trade_id: (t.side, t.qty, t.price) for t in history} == fills[name]
            qty = sum(q if side == "buy" else -q for side, q, _p in fills[name].values())
            notional = sum((-q if side == "buy" else q) * p
                           for side, q, p in fills[name].values())  # fmt: skip
            start_qty = 0 if name == "alice" else 1000
            start_cash = 100_000_000 if name == "alice" else 0
            assert {p.symbol: p.qty for p in bal.positions} == {SYM: start_qty + qty}
            assert bal.cash + bal.fees_paid == start_cash + notional
        assert len(fills["alice"]) == 12 + len(new_ids)
        assert fills["alice"].keys() == fills["bob"].keys()
    finally:
        for c in clients:
            await c.close()
        await admin.close()
        exchange.stop()
        err = market.clearing.stop()
    assert "trade_id_conflict" not in err


def test_a_reissued_id_is_refused_not_skipped(tmp_path: Path) -> None:
    """The failure this guards against, shown on the clearing house alone: an exchange that
    reissues a settled id with another trade is refused and recorded, not silently skipped."""
    h = ClearingHouse(Store(tmp_path / "c.db"), default_symbols(), "admin-token")
    h.settle([capture(i) for i in range(1, 5)])
    reissued = [capture(i, qty=2, ts=99) for i in (3, 4)] + [capture(5, qty=2, ts=99)]
    h.settle(reissued)
    assert [c["trade_id"] for c in h.new_conflicts] == [3, 4]
    assert h.ledger.settled_through == 5 and h.conflicts == 2


# ------------------------------------------------------------------------------ property


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["next", "same", "altered", "batch"]),
                          st.integers(0, 10**6)), max_size=30))  # fmt: skip
def test_any_redelivery_settles_each_trade_once_and_refuses_every_impostor(
    script: list[tuple[str, int]],
) -> None:
    """Whatever mix of new trades, exact repeats and altered copies clearing is sent, it ends
    exactly as if it had settled each true trade once, and has refused every altered copy."""
    with tempfile.TemporaryDirectory() as tmp:
        h = ClearingHouse(Store(Path(tmp) / "c.db"), default_symbols(), "admin-token")
        truth: list[dict[str, Any]] = []
        impostors = 0

        def true_trade(i: int) -> dict[str, Any]:
            return capture(i, buyer=f"b{i % 3}", seller=f"s{i % 2}", price=10_000 + i % 7,
                           qty=1 + i % 4, ts=i)  # fmt: skip

        for action, pick in script:
            if action == "next" or not truth:
                truth.append(true_trade(len(truth) + 1))
                h.settle([truth[-1]])
            elif action == "same":
                h.settle([truth[pick % len(truth)]])
            elif action == "altered":
                t = dict(truth[pick % len(truth)], qty=99, ts=pick)
                h.settle([t])
                impostors += 1
            else:  # a journal page: some settled, the next new ones, one repeated
                start = pick % len(truth)
                new = [true_trade(len(truth) + 1), true_trade(len(truth) + 2)]
                truth.extend(new)
                h.settle([*truth[start:], truth[start]], from_journal=True)
        expected = ClearingHouse(Store(Path(tmp) / "e.db"), default_symbols(), "admin-token")
        if truth:
            expected.settle(truth)
        assert positions(h) == positions(expected)
        assert h.ledger.settled_through == len(truth)
        assert h.conflicts == impostors == len(h.store.conflicts(limit=1000))
        h.store.close()
        expected.store.close()
