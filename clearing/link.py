"""The clearing house's presence inside the exchange process: tokens and pre-trade risk.

The exchange knows nothing of clearing (ARCHITECTURE.md: `exchange/` imports nothing of ours);
it loads this class by name when ``AGORA_EXCHANGE_CLEARING`` is set, and calls it through the
small plug-in surface `exchange.server.RiskPlugin` describes: `authenticate` at logon, `check`
before a new order or replace reaches the engine, `on_events` after, and `run` as a task.

`run` keeps a DEALER to clearing's ROUTER: it subscribes to the risk state with the link
secret (its own secret, not the admin token), applies every `RiskState` to the pure
`RiskGate`, and subscribes again, on a fresh connection, as soon as its connection drops
(clearing binds the subscription to the connection, so a reconnect inherits nothing) or when
clearing has been silent for three heartbeats. Its routing id is random, so nobody can present
it. Until the first state arrives every logon is refused with ``clearing_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

import structlog
import zmq
import zmq.asyncio

from clearing.protocol import (
    ClearingProtocolError,
    HoldReply,
    HoldRequest,
    RiskState,
    RiskSubscribe,
    decode,
    encode,
)
from clearing.risk import RiskGate

__all__ = ["ClearingLink", "worst_price_from"]

log = structlog.get_logger("clearing_link")


def worst_price_from(engine: Any) -> Callable[[str, str, int], int | None]:
    """The bound on a market order's prices: the last level a sweep of the book reaches now.

    Outside continuous trading (an auction collects market orders until the uncross) the
    static band's edge bounds the uncross price instead. The best level (the heap's top,
    always live) answers almost every check; only a sweep past it sorts the side it walks.
    """

    def worst(symbol: str, side: str, qty: int) -> int | None:
        try:
            market = engine.market(symbol)
        except KeyError:
            return None
        if market.phase != "continuous":
            return market.band_high if side == "buy" else market.band_low
        book_side = market.book.asks if side == "buy" else market.book.bids
        levels = book_side.levels
        if not levels:
            return market.band_high if side == "buy" else 1  # nothing to trade against
        best = book_side.heap[0] * book_side.sign
        left = qty - levels[best].qty
        if left <= 0:
            return best
        price = best
        for price in sorted(levels, reverse=book_side.is_bid)[1:]:
            left -= levels[price].qty
            if left <= 0:
                return price
        return price  # the sweep empties the book; the rest is cancelled

    return worst


class ClearingLink:
    def __init__(self, endpoint: str, link_secret: str, engine: Any, heartbeat_s: float = 1.0):
        self.endpoint = endpoint
        self.link_secret = link_secret
        self.engine = engine
        self.gate = RiskGate(worst_price=worst_price_from(engine))
        self.heartbeat_s = heartbeat_s
        self.states = 0
        # set by the exchange: end the sessions of these accounts that used an old token
        self.revalidate: Callable[[list[str]], None] | None = None
        self._seq = 0

    # ------------------------------------------------------------------ the plug-in surface
    def authenticate(self, account: str, token: str) -> str | None:
        return self.gate.authenticate(account, token)

    def check(self, msg: Any, account: str) -> str | None:
        if msg.type == "new_order":
            return self.gate.check_new(
                account, msg.client_order_id, msg.symbol, msg.side, msg.qty, msg.price
            )
        if msg.type == "replace_order":
            oid = msg.order_id
            if oid is None:
                oid = self.engine.order_id_for(account, msg.orig_client_order_id)
            return self.gate.check_replace(account, oid, msg.qty, msg.price)
        return None

    def on_events(self, events: list[tuple]) -> None:
        self.gate.on_events(events)

    def snapshot_state(self) -> dict[str, Any]:
        """The gate's event-derived state, saved in the exchange's snapshots (so a restart
        replays only the journal after the snapshot, clearing configured or not)."""
        return self.gate.snapshot_state()

    def restore_state(self, state: dict[str, Any]) -> None:
        self.gate.restore_state(state)

    async def run(self, ctx: zmq.asyncio.Context, kill: Callable[[list[str]], None]) -> None:
        """Follow clearing's risk state forever; `kill(accounts)` cancels unfunded orders."""
        silent_after = 3 * self.heartbeat_s
        while True:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTING_ID, b"link-" + secrets.token_bytes(16))
            # A dropped connection ends the subscription on clearing's side: notice at once.
            dropped = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            poller = zmq.asyncio.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(dropped, zmq.POLLIN)
            sock.connect(self.endpoint)
            try:
                # (RiskSubscribe's token field carries the link secret)
                await sock.send(encode(RiskSubscribe(admin_token=self.link_secret, gate=True)))
                while True:
                    ready = dict(await poller.poll(silent_after * 1000))
                    if not ready:
                        break
                    if dropped in ready:
                        log.warning("clearing_link_dropped", endpoint=self.endpoint)
                        break
                    try:
                        msg = decode(await sock.recv())
                    except ClearingProtocolError as exc:
                        log.warning("clearing_malformed", reason=exc.reason)
                        continue
                    if isinstance(msg, RiskState):
                        if not msg.full and msg.seq != self._seq + 1:
                            # a lost update: the settled point may have moved past balances
                            # we never saw; start again from a full state
                            log.warning("risk_state_gap", expected=self._seq + 1, got=msg.seq)
                            break
                        self._seq = msg.seq
                        self._apply(msg, kill)
                    elif isinstance(msg, HoldRequest):
                        reason = self.gate.hold(msg.hold_id, msg.account, msg.amount)
                        await sock.send(encode(HoldReply(
                            hold_id=msg.hold_id, ok=reason is None, reason=reason,
                        )))  # fmt: skip
                    elif msg.type == "clearing_reject":
                        log.error("clearing_refused", reason=msg.reason, text=msg.text)
                        break
                log.warning("clearing_silent", endpoint=self.endpoint)
            finally:
                sock.disable_monitor()
                dropped.close(linger=0)
                sock.close(linger=0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.sleep(self.heartbeat_s)  # back off before subscribing again

    def _apply(self, msg: RiskState, kill: Callable[[list[str]], None]) -> None:
        gate = self.gate
        if msg.full and (msg.fees != gate.fees or msg.multipliers != gate.multipliers):
            gate.set_terms(msg.fees, msg.multipliers)
        if msg.full and msg.holds is not None:
            # holds clearing no longer waits on (it restarted, or paid out and the release
            # was lost) stop holding: the balances in this state are the truth
            gate.release([h for h in gate.holds if h not in set(msg.holds)])
        unfunded = gate.update(
            msg.settled_through, [a.model_dump() for a in msg.accounts], msg.released,
            msg.marks,
        )
        self.states += 1
        if gate.token_changed:
            changed, gate.token_changed = gate.token_changed, []
            if self.revalidate is not None:
                self.revalidate(changed)
        if unfunded:
            log.warning("risk_kill_switch", accounts=unfunded)
            kill(unfunded)
