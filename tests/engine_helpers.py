"""Small helpers shared by the matching-core tests (book, engine, auction, breakers, properties)."""

from __future__ import annotations

from typing import Any

from exchange.engine import Engine
from exchange.events import view
from exchange.symbols import SymbolSpec

SYM = "X"


def make(**spec: Any) -> Engine:
    """An engine with one symbol "X" (reference price 10_000 unless given)."""
    return Engine([SymbolSpec(symbol=SYM, **spec)])


def of(events: list[tuple], kind: str) -> list[Any]:
    """The named views of the events of one kind."""
    return [view(e) for e in events if e[0] == kind]


def kinds(events: list[tuple]) -> list[str]:
    return [e[0] for e in events]


def trades(events: list[tuple]) -> list[tuple[int, int, int, int, str]]:
    """(price, qty, buy order id, sell order id, aggressor) of every trade, in order."""
    return [
        (t.price, t.qty, t.buy_order_id, t.sell_order_id, t.aggressor) for t in of(events, "trade")
    ]


def cancels(events: list[tuple]) -> list[tuple[int, int, str]]:
    """(order id, cancelled qty, reason) of every cancel, in order."""
    return [(c.order_id, c.cancelled_qty, c.reason) for c in of(events, "cancelled")]


def reject_reason(events: list[tuple]) -> str | None:
    """The reason of the single REJECTED event, or None if the request was not rejected."""
    rejects = of(events, "rejected")
    if not rejects:
        return None
    assert events == [tuple(rejects[0])], "a reject must be the only event"
    assert rejects[0].seq == 0
    return rejects[0].reason


def oid(events: list[tuple]) -> int:
    """The id of the order an ACCEPTED event announced (fails if it was rejected)."""
    accepted = of(events, "accepted")
    assert accepted, f"expected the order to be accepted, got {events}"
    return accepted[0].order_id


def buy(engine: Engine, qty: int, price: int | None = None, account: str = "b", **kw: Any) -> list:
    order_type = "market" if price is None else "limit"
    return engine.submit(SYM, "buy", order_type, qty, price, account=account, **kw)


def sell(engine: Engine, qty: int, price: int | None = None, account: str = "s", **kw: Any) -> list:
    order_type = "market" if price is None else "limit"
    return engine.submit(SYM, "sell", order_type, qty, price, account=account, **kw)


def queue(engine: Engine, side: str, price: int) -> list[int]:
    """Order ids resting at one level, in time priority (L3)."""
    return [o.order_id for o in engine.level_orders(SYM, side, price)]
