"""Random multi-account order flow through engine + pre-trade gate + ledger (issue 4's proof).

The harness plays both processes in one: orders pass `RiskGate.check_*` and then the engine;
the engine's events feed the gate; trades queue up for clearing, which settles them in random
batches at random moments and sends the gate its new settled state, as the real link does.
Whatever the flow, the ledger must end within every account's rules, positions must sum to the
initial allocation per symbol, and cash (with the fee account) must be conserved exactly.
"""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.fees import FeeSchedule
from clearing.ledger import FEE_ACCOUNT, Ledger, LedgerError, Limits, multiplier
from clearing.link import worst_price_from
from clearing.risk import RiskGate
from exchange.engine import Engine
from exchange.symbols import SymbolSpec

SPECS = [
    SymbolSpec(symbol="AAA", reference_price=100, band_bps=5_000),
    # a 0.05 tick on 10-unit lots: 50 cash units (cents) per tick x lot
    SymbolSpec(symbol="BBB", tick_size=Decimal("0.05"), lot_size=Decimal("10"),
               reference_price=40, band_bps=5_000),
]  # fmt: skip
MULT = {s.symbol: multiplier(s.tick_size, s.lot_size, Decimal("0.01")) for s in SPECS}
ACCOUNTS = ["a", "b", "c", "d"]

account_setup = st.fixed_dictionaries({
    "cash": st.integers(0, 60_000),
    "AAA": st.integers(0, 40),
    "BBB": st.integers(0, 40),
    "leverage": st.sampled_from([1.0, 1.0, 2.0]),
    "short_limit": st.sampled_from([0, 0, 5]),
    "max_position": st.sampled_from([None, None, 60]),
    "max_order_notional": st.sampled_from([None, None, 20_000]),
})  # fmt: skip

op = st.one_of(
    st.tuples(
        st.just("new"), st.sampled_from(ACCOUNTS), st.sampled_from(["AAA", "BBB"]),
        st.sampled_from(["buy", "sell"]), st.integers(1, 30),
        st.one_of(st.none(), st.integers(-3, 3)), st.sampled_from(["GTC", "IOC", "GTC"]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("replace"), st.integers(0, 50), st.integers(1, 40), st.integers(-5, 5)),
    st.tuples(st.just("settle"), st.integers(0, 20)),
    st.tuples(st.just("withdraw"), st.sampled_from(ACCOUNTS), st.integers(1, 30_000)),
)  # fmt: skip


def _state(ledger: Ledger, name: str) -> dict:
    acct = ledger.accounts[name]
    lim = acct.limits
    return {
        "account": name, "token_hash": "", "cash": acct.cash,
        "positions": {s: p.qty for s, p in acct.positions.items()},
        "credit_limit": acct.credit_limit, "short_limit": lim.short_limit,
        "max_position": lim.max_position, "max_order_notional": lim.max_order_notional,
        "leverage": lim.leverage,
    }  # fmt: skip


def _random_ops(rnd: random.Random, n: int) -> list[tuple]:
    """A long, busy flow (hypothesis's own lists favour short, repetitive ones)."""
    ops: list[tuple] = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.7:
            ops.append((
                "new", rnd.choice(ACCOUNTS), rnd.choice(["AAA", "BBB"]),
                rnd.choice(["buy", "sell"]), rnd.randint(1, 30),
                None if rnd.random() < 0.15 else rnd.randint(-3, 3),
                "IOC" if rnd.random() < 0.2 else "GTC",
            ))  # fmt: skip
        elif r < 0.8:
            ops.append(("cancel", rnd.randint(0, 500)))
        elif r < 0.9:
            ops.append(("replace", rnd.randint(0, 500), rnd.randint(1, 40), rnd.randint(-3, 3)))
        elif r < 0.95:
            ops.append(("withdraw", rnd.choice(ACCOUNTS), rnd.randint(1, 30_000)))
        else:
            ops.append(("settle", rnd.randint(0, 30)))
    return ops


SETUPS = st.lists(account_setup, min_size=4, max_size=4)
FEES = st.sampled_from([(0.0, 0.0), (-1.0, 5.0), (2.0, 3.0)])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=SETUPS, fees=FEES, ops=st.lists(op, min_size=30, max_size=150))
def test_gate_keeps_the_ledger_within_every_accounts_rules(setup, fees, ops) -> None:
    check_flow(setup, fees, ops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=SETUPS, fees=FEES, seed=st.integers(0, 2**32))
def test_long_random_flows_stay_within_the_rules(setup, fees, seed) -> None:
    trades = check_flow(setup, fees, _random_ops(random.Random(seed), 400))
    assert trades >= 0


def check_flow(setup: list[dict], fees: tuple[float, float], ops: list[tuple]) -> int:
    schedule = FeeSchedule(maker_bps=fees[0], taker_bps=fees[1])
    engine = Engine(SPECS)
    gate = RiskGate(schedule, MULT, worst_price_from(engine))
    ledger = Ledger(schedule, MULT)
    initial_pos = {"AAA": 0, "BBB": 0}
    for name, cfg in zip(ACCOUNTS, setup, strict=True):
        limits = Limits(
            leverage=cfg["leverage"], short_limit=cfg["short_limit"],
            max_position=cfg["max_position"], max_order_notional=cfg["max_order_notional"],
        )  # fmt: skip
        ledger.open_account(
            name, cfg["cash"], {"AAA": cfg["AAA"], "BBB": cfg["BBB"]}, limits,
            cost_prices={s.symbol: s.reference_price for s in SPECS},
        )  # fmt: skip
        initial_pos["AAA"] += cfg["AAA"]
        initial_pos["BBB"] += cfg["BBB"]
    initial_cash = sum(a.cash for a in ledger.accounts.values())
    gate.update(0, [_state(ledger, n) for n in ACCOUNTS])

    unsettled: list[dict] = []
    withdrawn = 0
    order_ids: list[tuple[str, int]] = []
    ts = 0
    accepted = refused = 0

    def run(events: list[tuple]) -> None:
        gate.on_events(events)
        for ev in events:
            if ev[0] == "trade":
                (_k, _s, symbol, tid, price, qty, aggr, _bo, buyer, _bl, _so, seller, _sl,
                 t) = ev  # fmt: skip
                unsettled.append({
                    "trade_id": tid, "symbol": symbol, "price": price, "qty": qty,
                    "aggressor_side": aggr, "buy_account": buyer, "sell_account": seller, "ts": t,
                })  # fmt: skip
            elif ev[0] == "accepted":
                order_ids.append((ev[5], ev[3]))

    def settle(n: int) -> None:
        touched = set()
        for trade in unsettled[:n]:
            ledger.settle(trade)
            touched |= {trade["buy_account"], trade["sell_account"]}
        del unsettled[:n]
        unfunded = gate.update(ledger.settled_through, [_state(ledger, a) for a in touched])
        assert unfunded == []  # nothing but trades changed: open orders stay funded

    for o in ops:
        ts += 1
        if o[0] == "new":
            _, acct, symbol, side, qty, offset, tif = o
            ref = engine.market(symbol).reference
            price = None if offset is None else ref + offset
            reason = gate.check_new(acct, f"c{ts}", symbol, side, qty, price)
            if reason is not None:
                refused += 1
                continue
            accepted += 1
            otype = "limit" if price is not None else "market"
            run(engine.submit(symbol, side, otype, qty, price, acct, f"c{ts}", tif, ts))
        elif o[0] == "cancel" and order_ids:
            acct, oid = order_ids[o[1] % len(order_ids)]
            run(engine.cancel(acct, oid, None, ts))
        elif o[0] == "replace" and order_ids:
            acct, oid = order_ids[o[1] % len(order_ids)]
            order = engine.order(oid)
            if order is None or order.price is None:
                continue
            price = order.price + o[3]
            if gate.check_replace(acct, oid, o[2], price) is None:
                run(engine.replace(acct, o[2], price, oid, None, ts))
        elif o[0] == "settle":
            settle(o[1])
        elif o[0] == "withdraw":
            # clearing asks the gate to hold the cash, pays out, then tells the gate (released)
            _, acct, amount = o
            hold_id = f"w{ts}"
            if gate.hold(hold_id, acct, amount) is None:
                try:
                    ledger.withdraw(acct, amount)
                    withdrawn += amount
                except LedgerError:
                    pass  # clearing refuses on its own numbers too; the hold is released
                unfunded = gate.update(ledger.settled_through, [_state(ledger, acct)], [hold_id])
                assert unfunded == []
    settle(len(unsettled))

    assert ledger.violations == []
    for name in ACCOUNTS:
        acct = ledger.accounts[name]
        assert acct.cash >= -acct.credit_limit
        for pos in acct.positions.values():
            assert pos.qty >= -acct.limits.short_limit
            if acct.limits.max_position is not None:
                # an initial allocation may already exceed it; trading must not add to that
                start = setup[ACCOUNTS.index(name)]
                assert pos.qty <= max(acct.limits.max_position, start["AAA"], start["BBB"])
    for symbol in ("AAA", "BBB"):
        total = sum(a.positions[symbol].qty for a in ledger.accounts.values()
                    if symbol in a.positions)  # fmt: skip
        assert total == initial_pos[symbol]
    assert sum(a.cash for a in ledger.accounts.values()) == initial_cash - withdrawn
    fees_total = sum(a.fees_paid for n, a in ledger.accounts.items() if n != FEE_ACCOUNT)
    assert ledger.accounts[FEE_ACCOUNT].cash == fees_total
    # the gate and the ledger agree on every settled balance once nothing is pending
    for name in ACCOUNTS:
        g = gate.accounts[name]
        assert g.pending_cash == 0 and all(v == 0 for v in g.pending_pos.values())
        assert g.cash == ledger.accounts[name].cash
    return ledger.settled_through
