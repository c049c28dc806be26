"""The risk gate's snapshot: saved and restored, it equals the gate that saw every event.

The exchange snapshots its state (books, ids, reports) so that a restart replays only the
journal after the snapshot; with the clearing house configured, the pre-trade gate's own state
(open orders' reservations, fills clearing has not settled) must come back the same way.
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.fees import FeeSchedule
from clearing.risk import RiskGate
from exchange.engine import Engine
from exchange.symbols import SymbolSpec

SYM = "AGR"
ACCOUNTS = ["a", "b", "c"]

command = st.tuples(
    st.sampled_from(["buy", "sell", "cancel"]),
    st.sampled_from(ACCOUNTS),
    st.integers(1, 20),  # qty
    st.integers(95, 105),  # price
    st.integers(0, 1_000),  # which order to cancel
)


def _gate() -> RiskGate:
    return RiskGate(fees=FeeSchedule(maker_bps=2.0, taker_bps=5.0), multipliers={SYM: 100})


def _derived(gate: RiskGate) -> dict[str, Any]:
    """Everything the gate derives from events (not what clearing sends it)."""
    return {
        "orders": {oid: list(o) for oid, o in gate.orders.items()},
        "pending": [tuple(p) for p in gate.pending],
        "accounts": {
            name: (a.pending_cash, a.pending_debits, {k: v for k, v in a.pending_pos.items() if v},
                   a.reserved_cash,
                   dict(a.open_buy), dict(a.open_sell))
            for name, a in sorted(gate.accounts.items())
            if a.reserved_cash or a.pending_cash or a.open_buy or a.open_sell
            or any(a.pending_pos.values())
        },
    }  # fmt: skip


@settings(max_examples=150)
@given(commands=st.lists(command, max_size=80), cut=st.integers(0, 80),
       settled=st.integers(0, 40))  # fmt: skip
def test_restored_gate_equals_the_gate_that_saw_every_event(
    commands: list[tuple], cut: int, settled: int
) -> None:
    engine = Engine([SymbolSpec(symbol=SYM)], ts=0)
    whole, restored = _gate(), None
    orders: list[int] = []
    for i, (what, account, qty, price, pick) in enumerate(commands):
        if i == cut:
            whole.update(settled, [])  # clearing settled the first `settled` trades
            saved = msgpack.unpackb(msgpack.packb(whole.snapshot_state()), strict_map_key=False)
            restored = _gate()
            restored.restore_state(saved)
            assert _derived(restored) == _derived(whole)
        ts = i + 1
        if what == "cancel":
            if not orders:
                continue
            events = engine.cancel(account, orders[pick % len(orders)], None, ts)
        else:
            events = engine.submit(SYM, what, "limit", qty, price, account, f"o{i}", "GTC", ts)
            orders.extend(ev[3] for ev in events if ev[0] == "accepted")
        whole.on_events(events)
        if restored is not None:
            restored.on_events(events)
    if restored is not None:
        assert _derived(restored) == _derived(whole)
