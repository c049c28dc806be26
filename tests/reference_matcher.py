"""A deliberately simple reference matcher for continuous trading, used as a test oracle.

It shares no code with ``exchange/``: resting orders live in one plain list, and every incoming
order sorts its candidates by (price priority, arrival sequence) and fills them one by one. It is
O(n^2) and meant to be read, not run fast. The differential property test feeds the same random
stream to it and to the engine and compares the trades.

Rules modelled (continuous trading only, one symbol):

* limit and market orders; GTC and DAY remainders rest, IOC/FOK/market remainders are cancelled;
  FOK first checks that it can fill completely, else it is cancelled untouched;
* every fill is at the resting (maker) order's price; the aggressor is the incoming order's side;
* post-only: rejected if it would take liquidity; a market order cannot be post-only;
* self-trade prevention when both orders have the same (non-None) account: cancel_newest stops the
  incoming order (its remainder is cancelled), cancel_oldest cancels the resting order and goes
  on, cancel_both does both;
* cancel, mass cancel, end of day (expires DAY orders);
* replace: a quantity decrease at the same price keeps time priority; a price change or a
  quantity increase re-enters the order at the back, and a marketable reprice takes liquidity.

Order ids are assigned 1, 2, 3... to accepted orders only, exactly like the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUY, SELL = "buy", "sell"
NEWEST, OLDEST, BOTH = "cancel_newest", "cancel_oldest", "cancel_both"
STP = "self_trade_prevention"


@dataclass(eq=False)  # identity comparison: `order in list` must not match a lookalike
class RefOrder:
    oid: int
    account: str | None
    side: str
    price: int | None  # None: market order
    qty: int  # quantity in force (cum + leaves)
    tif: str
    post_only: bool
    stp: str
    leaves: int = 0
    cum: int = 0
    seq: int = 0  # arrival sequence: time priority at its price


@dataclass(frozen=True)
class Trade:
    price: int
    qty: int
    buy_id: int
    sell_id: int
    aggressor: str


@dataclass
class Result:
    """What one request did. `order_id` is the new id for an accepted order, else 0."""

    order_id: int = 0
    reject: str | None = None
    trades: list[Trade] = field(default_factory=list)
    cancels: list[tuple[int, int, str]] = field(default_factory=list)  # (id, qty, reason)


class ReferenceMatcher:
    def __init__(self) -> None:
        self.resting: list[RefOrder] = []  # every order on the book, in no particular order
        self.next_id = 1
        self.clock = 0  # arrival sequence counter

    # -- queries ------------------------------------------------------------------------------
    def find(self, oid: int) -> RefOrder | None:
        return next((o for o in self.resting if o.oid == oid), None)

    def best(self, side: str) -> int | None:
        prices = [o.price for o in self.resting if o.side == side]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def depth(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(bids, asks) as (price, qty, count), best first, like Engine.depth."""
        out = []
        for side in (BUY, SELL):
            prices = sorted({o.price for o in self.resting if o.side == side}, reverse=side == BUY)
            levels = [[o for o in self.resting if o.side == side and o.price == p] for p in prices]
            out.append([(lv[0].price, sum(o.leaves for o in lv), len(lv)) for lv in levels])
        return out[0], out[1]

    # -- requests -----------------------------------------------------------------------------
    def submit(
        self,
        side,
        order_type,
        qty,
        price=None,
        account=None,
        tif="GTC",
        post_only=False,
        stp=NEWEST,
    ) -> Result:
        if order_type == "market":
            price = None
        if post_only and price is None:
            return Result(reject="post_only_market_order")
        opp = self.best(SELL if side == BUY else BUY)
        if post_only and opp is not None and self._crosses(side, price, opp):
            return Result(reject="post_only_would_take")
        order = RefOrder(self.next_id, account, side, price, qty, tif, post_only, stp, leaves=qty)
        self.next_id += 1
        res = Result(order_id=order.oid)
        if tif == "FOK" and not self._fillable(order):
            self._cancel(order, "fok_not_fillable", res)
            return res
        self._finish(order, self._match(order, res), res)
        return res

    def cancel(self, account, oid) -> Result:
        order = self.find(oid)
        if order is None or order.account != account:
            return Result(reject="unknown_order")  # another's order: as if unknown
        res = Result()
        self._cancel(order, "user", res)
        return res

    def mass_cancel(self, account) -> Result:
        res = Result()
        for order in sorted(self.resting, key=lambda o: o.oid):
            if order.account == account:
                self._cancel(order, "mass_cancel", res)
        return res

    def end_of_day(self) -> Result:
        res = Result()
        for order in sorted(self.resting, key=lambda o: o.oid):
            if order.tif == "DAY":
                self._cancel(order, "expired", res)
        return res

    def replace(self, account, oid, qty, price=None) -> Result:
        order = self.find(oid)
        if order is None or order.account != account:
            return Result(reject="unknown_order")  # another's order: as if unknown
        new_price = order.price if price is None else price
        if qty <= order.cum:
            return Result(reject="replace_qty_not_above_filled")
        if new_price == order.price and qty == order.qty:
            return Result(reject="replace_changes_nothing")
        opp = self.best(SELL if order.side == BUY else BUY)
        if (
            order.post_only
            and new_price != order.price
            and opp is not None
            and self._crosses(order.side, new_price, opp)
        ):
            return Result(reject="post_only_would_take")
        res = Result()
        if new_price == order.price and qty < order.qty:  # keeps its place in the queue
            order.leaves -= order.qty - qty
            order.qty = qty
            return res
        self.resting.remove(order)  # loses priority: re-enters as if new
        order.price, order.qty, order.leaves = new_price, qty, qty - order.cum
        self._finish(order, self._match(order, res), res)
        return res

    # -- matching -----------------------------------------------------------------------------
    @staticmethod
    def _crosses(side: str, limit: int | None, maker_price: int) -> bool:
        if limit is None:
            return True
        return maker_price <= limit if side == BUY else maker_price >= limit

    def _candidates(self, taker: RefOrder) -> list[RefOrder]:
        """Resting orders the taker may meet, best price first, then oldest first."""
        opp = [
            o
            for o in self.resting
            if o.side != taker.side and self._crosses(taker.side, taker.price, o.price)
        ]
        return sorted(opp, key=lambda o: (o.price if taker.side == BUY else -o.price, o.seq))

    @staticmethod
    def _same_owner(taker: RefOrder, maker: RefOrder) -> bool:
        return taker.account is not None and taker.account == maker.account

    def _fillable(self, taker: RefOrder) -> bool:
        need = taker.leaves
        for maker in self._candidates(taker):
            if self._same_owner(taker, maker):
                if taker.stp != OLDEST:
                    return False
                continue
            need -= maker.leaves
            if need <= 0:
                return True
        return False

    def _match(self, taker: RefOrder, res: Result) -> str | None:
        """Fill `taker` against the book; returns a cancel reason if STP stopped it."""
        for maker in self._candidates(taker):
            if taker.leaves == 0:
                break
            if self._same_owner(taker, maker):
                if taker.stp == NEWEST:
                    return STP
                self._cancel(maker, STP, res)
                if taker.stp == BOTH:
                    return STP
                continue
            fill = min(taker.leaves, maker.leaves)
            for o in (taker, maker):
                o.leaves -= fill
                o.cum += fill
            buy, sell = (taker, maker) if taker.side == BUY else (maker, taker)
            res.trades.append(Trade(maker.price, fill, buy.oid, sell.oid, taker.side))
            if maker.leaves == 0:
                self.resting.remove(maker)
        return None

    def _finish(self, order: RefOrder, stopped: str | None, res: Result) -> None:
        """Rest or cancel what is left of an incoming (or repriced) order."""
        if order.leaves == 0:
            return
        if stopped is not None:
            self._cancel(order, stopped, res)
        elif order.price is None:
            self._cancel(order, "market_no_liquidity", res)
        elif order.tif == "IOC":
            self._cancel(order, "ioc_remainder", res)
        elif order.tif == "FOK":
            self._cancel(order, "fok_not_fillable", res)
        else:
            self.clock += 1
            order.seq = self.clock
            self.resting.append(order)

    def _cancel(self, order: RefOrder, reason: str, res: Result) -> None:
        res.cancels.append((order.oid, order.leaves, reason))
        order.leaves = 0
        if order in self.resting:
            self.resting.remove(order)
