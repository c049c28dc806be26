"""From the engine's events to the wire: execution reports, market data and the drop copy.

The engine speaks in compact event tuples and keeps only what matching needs. Clients speak
FIX-shaped messages: an execution report carries the order's cumulative quantity, its average
price, its status. This module is the pure translation between the two (no sockets, no clock),
so the exchange process, the simulated-time kernel and the tests all produce identical reports.

It keeps, per open order, the few facts the engine does not (client order id, cumulative
notional for the average price) and forgets an order as soon as it is done.

The other direction, a decoded request to an engine call, is ``execute``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exchange.constants import CancelReason
from exchange.engine import Engine
from exchange.events import ACCEPTED, BOOK, CANCELLED, REJECTED, REPLACED, STATUS, TRADE
from exchange.protocol import (
    BookDelta,
    CancelOrder,
    CancelReject,
    ExecutionReport,
    MarketStatus,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    Trade,
    TradeCapture,
)

__all__ = ["Outbox", "Reporter", "execute"]

Request = NewOrder | CancelOrder | ReplaceOrder | MassCancel


def execute(engine: Engine, msg: Request, ts: int) -> list[tuple]:
    """Run one decoded, validated request through the engine; returns the engine's events."""
    if isinstance(msg, NewOrder):
        return engine.submit(
            msg.symbol, msg.side, msg.order_type, msg.qty, msg.price, msg.account,
            msg.client_order_id, msg.time_in_force, ts, msg.post_only, msg.stp,
        )  # fmt: skip
    if isinstance(msg, CancelOrder):
        return engine.cancel(msg.account, msg.order_id, msg.orig_client_order_id, ts)
    if isinstance(msg, ReplaceOrder):
        return engine.replace(
            msg.account, msg.qty, msg.price, msg.order_id, msg.orig_client_order_id, ts
        )
    if isinstance(msg, MassCancel):
        return engine.mass_cancel(msg.account, msg.symbol, ts)
    raise TypeError(f"not an order-entry request: {type(msg).__name__}")


@dataclass
class Outbox:
    """Where each produced message goes."""

    private: list[tuple[Any, ExecutionReport | CancelReject]] = field(default_factory=list)
    public: list[Trade | BookDelta | MarketStatus] = field(default_factory=list)
    drop_copy: list[TradeCapture] = field(default_factory=list)  # to the clearing house


@dataclass
class _OrderState:
    order_id: int
    client_order_id: str
    account: Any
    symbol: str
    side: str
    order_type: str
    price: int | None
    qty: int
    cum: int = 0
    notional: int = 0

    def report(self, **fields: Any) -> ExecutionReport:
        leaves = fields.pop("leaves_qty")
        return ExecutionReport(
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            account=self.account,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            price=self.price,
            qty=self.cum + leaves,
            cum_qty=self.cum,
            leaves_qty=leaves,
            avg_price=self.notional / self.cum if self.cum else 0.0,
            **fields,
        )


class Reporter:
    """Turns engine events into execution reports, public market data and the drop copy."""

    def __init__(self) -> None:
        self._orders: dict[int, _OrderState] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def translate(self, events: list[tuple], request: Request | None = None) -> Outbox:
        """Messages for `events`; `request` (the message that caused them) names rejects."""
        box = Outbox()
        ts = 0  # book changes carry no time of their own: they share their cause's
        for ev in events:
            kind = ev[0]
            if kind != BOOK:
                ts = ev[-1]
            if kind == BOOK:
                _, seq, symbol, side, price, qty, count = ev
                box.public.append(BookDelta(
                    symbol=symbol, seq=seq, side=side, price=price, qty=qty, count=count, ts=ts,
                ))  # fmt: skip
            elif kind == TRADE:
                self._trade(ev, box)
            elif kind == ACCEPTED:
                _, seq, symbol, oid, clid, account, side, otype, price, qty, _tif, ts = ev
                state = _OrderState(
                    oid, str(clid) if clid is not None else str(oid), _account(account), symbol,
                    side, otype, price, qty,
                )  # fmt: skip
                self._orders[oid] = state
                box.private.append((account, state.report(
                    exec_type="new", order_status="new", leaves_qty=qty, seq=seq, ts=ts,
                )))  # fmt: skip
            elif kind == CANCELLED:
                _, seq, _symbol, oid, account, cancelled, reason, ts = ev
                state = self._orders.pop(oid)
                expired = reason == CancelReason.EXPIRED
                box.private.append((account, state.report(
                    exec_type="expired" if expired else "canceled",
                    order_status="expired" if expired else "canceled",
                    leaves_qty=0, cancelled_qty=cancelled, text=reason, seq=seq, ts=ts,
                )))  # fmt: skip
            elif kind == REPLACED:
                _, seq, _symbol, oid, account, price, qty, leaves, _kept, ts = ev
                state = self._orders[oid]
                state.price, state.qty = price, qty
                box.private.append((account, state.report(
                    exec_type="replaced",
                    order_status="partially_filled" if state.cum else "new",
                    leaves_qty=leaves, seq=seq, ts=ts,
                )))  # fmt: skip
            elif kind == STATUS:
                _, seq, symbol, phase, reason, low, high, until, ts = ev
                box.public.append(MarketStatus(
                    symbol=symbol, seq=seq, phase=phase, reason=reason, band_low=low,
                    band_high=high, halt_until=until, ts=ts,
                ))  # fmt: skip
            elif kind == REJECTED:
                self._reject(ev, request, box)
        return box

    def _trade(self, ev: tuple, box: Outbox) -> None:
        (_, seq, symbol, trade_id, price, qty, aggressor, buy_oid, buy_acct, buy_leaves,
         sell_oid, sell_acct, sell_leaves, ts) = ev  # fmt: skip
        box.public.append(Trade(
            symbol=symbol, trade_id=trade_id, seq=seq, price=price, qty=qty,
            aggressor_side=aggressor, ts=ts,
        ))  # fmt: skip
        box.drop_copy.append(TradeCapture(
            trade_id=trade_id, seq=seq, symbol=symbol, price=price, qty=qty,
            buy_account=_account(buy_acct), sell_account=_account(sell_acct),
            buy_order_id=buy_oid, sell_order_id=sell_oid, aggressor_side=aggressor, ts=ts,
        ))  # fmt: skip
        for side, oid, account, leaves in (
            ("buy", buy_oid, buy_acct, buy_leaves),
            ("sell", sell_oid, sell_acct, sell_leaves),
        ):
            state = self._orders[oid]
            state.cum += qty
            state.notional += qty * price
            if aggressor == "none":
                liquidity = "auction"
            else:
                liquidity = "taker" if aggressor == side else "maker"
            box.private.append((account, state.report(
                exec_type="trade", order_status="filled" if leaves == 0 else "partially_filled",
                leaves_qty=leaves, last_qty=qty, last_price=price, trade_id=trade_id,
                liquidity=liquidity, seq=seq, ts=ts,
            )))  # fmt: skip
            if leaves == 0:
                # Done: unless a later event in this batch still names it (never for a fill
                # to zero), forget it now so the table holds open orders only.
                del self._orders[oid]

    def _reject(self, ev: tuple, request: Request | None, box: Outbox) -> None:
        _, _seq, symbol, oid, clid, account, kind, reason, ts = ev
        if kind == "new":
            req = request if isinstance(request, NewOrder) else None
            box.private.append((account, ExecutionReport(
                order_id=0, client_order_id=str(clid) if clid is not None else "?",
                account=_account(account), symbol=symbol,
                side=req.side if req else "buy", order_type=req.order_type if req else "limit",
                price=req.price if req else None, exec_type="rejected",
                order_status="rejected", qty=0, cum_qty=0, leaves_qty=0,
                reject_reason=reason, text=reason, seq=0, ts=ts,
            )))  # fmt: skip
            return
        box.private.append((account, CancelReject(
            client_order_id=getattr(request, "client_order_id", None) or "?",
            orig_client_order_id=str(clid) if clid is not None else None,
            order_id=oid or None, symbol=symbol or getattr(request, "symbol", None),
            account=_account(account),
            response_to="mass_cancel" if kind == "mass_cancel" else kind,
            reject_reason=reason, text=reason, ts=ts,
        )))  # fmt: skip


def _account(account: Any) -> str:
    """Wire accounts are non-empty strings; the pure engine also allows None (anonymous)."""
    return "anonymous" if account is None or account == "" else str(account)
