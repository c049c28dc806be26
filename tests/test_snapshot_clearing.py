"""A market with its clearing house restarts from a snapshot, and pre-trade risk holds across it.

The exchange's snapshot carries the risk gate's own state (open orders' cash reservations,
fills clearing has not settled yet), so a restart replays only the journal's tail with the
clearing house configured too, and an account cannot spend the cash its resting orders already
count on.
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.client import ExchangeClient
from clearing.client import ClearingClient
from deploy.launch import start_market

SYM = "AGR"
PRICE = 10_000
WAIT_S = 60.0  # a safety net against a hang, never a synchronisation


async def test_restart_from_a_snapshot_keeps_the_gate_reservations(tmp_path: Path) -> None:
    env = {"AGORA_EXCHANGE_SNAPSHOT_EVERY_RECORDS": "6", "AGORA_EXCHANGE_TIMER_S": "0.01"}
    market = start_market(tmp_path, exchange_env=env)
    ep = market.endpoints
    exchange = market.exchange
    try:
        admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
        probe = await admin.open_account("probe", cash=0)
        mult = (await ClearingClient(ep["clearing"], account="probe",
                                     token=probe.token).balance()).multipliers or {}  # fmt: skip
        one_lot = PRICE * mult.get(SYM, 1)
        # cash for ten resting one-lot bids, and not one more (no fees by default)
        alice = await admin.open_account("alice", cash=10 * one_lot)
        a = await ExchangeClient("alice", alice.token, gateway=ep["gateway"]).connect()
        for i in range(10):
            report = await a.create_order(SYM, "buy", "limit", 1, PRICE - i)
            assert report.exec_type == "new", report
        refused = await a.create_order(SYM, "buy", "limit", 1, PRICE)
        assert refused.exec_type == "rejected" and refused.reject_reason == "insufficient_funds"
        exchange.wait_log(lambda line: '"snapshot_written"' in line, timeout=WAIT_S)
        await a.close()
        exchange.stop()

        exchange = market.restart_exchange(**env)
        replayed = json.loads(exchange.wait_log(lambda s: '"journal_replayed"' in s))
        assert replayed["from_snapshot"] is True, replayed
        a = await ExchangeClient("alice", alice.token, gateway=ep["gateway"]).connect()
        # the ten bids still hold all of alice's cash: an eleventh is refused again ...
        again = await a.create_order(SYM, "buy", "limit", 1, PRICE)
        assert again.exec_type == "rejected" and again.reject_reason == "insufficient_funds"
        # ... until one of them is cancelled
        open_orders = await a.fetch_open_orders(SYM)
        assert len(open_orders) == 10
        await a.cancel_order(open_orders[0].order_id, SYM)
        after = await a.create_order(SYM, "buy", "limit", 1, PRICE - 20)
        assert after.exec_type == "new", after
        await a.close()
    finally:
        exchange.stop()
        market.clearing.stop()
