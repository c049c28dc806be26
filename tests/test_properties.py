"""Property tests: random order streams over one symbol, checked against invariants and against
the deliberately simple reference matcher (``reference_matcher.py``).

Streams use a few accounts (and None, which disables self-trade prevention), prices in a narrow
range so that orders cross often, and small quantities so that partial fills are common.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import NamedTuple

from engine_helpers import SYM, of, trades
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_matcher import ReferenceMatcher, Trade

from exchange.auction import clearing_price
from exchange.engine import Engine
from exchange.events import view
from exchange.symbols import SymbolSpec

ACCOUNTS = ["a", "b", "c"]
STPS = ["cancel_newest", "cancel_oldest", "cancel_both"]
PRICES = st.integers(98, 102)
_accounts = st.sampled_from([*ACCOUNTS, *ACCOUNTS, None])

_submit = st.tuples(
    st.just("submit"),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["limit", "limit", "limit", "limit", "market"]),
    st.integers(1, 5),  # qty
    PRICES,
    _accounts,
    st.sampled_from(["GTC", "GTC", "DAY", "IOC", "FOK"]),
    st.sampled_from([False] * 6 + [True]),  # post-only
    st.sampled_from(STPS),
)
# pick: which order a cancel/replace targets (see Run._target); foreign: act as another account
# than the owner.
_pick = st.integers(0, 30)
_foreign = st.sampled_from([False] * 7 + [True])
_cancel = st.tuples(st.just("cancel"), _pick, _foreign)
_replace = st.tuples(
    st.just("replace"),
    _pick,
    _foreign,
    st.integers(1, 6),  # new total quantity
    st.sampled_from([None, None, None, 98, 99, 100, 101, 102]),  # None: keep the price
)
_mass_cancel = st.tuples(st.just("mass_cancel"), _accounts)
_end_of_day = st.just(("end_of_day",))
# A weighted mix. (st.one_of drops repeated branches, so each copy is made distinct by .map.)
_KINDS = [_submit] * 12 + [_cancel] * 4 + [_replace] * 5 + [_mass_cancel, _end_of_day]
OPS = st.one_of(*(kind.map(tuple) for kind in _KINDS))
STREAMS = st.lists(OPS, min_size=20, max_size=80)


class Run:
    """Feeds one stream to an engine (and optionally the reference) and tracks every order."""

    def __init__(self, with_reference: bool = False) -> None:
        self.engine = Engine([SymbolSpec(symbol=SYM, reference_price=100)])
        self.ref = ReferenceMatcher() if with_reference else None
        self.known: list[int] = []  # accepted order ids, in order
        self.owner: dict[int, str | None] = {}
        self.side: dict[int, str] = {}
        self.ref_result = None  # the reference's Result for the last request

    def _target(self, pick: int, foreign: bool) -> tuple[str | None, int]:
        """Resolve a pick: mostly an open order, sometimes a finished one, or an unknown id."""
        live = sorted(o.order_id for a in [*ACCOUNTS, None] for o in self.engine.open_orders(a))
        if live and pick < 20:
            order_id = live[pick % len(live)]
        elif self.known and pick < 30:
            order_id = self.known[-1 - pick % len(self.known)]
        else:
            return "a", 10_000 + pick
        owner = self.owner[order_id]
        if foreign:
            owner = next(a for a in ACCOUNTS if a != owner)
        return owner, order_id

    def apply(self, op: tuple) -> tuple[dict, list[tuple]]:
        """Run one operation; returns the request as sent and the engine's events."""
        e, ref, kind = self.engine, self.ref, op[0]
        if kind == "submit":
            _, side, order_type, qty, price, account, tif, post_only, stp = op
            price = price if order_type == "limit" else None
            req = {"side": side, "order_type": order_type, "qty": qty, "price": price,
                   "account": account, "tif": tif, "post_only": post_only, "stp": stp}  # fmt: skip
            events = e.submit(SYM, **req)
            if ref is not None:
                self.ref_result = ref.submit(**req)
            for acc in of(events, "accepted"):
                self.known.append(acc.order_id)
                self.owner[acc.order_id] = account
                self.side[acc.order_id] = side
        elif kind == "cancel":
            account, order_id = self._target(op[1], op[2])
            req = {"account": account, "order_id": order_id}
            events = e.cancel(account, order_id)
            if ref is not None:
                self.ref_result = ref.cancel(account, order_id)
        elif kind == "replace":
            account, order_id = self._target(op[1], op[2])
            req = {"account": account, "order_id": order_id, "qty": op[3], "price": op[4]}
            events = e.replace(account, op[3], op[4], order_id=order_id)
            if ref is not None:
                self.ref_result = ref.replace(account, order_id, op[3], op[4])
        elif kind == "mass_cancel":
            req = {"account": op[1]}
            events = e.mass_cancel(op[1])
            if ref is not None:
                self.ref_result = ref.mass_cancel(op[1])
        else:
            req = {}
            events = e.end_of_day()
            if ref is not None:
                self.ref_result = ref.end_of_day()
        return {"kind": kind, **req}, events


def _taker_id(req: dict, events: list[tuple]) -> int | None:
    if req["kind"] == "submit":
        accepted = of(events, "accepted")
        return accepted[0].order_id if accepted else None
    if req["kind"] == "replace" and of(events, "replaced"):
        return req["order_id"]
    return None


def _l3(engine: Engine) -> dict[tuple[str, int], list[int]]:
    """Every level's queue of order ids, in time priority."""
    bids, asks = engine.depth(SYM)
    return {
        (side, p): [o.order_id for o in engine.level_orders(SYM, side, p)]
        for side, levels in (("buy", bids), ("sell", asks))
        for p, _, _ in levels
    }


# --------------------------------------------------------------------------- invariants
@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_book_is_never_crossed_at_rest(stream):
    run = Run()
    for op in stream:
        run.apply(op)
        bid, ask = run.engine.best_bid(SYM), run.engine.best_ask(SYM)
        assert bid is None or ask is None or bid < ask, (op, bid, ask)


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_quantity_is_conserved_per_order(stream):
    """For every order: filled + cancelled + leaves == its quantity in force (after replaces)."""
    run = Run()
    in_force: dict[int, int] = {}
    filled: Counter[int] = Counter()
    cancelled: Counter[int] = Counter()
    for op in stream:
        _, events = run.apply(op)
        for ev in map(view, events):
            if ev.kind == "accepted":
                in_force[ev.order_id] = ev.qty
            elif ev.kind == "replaced":
                in_force[ev.order_id] = ev.qty
                assert ev.leaves == ev.qty - filled[ev.order_id]
            elif ev.kind == "trade":
                filled[ev.buy_order_id] += ev.qty
                filled[ev.sell_order_id] += ev.qty
                assert ev.buy_leaves == in_force[ev.buy_order_id] - filled[ev.buy_order_id]
                assert ev.sell_leaves == in_force[ev.sell_order_id] - filled[ev.sell_order_id]
            elif ev.kind == "cancelled":
                cancelled[ev.order_id] += ev.cancelled_qty
        for order_id, qty in in_force.items():
            order = run.engine.order(order_id)
            leaves = order.leaves if order is not None else 0
            assert filled[order_id] + cancelled[order_id] + leaves == qty, order_id
            assert leaves >= 0 and filled[order_id] <= qty


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_every_fill_is_at_the_resting_orders_price_within_the_takers_limit(stream):
    run = Run()
    price_of: dict[int, int | None] = {}
    for op in stream:
        req, events = run.apply(op)
        taker = _taker_id(req, events)
        for ev in map(view, events):
            if ev.kind in ("accepted", "replaced"):
                price_of[ev.order_id] = ev.price
            elif ev.kind == "trade":
                buy_taker = ev.aggressor == "buy"
                maker, taker_seen = (
                    (ev.sell_order_id, ev.buy_order_id)
                    if buy_taker
                    else (ev.buy_order_id, ev.sell_order_id)
                )
                assert taker_seen == taker
                assert ev.price == price_of[maker]
                limit = price_of[taker]
                if limit is not None:
                    assert ev.price <= limit if buy_taker else ev.price >= limit


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_earlier_orders_at_a_price_fill_first(stream):
    """Queues are in arrival order, and a sweep consumes each level from its front, best first."""
    run = Run()
    arrival: dict[int, tuple[int, int]] = {}  # (request number, event seq) of its last entry
    price_of: dict[int, int | None] = {}
    qty_of: dict[int, int] = {}
    for n, op in enumerate(stream):
        before = _l3(run.engine)
        req, events = run.apply(op)
        taker = _taker_id(req, events)
        touched = []  # (price, maker id) in the order the sweep met them
        for ev in map(view, events):
            if ev.kind == "accepted":
                arrival[ev.order_id] = (n, ev.seq)
                price_of[ev.order_id], qty_of[ev.order_id] = ev.price, ev.qty
            elif ev.kind == "replaced":
                # The rule, not the engine's word for it: only a quantity decrease at the same
                # price keeps the order's place in the queue.
                keeps = ev.price == price_of[ev.order_id] and ev.qty < qty_of[ev.order_id]
                assert ev.priority_kept == keeps
                if not keeps:
                    arrival[ev.order_id] = (n, ev.seq)
                price_of[ev.order_id], qty_of[ev.order_id] = ev.price, ev.qty
            elif ev.kind == "trade":
                maker = ev.sell_order_id if ev.aggressor == "buy" else ev.buy_order_id
                touched.append((ev.price, maker))
            elif (
                ev.kind == "cancelled"
                and ev.reason == "self_trade_prevention"
                and ev.order_id != taker
            ):
                touched.append((price_of[ev.order_id], ev.order_id))
        for queue in _l3(run.engine).values():
            assert queue == sorted(queue, key=arrival.__getitem__)
        if not touched:
            continue
        opp = "sell" if run.side[taker] == "buy" else "buy"
        groups = [(p, [m for _, m in g]) for p, g in groupby(touched, key=lambda t: t[0])]
        opp_prices = sorted((p for s, p in before if s == opp), reverse=opp == "buy")
        assert [p for p, _ in groups] == opp_prices[: len(groups)]
        for i, (price, makers) in enumerate(groups):
            queue = before[(opp, price)]
            assert makers == queue[: len(makers)]
            if i < len(groups) - 1:
                assert makers == queue  # a level is emptied before the next is touched


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_ioc_never_rests_and_fok_fills_completely_or_not_at_all(stream):
    run = Run()
    for op in stream:
        req, events = run.apply(op)
        if (
            req["kind"] != "submit"
            or req["tif"] not in ("IOC", "FOK")
            or not of(events, "accepted")
        ):
            continue
        taker = of(events, "accepted")[0].order_id
        assert run.engine.order(taker) is None
        assert all(taker not in q for q in _l3(run.engine).values())
        done = sum(t[1] for t in trades(events))
        left = sum(c.cancelled_qty for c in of(events, "cancelled") if c.order_id == taker)
        assert done + left == req["qty"]
        if req["tif"] == "FOK":
            assert done in (0, req["qty"])


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_cancel_is_idempotent(stream):
    run = Run()
    for op in stream:
        req, events = run.apply(op)
        if req["kind"] != "cancel" or not of(events, "cancelled"):
            continue
        state = run.engine.depth(SYM), run.engine.snapshot_seq(SYM), _l3(run.engine)
        again = run.engine.cancel(req["account"], req["order_id"])
        assert [view(e).reason for e in again] == ["unknown_order"]
        assert again[0][0] == "rejected" and again[0][1] == 0
        assert (run.engine.depth(SYM), run.engine.snapshot_seq(SYM), _l3(run.engine)) == state
        assert run.engine.order(req["order_id"]) is None


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_replaying_book_events_rebuilds_the_depth(stream):
    run = Run()
    levels: dict[str, dict[int, tuple[int, int]]] = {"buy": {}, "sell": {}}
    for op in stream:
        _, events = run.apply(op)
        for ev in of(events, "book"):
            if ev.qty == 0:
                assert ev.count == 0
                levels[ev.side].pop(ev.price, None)
            else:
                assert ev.count > 0
                levels[ev.side][ev.price] = (ev.qty, ev.count)
        rebuilt = tuple(
            [(p, *levels[side][p]) for p in sorted(levels[side], reverse=side == "buy")]
            for side in ("buy", "sell")
        )
        assert rebuilt == run.engine.depth(SYM)


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_sequence_numbers_are_contiguous(stream):
    run = Run()
    expected = 0
    for op in stream:
        _, events = run.apply(op)
        for ev in events:
            if ev[0] == "rejected":
                assert ev[1] == 0
            else:
                expected += 1
                assert ev[1] == expected
        assert run.engine.snapshot_seq(SYM) == expected


@settings(max_examples=300, deadline=None)
@given(STREAMS)
def test_engine_matches_the_reference_matcher(stream):
    """Same stream, same trades (price, qty, buy id, sell id, aggressor), rejects and book."""
    run = Run(with_reference=True)
    for op in stream:
        req, events = run.apply(op)
        expected = run.ref_result
        engine_trades = [Trade(*t) for t in trades(events)]
        assert engine_trades == expected.trades, req
        rejects = [view(e).reason for e in events if e[0] == "rejected"]
        assert rejects == ([expected.reject] if expected.reject else []), req
        engine_cancels = sorted(
            (c.order_id, c.cancelled_qty, c.reason) for c in of(events, "cancelled")
        )
        assert engine_cancels == sorted(expected.cancels), req
        assert run.engine.depth(SYM) == run.ref.depth(), req


# --------------------------------------------------------------------------- auctions
_auction_orders = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.none(), PRICES, PRICES, PRICES),  # None: a market order
        st.integers(1, 5),
    ),
    min_size=1,
    max_size=25,
)


class _Collected(NamedTuple):
    order_id: int
    side: str
    price: int | None  # None: a market order
    qty: int


def _allocate(orders: list[_Collected], price: int, volume: int) -> list[tuple[int, int, int]]:
    """Reference allocation: market orders first, then better price, then earlier arrival."""
    queues = {}
    for side, sign in (("buy", -1), ("sell", 1)):
        eligible = [
            o
            for o in orders
            if o.side == side and (o.price is None or sign * o.price <= sign * price)
        ]
        eligible.sort(key=lambda o: (o.price is not None, sign * (o.price or 0), o.order_id))
        queues[side] = [[o.order_id, o.qty] for o in eligible]
    buys, sells, fills = queues["buy"], queues["sell"], []
    while volume:
        fill = min(buys[0][1], sells[0][1], volume)
        fills.append((buys[0][0], sells[0][0], fill))
        volume -= fill
        for queue in (buys, sells):
            queue[0][1] -= fill
            if not queue[0][1]:
                queue.pop(0)
    return fills


@settings(max_examples=200, deadline=None)
@given(_auction_orders, st.integers(95, 105))
def test_uncross_allocates_the_clearing_volume_by_priority(orders, reference):
    engine = Engine([SymbolSpec(symbol=SYM, reference_price=reference, opening_auction=True)])
    collected = []
    for side, price, qty in orders:
        order_type = "market" if price is None else "limit"
        accepted = view(engine.submit(SYM, side, order_type, qty, price, account="a")[0])
        collected.append(_Collected(accepted.order_id, side, price, qty))
    limits = {s: [(o.price, o.qty) for o in collected if o.side == s and o.price is not None]
              for s in ("buy", "sell")}  # fmt: skip
    market = {s: sum(o.qty for o in collected if o.side == s and o.price is None)
              for s in ("buy", "sell")}  # fmt: skip
    result = clearing_price(limits["buy"], limits["sell"], market["buy"], market["sell"], reference)

    events = engine.uncross(SYM)
    got = [(t.buy_order_id, t.sell_order_id, t.qty) for t in of(events, "trade")]
    if result is None:
        assert got == []
    else:
        assert {t.price for t in of(events, "trade")} == {result.price}
        assert got == _allocate(collected, result.price, result.volume)
    bid, ask = engine.best_bid(SYM), engine.best_ask(SYM)
    assert bid is None or ask is None or bid < ask  # nothing crossed is left after an uncross
    assert engine.phase(SYM) == "continuous"
