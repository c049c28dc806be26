"""Tests of the clearing store (`clearing.store.Store`) and house (`clearing.house.ClearingHouse`)
on a SQLite file: persistence round trips, exactly-once writes, the account API, restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from clearing.fees import FeeSchedule
from clearing.house import ClearingHouse
from clearing.ledger import FEE_ACCOUNT, Ledger, Limits, OutOfOrder, Position
from clearing.protocol import (
    AccountBalance,
    AccountList,
    AccountOpened,
    Ack,
    BalanceRequest,
    ClearingReject,
    Deposit,
    Heartbeat,
    ListAccounts,
    OpenAccount,
    RiskState,
    RiskSubscribe,
    SetLimits,
    Subscribe,
    TradeHistory,
    TradeHistoryRequest,
    Withdraw,
)
from clearing.store import Store
from exchange.symbols import SymbolSpec

SYM = "AGR"
ADMIN = "admin-secret"
FEES = FeeSchedule(maker_bps=-1.0, taker_bps=5.0)


def trade(
    trade_id: int, buyer: str, seller: str, price: int, qty: int, aggressor: str = "buy",
    symbol: str = SYM,
) -> dict[str, Any]:  # fmt: skip
    return {
        "trade_id": trade_id, "ts": 1000 + trade_id, "symbol": symbol, "price": price,
        "qty": qty, "aggressor_side": aggressor, "buy_account": buyer, "sell_account": seller,
        "buy_order_id": 10 * trade_id, "sell_order_id": 10 * trade_id + 1,
    }  # fmt: skip


def snapshot(ledger: Ledger) -> dict[str, Any]:
    """Everything a ledger holds, as plain values."""
    return {
        "settled_through": ledger.settled_through,
        "marks": dict(ledger.marks),
        "accounts": {
            name: (
                a.cash, a.deposits, a.fees_paid, a.token_hash, a.limits,
                {s: (p.qty, p.cost, p.realised) for s, p in a.positions.items()},
            )
            for name, a in ledger.accounts.items()
        },
    }  # fmt: skip


def build(store: Store) -> Ledger:
    """A fixed sequence of operations, each committed as the house would."""
    ledger = Ledger(FEES, {SYM: 1, "BIG": 5})
    store.commit(ledger, ledger.open_account(
        "a", cash=100_000, limits=Limits(leverage=2.5, short_limit=3, max_position=500,
                                         max_order_notional=90_000),
        token_hash="ha", ts=1,
    ), touched=["a"])  # fmt: skip
    store.commit(ledger, ledger.open_account(
        "b", cash=5_000, positions={SYM: 50, "BIG": 7}, cost_prices={SYM: 90, "BIG": 20},
        token_hash="hb", ts=2,
    ), touched=["b"])  # fmt: skip
    store.commit(ledger, [ledger.deposit("b", 1_000, ts=3)])
    trades = [
        trade(1, "a", "b", 100, 20, "buy"),
        trade(2, "b", "a", 110, 5, "sell"),  # a reduces: realised
        trade(3, "a", "b", 30, 4, "none", symbol="BIG"),
    ]
    changes = []
    for t in trades:
        out = ledger.settle(t)
        assert out is not None
        changes += out
    store.commit(ledger, changes, trades)
    store.commit(ledger, [ledger.withdraw("a", 500, ts=4)])
    return ledger


# ---------------------------------------------------------------------------------- Store


def test_commit_and_load_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "c.sqlite")  # missing parent directories are created
    ledger = build(store)
    a_pos = ledger.accounts["a"].positions[SYM]
    assert a_pos.realised != 0 and a_pos.cost != 0  # the round trip covers realised PnL
    assert ledger.accounts[FEE_ACCOUNT].cash != 0
    loaded = Ledger(FEES, {SYM: 1, "BIG": 5})
    store.load(loaded)
    assert snapshot(loaded) == snapshot(ledger)
    assert loaded.settled_through == 3
    assert loaded.marks == {SYM: 110, "BIG": 30}
    assert loaded.accounts["a"].limits == Limits(
        leverage=2.5, short_limit=3, max_position=500, max_order_notional=90_000
    )
    assert isinstance(loaded.accounts["b"].positions[SYM], Position)
    assert store.meta_get("settled_through") == "3"
    assert store.meta_get("nothing") is None
    store.close()


def test_load_of_an_empty_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.sqlite")
    ledger = Ledger()
    store.load(ledger)
    assert ledger.settled_through == 0
    assert list(ledger.accounts) == [FEE_ACCOUNT]
    assert ledger.marks == {}


def test_meta_values_are_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite")
    ledger = Ledger()
    store.commit(ledger, [], meta_values={"epoch": "7"})
    assert store.meta_get("epoch") == "7"
    store.commit(ledger, [], meta_values={"epoch": "8"})  # updates, not a second insert
    assert store.meta_get("epoch") == "8"


def test_second_commit_of_a_trade_id_is_refused_and_rolled_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    ledger = build(store)
    before = store.dump()
    # A buggy caller settles trade 3 again (say, on a fresh ledger) and commits it.
    other = Ledger(FEES, {SYM: 1, "BIG": 5}, settled_through=2)
    t = trade(3, "a", "b", 30, 4, "none", symbol="BIG")
    changes = other.settle(t)
    assert changes is not None
    with pytest.raises(IntegrityError):
        store.commit(other, changes, [t], touched=["a", "b"])
    assert store.dump() == before  # nothing of the failed transaction remains
    reloaded = Ledger(FEES, {SYM: 1, "BIG": 5})
    store.load(reloaded)
    assert snapshot(reloaded) == snapshot(ledger)


def test_trades_of_paging(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    ledger = Ledger(FEES)
    trades = [trade(i, "a" if i % 2 else "c", "b" if i % 3 else "a", 100 + i, i) for i in
              range(1, 11)]  # fmt: skip
    changes = []
    for t in trades:
        changes += ledger.settle(t) or []
    store.commit(ledger, changes, trades)
    a_ids = [t["trade_id"] for t in trades if "a" in (t["buy_account"], t["sell_account"])]
    assert [r["trade_id"] for r in store.trades_of("a", 0, 1000)] == a_ids
    pages, after = [], 0
    while True:
        page = store.trades_of("a", after, 2)
        if not page:
            break
        assert len(page) <= 2
        pages.append([r["trade_id"] for r in page])
        after = page[-1]["trade_id"]
    assert [i for p in pages for i in p] == a_ids
    assert all(len(p) == 2 for p in pages[:-1])
    assert store.trades_of("a", a_ids[-1]) == []
    assert store.trades_of("nobody") == []
    row = store.trades_of("c", 0, 1)[0]
    assert row["trade_id"] == 2
    assert row["buy_account"] == "c" and row["sell_account"] == "b"
    assert (row["price"], row["qty"], row["aggressor"]) == (102, 2, "buy")
    assert (row["buy_order_id"], row["sell_order_id"], row["ts"]) == (20, 21, 1002)
    # Fees come from the trade's changes: c (buyer) took, a (seller) made.
    assert row["buy_fee"] == round(204 * 5 / 10_000) and row["sell_fee"] == 0


def test_trade_rows_carry_both_fees(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite")
    ledger = Ledger(FEES)
    t = trade(1, "a", "b", 1000, 100, "sell")  # notional 100_000: b takes 50, a rebate -10
    store.commit(ledger, ledger.settle(t) or [], [t])
    row = store.trades_of("a")[0]
    assert (row["buy_fee"], row["sell_fee"]) == (-10, 50)


def test_dump_of_two_stores_from_the_same_operations_are_equal(tmp_path: Path) -> None:
    s1, s2 = Store(tmp_path / "1.sqlite"), Store(tmp_path / "2.sqlite")
    build(s1)
    build(s2)
    d1, d2 = s1.dump(), s2.dump()
    assert d1 == d2
    assert set(d1) == {"accounts", "positions", "trades", "changes", "meta"}
    assert len(d1["trades"]) == 3 and len(d1["changes"]) > 6
    # And a different history dumps differently.
    s3 = Store(tmp_path / "3.sqlite")
    ledger = build(s3)
    s3.commit(ledger, [ledger.deposit("a", 1)])
    assert s3.dump() != d1


# ---------------------------------------------------------------------------------- house


def make_house(path: Path, **kw: Any) -> ClearingHouse:
    kw.setdefault("fees", FEES)
    return ClearingHouse(
        Store(path), [SymbolSpec(symbol=SYM, reference_price=100)], ADMIN, **kw
    )


def open_acct(house: ClearingHouse, name: str | None = None, **kw: Any) -> AccountOpened:
    reply = house.handle(OpenAccount(admin_token=ADMIN, account=name, request_id="o", **kw),
                         ts=5).reply  # fmt: skip
    assert isinstance(reply, AccountOpened), reply
    return reply


def balance(house: ClearingHouse, account: str, token: str) -> Any:
    return house.handle(BalanceRequest(account=account, token=token, request_id="b"), 0).reply


@pytest.fixture
def house(tmp_path: Path) -> ClearingHouse:
    return make_house(tmp_path / "house.sqlite", starting_cash=10_000,
                      starting_positions={SYM: 20})  # fmt: skip


def test_open_account_token_grants_access_to_own_account_only(house: ClearingHouse) -> None:
    a = open_acct(house, "alice")
    b = open_acct(house, "bob", cash=50, positions={})
    assert a.account == "alice" and a.request_id == "o" and a.token and a.token != b.token
    bal = balance(house, "alice", a.token)
    assert isinstance(bal, AccountBalance)
    assert bal.request_id == "b"
    assert (bal.cash, bal.deposits, bal.settled_through) == (10_000, 10_000, 0)
    assert [(p.symbol, p.qty, p.avg_cost) for p in bal.positions] == [(SYM, 20, 100.0)]
    assert bal.equity == 10_000 + 20 * 100 and bal.pnl == 0
    bob = balance(house, "bob", b.token)
    assert (bob.cash, bob.positions) == (50, [])
    # bob's token does not open alice's account, nor does the admin token.
    for token in (b.token, ADMIN, "", a.token + "x"):
        rej = balance(house, "alice", token)
        assert isinstance(rej, ClearingReject)
        assert (rej.reason, rej.request_id, rej.ref_type) == (
            "invalid_token", "b", "balance_request"
        )


def test_owner_requests_refused_for_unknown_and_fee_accounts(house: ClearingHouse) -> None:
    for msg in (
        BalanceRequest(account="ghost", token="t"),
        Subscribe(account="ghost", token="t"),
        TradeHistoryRequest(account="ghost", token="t"),
        BalanceRequest(account=FEE_ACCOUNT, token=""),
    ):
        out = house.handle(msg, 0)
        assert isinstance(out.reply, ClearingReject) and out.reply.reason == "unknown_account"
        assert out.touched == set() and out.subscribe is None


def test_admin_requests_need_the_admin_token(house: ClearingHouse) -> None:
    a = open_acct(house, "alice")
    for msg in (
        OpenAccount(admin_token="nope", account="x"),
        Deposit(admin_token=a.token, account="alice", amount=1),
        Withdraw(admin_token="", account="alice", amount=1),
        SetLimits(admin_token="nope", account="alice", limits=Limits()),
        ListAccounts(admin_token="nope"),
        RiskSubscribe(admin_token="nope"),
    ):
        out = house.handle(msg, 0)
        assert isinstance(out.reply, ClearingReject)
        assert out.reply.reason == "not_authorised" and out.reply.ref_type == msg.type
        assert out.subscribe is None
    assert "x" not in house.ledger.accounts
    assert house.ledger.accounts["alice"].cash == 10_000


def test_non_request_message_is_refused(house: ClearingHouse) -> None:
    out = house.handle(Heartbeat(settled_through=3), 0)
    assert isinstance(out.reply, ClearingReject) and out.reply.reason == "unexpected_message"


def test_open_account_naming_and_duplicates(house: ClearingHouse) -> None:
    first = open_acct(house)  # clearing names it
    second = open_acct(house)
    assert first.account != second.account
    assert first.account.startswith("acct-") and second.account.startswith("acct-")
    open_acct(house, "alice")
    out = house.handle(OpenAccount(admin_token=ADMIN, account="alice", request_id="d"), 0)
    assert isinstance(out.reply, ClearingReject) and out.reply.reason == "account_exists"
    out = house.handle(OpenAccount(admin_token=ADMIN, account=FEE_ACCOUNT), 0)
    assert isinstance(out.reply, ClearingReject) and out.reply.reason == "account_exists"


def test_deposit_and_withdraw_replies(house: ClearingHouse) -> None:
    a = open_acct(house, "alice")
    out = house.handle(Deposit(admin_token=ADMIN, account="alice", amount=500, request_id="d"), 1)
    assert isinstance(out.reply, AccountBalance)
    assert (out.reply.cash, out.reply.deposits, out.reply.request_id) == (10_500, 10_500, "d")
    assert out.touched == {"alice"}
    out = house.handle(Withdraw(admin_token=ADMIN, account="alice", amount=10_500), 2)
    assert isinstance(out.reply, AccountBalance) and out.reply.cash == 0
    out = house.handle(Withdraw(admin_token=ADMIN, account="alice", amount=1, request_id="w"), 3)
    assert isinstance(out.reply, ClearingReject)
    assert (out.reply.reason, out.reply.request_id) == ("insufficient_funds", "w")
    assert out.touched == set()
    out = house.handle(Deposit(admin_token=ADMIN, account="ghost", amount=1), 4)
    assert isinstance(out.reply, ClearingReject) and out.reply.reason == "unknown_account"
    assert balance(house, "alice", a.token).cash == 0
    kinds = [r[1] for r in house.store.dump()["changes"] if r[2] == "alice"]
    assert sorted(kinds) == ["deposit", "open", "open", "withdraw"]


def test_set_limits_list_accounts_and_risk_state(house: ClearingHouse) -> None:
    open_acct(house, "alice")
    open_acct(house, "bob")
    limits = Limits(leverage=2.0, short_limit=4, max_position=99)
    out = house.handle(SetLimits(admin_token=ADMIN, account="bob", limits=limits,
                                 request_id="s"), 0)  # fmt: skip
    assert out.reply == Ack(request_id="s") and out.touched == {"bob"}
    house.settle([trade(1, "alice", "bob", 150, 10)])  # marks AGR at 150
    out = house.handle(ListAccounts(admin_token=ADMIN, request_id="l"), 0)
    assert isinstance(out.reply, AccountList)
    names = [b.account for b in out.reply.accounts]
    assert sorted(names) == ["alice", "bob"] and FEE_ACCOUNT not in names
    pnls = [b.pnl for b in out.reply.accounts]
    assert pnls == sorted(pnls, reverse=True)
    assert out.reply.settled_through == 1
    out = house.handle(RiskSubscribe(admin_token=ADMIN), 0)
    assert out.subscribe == "risk"
    state = out.reply
    assert isinstance(state, RiskState) and state.full and state.settled_through == 1
    assert state.fees == FEES and state.multipliers == {SYM: 1}
    by_name = {s.account: s for s in state.accounts}
    assert set(by_name) == {"alice", "bob"}
    assert by_name["bob"].short_limit == 4 and by_name["bob"].max_position == 99
    assert by_name["bob"].credit_limit == 10_000
    assert by_name["bob"].positions == {SYM: 10}
    partial = house.risk_state(["bob", "ghost", FEE_ACCOUNT])
    assert not partial.full and [s.account for s in partial.accounts] == ["bob"]
    assert partial.fees is None


def test_subscribe_returns_balance_and_subscription(house: ClearingHouse) -> None:
    a = open_acct(house, "alice")
    out = house.handle(Subscribe(account="alice", token=a.token, request_id="s"), 0)
    assert out.subscribe == "alice"
    assert isinstance(out.reply, AccountBalance) and out.reply.account == "alice"


def test_trade_history_paging_and_records(house: ClearingHouse) -> None:
    a = open_acct(house, "alice")
    open_acct(house, "bob")
    open_acct(house, "carol")
    house.settle([
        trade(1, "alice", "bob", 1000, 10, "buy"),  # alice taker buy
        trade(2, "bob", "alice", 1000, 25, "buy"),  # alice maker sell
        trade(3, "bob", "carol", 100, 1, "buy"),  # not alice's
        trade(4, "alice", "carol", 10_000, 3, "none"),  # auction buy
        trade(5, "carol", "alice", 1000, 10, "sell"),  # alice taker sell
    ])  # fmt: skip

    def history(after: int, limit: int) -> TradeHistory:
        reply = house.handle(TradeHistoryRequest(
            account="alice", token=a.token, after_trade_id=after, limit=limit, request_id="h",
        ), 0).reply  # fmt: skip
        assert isinstance(reply, TradeHistory) and reply.account == "alice"
        return reply

    full = history(0, 100)
    assert full.next_after is None
    recs = {r.trade_id: r for r in full.trades}
    assert list(recs) == [1, 2, 4, 5]
    assert (recs[1].side, recs[1].liquidity, recs[1].fee) == ("buy", "taker", 5)  # 10_000 x 5bp
    assert (recs[2].side, recs[2].liquidity, recs[2].fee) == ("sell", "maker", -2)  # -2.5
    assert (recs[4].side, recs[4].liquidity, recs[4].fee) == ("buy", "auction", -3)
    assert (recs[5].side, recs[5].liquidity, recs[5].fee) == ("sell", "taker", 5)
    assert (recs[5].price, recs[5].qty, recs[5].ts, recs[5].symbol) == (1000, 10, 1005, SYM)
    page1 = history(0, 2)
    assert [r.trade_id for r in page1.trades] == [1, 2] and page1.next_after == 2
    page2 = history(page1.next_after, 2)
    assert [r.trade_id for r in page2.trades] == [4, 5] and page2.next_after == 5
    page3 = history(page2.next_after, 2)
    assert page3.trades == [] and page3.next_after is None
    short = history(2, 10)
    assert [r.trade_id for r in short.trades] == [4, 5] and short.next_after is None
    # The fees in the history are the ledger's.
    assert sum(r.fee for r in full.trades) == house.ledger.accounts["alice"].fees_paid


def test_settle_skips_duplicates(house: ClearingHouse) -> None:
    open_acct(house, "alice")
    open_acct(house, "bob")
    assert house.settle([trade(1, "alice", "bob", 100, 1), trade(2, "bob", "alice", 101, 1)]) \
        == {"alice", "bob", FEE_ACCOUNT}  # fmt: skip
    before = house.store.dump()
    cash = house.ledger.accounts["alice"].cash
    assert house.settle([trade(1, "alice", "bob", 100, 1), trade(2, "bob", "alice", 101, 1)]) \
        == set()  # fmt: skip
    assert house.store.dump() == before and house.ledger.accounts["alice"].cash == cash
    touched = house.settle([trade(2, "bob", "alice", 101, 1), trade(3, "alice", "carol", 99, 2)])
    assert touched == {"alice", "carol", FEE_ACCOUNT}
    assert house.ledger.settled_through == 3
    assert [r[0] for r in house.store.dump()["trades"]] == [1, 2, 3]
    assert house.settle([]) == set()


@pytest.mark.parametrize(
    "batch_ids",
    [[3], [2, 4], [1, 2, 4], [2, 4, 4]],
    ids=["starts-late", "gap-inside", "dup-then-gap", "dup-then-gap-inside"],
)
def test_settle_gap_raises_and_writes_nothing(house: ClearingHouse, batch_ids: list) -> None:
    open_acct(house, "alice")
    open_acct(house, "bob")
    house.settle([trade(1, "alice", "bob", 100, 1)])
    before_db = house.store.dump()
    before = snapshot(house.ledger)
    with pytest.raises(OutOfOrder) as exc:
        house.settle([trade(i, "alice", "bob", 100 + i, 1) for i in batch_ids])
    assert exc.value.expected >= 2
    assert house.store.dump() == before_db
    assert snapshot(house.ledger) == before
    assert house.ledger.settled_through == 1


def test_settle_orders_a_batch_and_collapses_duplicates(house: ClearingHouse) -> None:
    open_acct(house, "alice")
    open_acct(house, "bob")
    house.settle([trade(1, "alice", "bob", 100, 1)])
    house.settle([trade(i, "alice", "bob", 100 + i, 1) for i in (3, 2, 3, 2)])
    assert house.ledger.settled_through == 3
    assert [r[0] for r in house.store.dump()["trades"]] == [1, 2, 3]
    alice, bob = house.ledger.accounts["alice"], house.ledger.accounts["bob"]
    # both started alike; three one-lot trades (1, 2, 3 once each) moved 3 lots to alice
    assert alice.positions[SYM].qty - bob.positions[SYM].qty == 6
    assert len([r for r in house.store.dump()["changes"] if r[1] == "trade"]) == 6


def test_restart_resumes_identically(tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite"
    house = make_house(path, starting_cash=10_000, starting_positions={SYM: 20})
    a = open_acct(house, "alice")
    b = open_acct(house, "bob")
    house.handle(SetLimits(admin_token=ADMIN, account="bob",
                           limits=Limits(short_limit=50)), 0)  # fmt: skip
    house.handle(Deposit(admin_token=ADMIN, account="alice", amount=777), 0)
    house.settle([
        trade(1, "alice", "bob", 120, 30, "buy"),
        trade(2, "bob", "alice", 90, 7, "sell"),
        trade(3, "alice", "bob", 101, 13, "none"),
    ])  # fmt: skip
    house.handle(Withdraw(admin_token=ADMIN, account="bob", amount=100), 0)
    balances = {n: house.balance(acct) for n, acct in house.ledger.accounts.items()}
    before = snapshot(house.ledger)
    house.store.close()

    again = make_house(path, starting_cash=10_000, starting_positions={SYM: 20})
    assert snapshot(again.ledger) == before
    assert again.ledger.settled_through == 3
    assert {n: again.balance(acct) for n, acct in again.ledger.accounts.items()} == balances
    # Tokens survive (only their hashes were stored), settlement resumes where it stopped.
    assert balance(again, "alice", a.token) == balance(house, "alice", a.token)
    assert isinstance(balance(again, "bob", b.token), AccountBalance)
    assert again.settle([trade(3, "alice", "bob", 101, 13, "none")]) == set()
    assert again.settle([trade(4, "bob", "alice", 100, 1)]) == {"alice", "bob", FEE_ACCOUNT}
    with pytest.raises(OutOfOrder):
        again.settle([trade(6, "bob", "alice", 100, 1)])
