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

from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import msgpack

from exchange.constants import CancelReason
from exchange.engine import Engine
from exchange.events import ACCEPTED, BOOK, CANCELLED, REJECTED, REPLACED, STATUS, TRADE
from exchange.protocol import (
    MESSAGE_TYPES,
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

__all__ = ["Outbox", "RawOutbox", "Reporter", "execute", "reject_raw"]

Request = NewOrder | CancelOrder | ReplaceOrder | MassCancel


def execute(engine: Engine, msg: Request, ts: int, account: Any = None) -> list[tuple]:
    """Run one decoded, validated request through the engine; returns the engine's events.

    `account` overrides the message's own: a gateway acts for the session's account, never
    for whatever account a client writes into its request.
    """
    acct = msg.account if account is None else account
    if isinstance(msg, NewOrder):
        return engine.submit(
            msg.symbol, msg.side, msg.order_type, msg.qty, msg.price, acct,
            msg.client_order_id, msg.time_in_force, ts, msg.post_only, msg.stp,
        )  # fmt: skip
    if isinstance(msg, CancelOrder):
        return engine.cancel(acct, msg.order_id, msg.orig_client_order_id, ts, msg.symbol)
    if isinstance(msg, ReplaceOrder):
        return engine.replace(
            acct, msg.qty, msg.price, msg.order_id, msg.orig_client_order_id, ts, msg.symbol
        )
    if isinstance(msg, MassCancel):
        return engine.mass_cancel(acct, msg.symbol, ts)
    raise TypeError(f"not an order-entry request: {type(msg).__name__}")


@dataclass
class Outbox:
    """Where each produced message goes (models: `Reporter.translate`)."""

    private: list[tuple[Any, ExecutionReport | CancelReject]] = field(default_factory=list)
    public: list[Trade | BookDelta | MarketStatus] = field(default_factory=list)
    drop_copy: list[TradeCapture] = field(default_factory=list)  # to the clearing house


class RawOutbox:
    """The same, as plain wire dicts (`Reporter.translate_raw`): what the exchange process sends.

    Each dict is exactly what ``encode(model)`` would pack, minus fields left at their defaults,
    and validates strictly as its model (`translate` does that for every message, so every test
    that uses `translate` checks the dicts the process sends).

    A plain slotted class, not a dataclass: one is built per engine call, and the dataclass's
    default factories cost as much as translating an acknowledgement.

    `wire` holds the private messages packed (msgpack, in the same order) when the reporter
    keeps a resend window, and is empty otherwise: a numbered report is packed once, kept as
    those bytes for resends, and sent as those bytes.
    """

    __slots__ = ("drop_copy", "private", "public", "wire")

    def __init__(self) -> None:
        self.private: list[tuple[Any, dict[str, Any]]] = []
        self.public: list[dict[str, Any]] = []
        self.drop_copy: list[dict[str, Any]] = []
        self.wire: list[bytes] = []

    def __repr__(self) -> str:
        return f"RawOutbox(private={self.private}, public={self.public}, drop={self.drop_copy})"


class _OrderState:
    """What the reports need about an open order that the engine does not keep."""

    __slots__ = (
        "account", "client_order_id", "cum", "notional", "order_id", "order_type", "price",
        "qty", "side", "symbol",
    )  # fmt: skip

    def __init__(
        self, order_id: int, client_order_id: str, account: str, symbol: str, side: str,
        order_type: str, price: int | None, qty: int,
    ) -> None:  # fmt: skip
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.price = price
        self.qty = qty
        self.cum = 0
        self.notional = 0

    def report(
        self, seq: int, ts: int, exec_type: str, order_status: str, leaves: int
    ) -> dict[str, Any]:
        # One literal (the `info` fields, then the report's own): a third cheaper than
        # building `info` and updating it, and this runs once or twice per order. Fills and
        # cancels carry fields of their own: `fill_report`, `cancel_report`.
        cum = self.cum
        return {
            "order_id": self.order_id, "client_order_id": self.client_order_id,
            "symbol": self.symbol, "side": self.side, "order_type": self.order_type,
            "price": self.price, "qty": cum + leaves, "cum_qty": cum, "leaves_qty": leaves,
            "avg_price": self.notional / cum if cum else 0.0, "type": "execution_report",
            "v": 1, "ts": ts, "account": self.account, "exec_type": exec_type,
            "order_status": order_status, "seq": seq,
        }  # fmt: skip

    def fill_report(
        self, seq: int, ts: int, leaves: int, qty: int, price: int, trade_id: int, liquidity: str
    ) -> dict[str, Any]:
        """`report(..., "trade", ...)` with the fill's fields, as one literal (the hot path)."""
        cum = self.cum
        return {
            "order_id": self.order_id, "client_order_id": self.client_order_id,
            "symbol": self.symbol, "side": self.side, "order_type": self.order_type,
            "price": self.price, "qty": cum + leaves, "cum_qty": cum, "leaves_qty": leaves,
            "avg_price": self.notional / cum if cum else 0.0, "type": "execution_report",
            "v": 1, "ts": ts, "account": self.account, "exec_type": "trade",
            "order_status": "filled" if leaves == 0 else "partially_filled", "seq": seq,
            "last_qty": qty, "last_price": price, "trade_id": trade_id, "liquidity": liquidity,
        }  # fmt: skip

    def cancel_report(
        self, seq: int, ts: int, kind: str, cancelled: int, reason: str
    ) -> dict[str, Any]:
        """`report(..., kind, kind, 0, cancelled_qty=..., text=...)` as one literal."""
        cum = self.cum
        return {
            "order_id": self.order_id, "client_order_id": self.client_order_id,
            "symbol": self.symbol, "side": self.side, "order_type": self.order_type,
            "price": self.price, "qty": cum, "cum_qty": cum, "leaves_qty": 0,
            "avg_price": self.notional / cum if cum else 0.0, "type": "execution_report",
            "v": 1, "ts": ts, "account": self.account, "exec_type": kind,
            "order_status": kind, "seq": seq, "cancelled_qty": cancelled, "text": reason,
        }  # fmt: skip

    def info(self, leaves: int) -> dict[str, Any]:
        """An `OrderInfo` dict (for open-order queries)."""
        cum = self.cum
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
            "price": self.price,
            "qty": cum + leaves,
            "cum_qty": cum,
            "leaves_qty": leaves,
            "avg_price": self.notional / cum if cum else 0.0,
        }


class Reporter:
    """Turns engine events into execution reports, public market data and the drop copy.

    The exchange process also asks it to remember, so that nothing a client missed is lost:

    * `resend_window` > 0: every execution report it makes is stamped with its account's
      ``account_seq`` (1, 2, 3 ... per account, the same numbers again when the journal is
      replayed), and the last `resend_window` reports of each account are kept for a
      `ResendRequest` (`resend`), packed: the bytes that were sent (`RawOutbox.wire`);
    * `tape_window` > 0: the last `tape_window` public trades of each symbol are kept, with the
      stream sequence number the feed stamped on them, for a `TapeRequest` (`tape`).

    Both are state of this object (rebuilt by a journal replay), off by default (the simulator).
    """

    def __init__(self, resend_window: int = 0, tape_window: int = 0) -> None:
        self._orders: dict[int, _OrderState] = {}
        self.resend_window = resend_window
        self.tape_window = tape_window
        self.account_seqs: dict[str, int] = {}  # account -> last account_seq issued
        self._sent: dict[str, deque[bytes]] = {}  # account -> its last reports, packed
        self._tape: dict[str, deque[dict[str, Any]]] = {}  # symbol -> its last public trades

    def __len__(self) -> int:
        return len(self._orders)

    def order(self, order_id: int) -> _OrderState | None:
        return self._orders.get(order_id)

    def translate(self, events: list[tuple], request: Request | None = None) -> Outbox:
        """Messages for `events` as validated models; `request` (their cause) names rejects."""
        raw = self.translate_raw(events, request)
        return Outbox(
            private=[(account, _model(msg)) for account, msg in raw.private],
            public=[_model(msg) for msg in raw.public],
            drop_copy=[_model(msg) for msg in raw.drop_copy],
        )

    def translate_raw(
        self, events: list[tuple], request: Request | None = None, market_data: bool = True
    ) -> RawOutbox:
        """Messages for `events` as wire dicts (no validation: the hot path of the process).

        `market_data=False` leaves out the public trade and drop-copy messages of trades (the
        simulator records trades from the events themselves and needs the reports only).
        """
        box = RawOutbox()
        private = box.private.append
        public = box.public.append
        ts = 0  # book changes carry no time of their own: they share their cause's
        for ev in events:
            kind = ev[0]
            if kind == BOOK:
                _, seq, symbol, side, price, qty, count = ev
                public({
                    "type": "book_delta", "v": 1, "ts": ts, "symbol": symbol, "seq": seq,
                    "side": side, "price": price, "qty": qty, "count": count,
                })  # fmt: skip
                continue
            ts = ev[-1]
            if kind == TRADE:
                self._trade(ev, box, market_data)
            elif kind == ACCEPTED:
                private((ev[5], self.accepted(ev)))
            elif kind == CANCELLED:
                private((ev[4], self.cancelled(ev)))
            elif kind == REPLACED:
                _, seq, _symbol, oid, account, price, qty, leaves, _kept, ts = ev
                state = self._orders[oid]
                state.price, state.qty = price, qty
                status = "partially_filled" if state.cum else "new"
                private((account, state.report(seq, ts, "replaced", status, leaves)))
            elif kind == STATUS:
                _, seq, symbol, phase, reason, low, high, until, ts = ev
                public({
                    "type": "market_status", "v": 1, "ts": ts, "symbol": symbol, "seq": seq,
                    "phase": phase, "reason": reason, "band_low": low, "band_high": high,
                    "halt_until": until,
                })  # fmt: skip
            elif kind == REJECTED:
                self._reject(ev, request, box)
        if self.resend_window and box.private:
            self._sequence(box.private, box.wire)
        return box

    # ------------------------------------------------------------------ remembering
    def _sequence(self, private: list[tuple[Any, dict[str, Any]]], wire: list[bytes]) -> None:
        """Stamp each execution report with its account's next sequence number, pack every
        private message into `wire`, and keep the numbered ones' bytes.

        Rejected orders are left unnumbered (``account_seq`` 0), like the gateway's own rejects:
        a command the engine only refused is not journalled, so a replay could not number its
        report again, and every number after it would then differ from what clients were told.
        A reject answers a request its client is waiting for; it is not state to recover.

        Kept as bytes, not as the dicts: a window of dicts (with their ints, floats and
        strings, ~0.7 kB a report) is tens of MB over a few hundred accounts, and every report
        evicted from it is a cache miss per object; that (not the collector: it costs as much
        with the collector off) was most of the window's cost. The bytes are one object each,
        ~0.3 kB, and the process sends them as they are, so the packing is no extra work.
        """
        seqs, sent, pack = self.account_seqs, self._sent, _pack
        add = wire.append
        for _owner, report in private:
            if report["type"] == "execution_report" and report["exec_type"] != "rejected":
                account = report["account"]
                report["account_seq"] = seqs[account] = seqs.get(account, 0) + 1
                packed = pack(report)
                try:
                    sent[account].append(packed)
                except KeyError:
                    sent[account] = deque((packed,), maxlen=self.resend_window)
                add(packed)
            else:
                add(pack(report))

    def _keep_print(self, symbol: str, msg: dict[str, Any]) -> None:
        # Kept by reference: the feed stamps the print's stream `seq` on this very dict.
        try:
            self._tape[symbol].append(msg)
        except KeyError:
            self._tape[symbol] = deque((msg,), maxlen=self.tape_window)

    def resend_wire(
        self, account: str, from_seq: int, max_count: int
    ) -> tuple[list[bytes], int, int]:
        """(reports with ``account_seq >= from_seq``, at most `max_count`, packed as they were
        sent; the account's last sequence number; the oldest one still kept, 0 if none).

        An account's numbers have no holes, so the kept reports are ``first .. last`` in order.
        """
        last = self.account_seqs.get(account, 0)
        kept = self._sent.get(account)
        if not kept:
            return [], last, 0
        first = last - len(kept) + 1
        start = max(from_seq - first, 0)
        return list(islice(kept, start, start + max_count)), last, first

    def resend(
        self, account: str, from_seq: int, max_count: int
    ) -> tuple[list[dict[str, Any]], int, int]:
        """`resend_wire`, with the reports as wire dicts."""
        kept, last, first = self.resend_wire(account, from_seq, max_count)
        return [msgpack.unpackb(b) for b in kept], last, first

    def tape(
        self, symbol: str, from_seq: int, max_count: int
    ) -> tuple[list[dict[str, Any]], int, int]:
        """(public trades of `symbol` with stream ``seq >= from_seq``, at most `max_count`; the
        stream's last seq known here; the oldest seq still kept, 0 if none)."""
        kept = self._tape.get(symbol)
        if not kept:
            return [], 0, 0
        first, last = kept[0]["seq"], kept[-1]["seq"]
        start = max(from_seq - first, 0)
        out = [kept[i] for i in range(start, min(len(kept), start + max_count))]
        return out, last, first

    # One event each, for a caller that knows the event's kind (the simulator's commonest
    # path: an order accepted to rest, or cancelled); `translate_raw` uses them too.
    def accepted(self, ev: tuple) -> dict[str, Any]:
        """The "new" report of an ACCEPTED event (its owner is ``ev[5]``); opens its state."""
        _, seq, symbol, oid, clid, account, side, otype, price, qty, _tif, ts = ev
        state = _OrderState(
            oid, str(clid) if clid is not None else str(oid), _account(account), symbol,
            side, otype, price, qty,
        )  # fmt: skip
        self._orders[oid] = state
        return state.report(seq, ts, "new", "new", qty)

    def cancelled(self, ev: tuple) -> dict[str, Any]:
        """The report of a CANCELLED event (its owner is ``ev[4]``); closes its state."""
        _, seq, _symbol, oid, _acct, cancelled, reason, ts = ev
        state = self._orders.pop(oid)
        kind = "expired" if reason == CancelReason.EXPIRED else "canceled"
        return state.cancel_report(seq, ts, kind, cancelled, reason)

    def _trade(self, ev: tuple, box: RawOutbox, market_data: bool = True) -> None:
        (_, seq, symbol, trade_id, price, qty, aggressor, buy_oid, buy_acct, buy_leaves,
         sell_oid, sell_acct, sell_leaves, ts) = ev  # fmt: skip
        if market_data:
            tape = {
                "type": "trade", "v": 1, "ts": ts, "symbol": symbol, "trade_id": trade_id,
                "seq": seq, "price": price, "qty": qty, "aggressor_side": aggressor,
            }  # fmt: skip
            box.public.append(tape)
            if self.tape_window:
                self._keep_print(symbol, tape)
            box.drop_copy.append({
                "type": "trade_capture", "v": 1, "ts": ts, "trade_id": trade_id, "seq": seq,
                "symbol": symbol, "price": price, "qty": qty, "buy_account": _account(buy_acct),
                "sell_account": _account(sell_acct), "buy_order_id": buy_oid,
                "sell_order_id": sell_oid, "aggressor_side": aggressor,
            })  # fmt: skip
        orders = self._orders
        private = box.private.append
        notional = qty * price
        if aggressor == "none":
            buy_liq = sell_liq = "auction"
        elif aggressor == "buy":
            buy_liq, sell_liq = "taker", "maker"
        else:
            buy_liq, sell_liq = "maker", "taker"
        # Done orders (a fill to zero is an order's last event) are forgotten at once, so the
        # table holds open orders only.
        state = orders[buy_oid] if buy_leaves else orders.pop(buy_oid)
        state.cum += qty
        state.notional += notional
        private((buy_acct, state.fill_report(seq, ts, buy_leaves, qty, price, trade_id, buy_liq)))
        state = orders[sell_oid] if sell_leaves else orders.pop(sell_oid)
        state.cum += qty
        state.notional += notional
        private(
            (sell_acct, state.fill_report(seq, ts, sell_leaves, qty, price, trade_id, sell_liq))
        )

    def _reject(self, ev: tuple, request: Request | None, box: RawOutbox) -> None:
        _, _seq, symbol, oid, clid, account, kind, reason, ts = ev
        box.private.append(
            (account, reject_raw(request, reason, account, ts, symbol, oid, clid, kind))
        )


def reject_raw(
    request: Request | None,
    reason: str,
    account: Any,
    ts: int,
    symbol: str | None = None,
    order_id: int = 0,
    orig_clid: Any = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """The reject that answers `request` (engine rejects, and the gateway's own: rate limits).

    A refused new order gets an execution report with exec_type "rejected"; a refused cancel,
    replace or mass cancel gets a CancelReject naming the request.
    """
    if kind is None:
        kind = _REQUEST_KINDS.get(type(request), "new")
    if kind == "new":
        req = request if isinstance(request, NewOrder) else None
        clid = orig_clid if orig_clid is not None else getattr(req, "client_order_id", None)
        return {
            "type": "execution_report", "v": 1, "ts": ts, "order_id": 0,
            "client_order_id": str(clid) if clid is not None else "?",
            "account": _account(account), "symbol": symbol or (req.symbol if req else "?"),
            "side": req.side if req else "buy",
            "order_type": req.order_type if req else "limit",
            "price": req.price if req else None, "exec_type": "rejected",
            "order_status": "rejected", "qty": 0, "cum_qty": 0, "leaves_qty": 0,
            "reject_reason": reason, "text": reason, "seq": 0,
        }  # fmt: skip
    orig = getattr(request, "orig_client_order_id", None)
    return {
        "type": "cancel_reject", "v": 1, "ts": ts,
        "client_order_id": getattr(request, "client_order_id", None) or "?",
        "orig_client_order_id": orig if orig is not None else (
            str(orig_clid) if orig_clid is not None else None
        ),
        "order_id": order_id or getattr(request, "order_id", None),
        "symbol": symbol or getattr(request, "symbol", None), "account": _account(account),
        "response_to": kind, "reject_reason": reason, "text": _reject_text(reason, request, symbol),
    }  # fmt: skip


def _reject_text(reason: str, request: Request | None, symbol: str | None) -> str:
    if reason == "symbol_mismatch" and request is not None and symbol:
        return f"symbol_mismatch: the order is in {symbol}, not {getattr(request, 'symbol', '?')}"
    return reason


_REQUEST_KINDS: dict[type, str] = {
    NewOrder: "new", CancelOrder: "cancel", ReplaceOrder: "replace", MassCancel: "mass_cancel",
}  # fmt: skip


# As the exchange process packs everything it sends (`ExchangeServer._packer`).
_pack = msgpack.Packer(use_bin_type=True).pack


def _model(msg: dict[str, Any]) -> Any:
    return MESSAGE_TYPES[msg["type"]].model_validate(msg)


def _account(account: Any) -> str:
    """Wire accounts are non-empty strings; the pure engine also allows None (anonymous)."""
    return "anonymous" if account is None or account == "" else str(account)
