"""Short selling with margin on real processes (exchange + clearing on loopback): the live gate
refuses a short sale beyond the margin with its reason and accepts one within it, and clearing
keeps the limits and reports the margin state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.client import ExchangeClient
from clearing.client import ClearingClient
from clearing.ledger import Limits
from deploy.launch import Market, start_market

WAIT_S = 60.0  # a safety net against a hang, never a synchronisation
MARGIN = Limits(short_limit=1_000, short_margin=0.5, maintenance_margin=0.3)


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = start_market(tmp_path, clearing_env={"AGORA_CLEARING_FEES":
                                             '{"maker_bps": 0, "taker_bps": 4}'})  # fmt: skip
    try:
        yield m
    finally:
        m.stop()


async def test_a_short_sale_beyond_the_margin_is_refused_and_one_within_it_accepted(
    market: Market,
) -> None:
    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    shorty = await admin.open_account("shorty", cash=100_000, limits=MARGIN)  # 1,000.00
    plain = await admin.open_account("plain", cash=100_000, positions={"AGR": 2})  # no shorts
    buyer = await admin.open_account("buyer", cash=10_000_000)
    cs = await ExchangeClient("shorty", shorty.token, gateway=ep["gateway"]).connect()
    cp = await ExchangeClient("plain", plain.token, gateway=ep["gateway"]).connect()
    cb = await ExchangeClient("buyer", buyer.token, gateway=ep["gateway"]).connect()
    watcher = ClearingClient(ep["clearing"], account="shorty", token=shorty.token)
    updates = watcher.watch()
    try:
        assert (await anext(updates)).cash == 100_000  # the balance now, then each change
        # 10 short at 100.00 needs 50,000 of equity; shorty has 100,000 (less the fee)
        within = await cs.create_order("AGR", "sell", "limit", 10, 10_000)
        assert within.exec_type == "new", within
        # 11 more: 210,000 short needs 105,000: beyond the margin
        beyond = await cs.create_order("AGR", "sell", "limit", 11, 10_000)
        assert beyond.exec_type == "rejected"
        assert beyond.reject_reason == "insufficient_margin"
        # raising the resting order past the margin is refused the same way
        raised = await cs.edit_order(within.order_id, "AGR", amount=21)
        assert raised.type == "cancel_reject" and raised.reject_reason == "insufficient_margin"
        # the no-short default is untouched: selling more than you hold
        oversell = await cp.create_order("AGR", "sell", "limit", 3, 10_000)
        assert oversell.reject_reason == "insufficient_position"
        # the short sale fills; clearing settles it and keeps the account's margin state
        fill = await cb.create_order("AGR", "buy", "limit", 10, 10_000)
        assert fill.exec_type == "new", fill  # accepted; its fill follows
        bal = await asyncio.wait_for(anext(updates), WAIT_S)  # pushed when it settled
        assert [p.qty for p in bal.positions] == [-10]
        assert bal.limits.short_margin == 0.5 and bal.limits.maintenance_margin == 0.3
        assert bal.margin_shortfall == 0
    finally:
        await watcher.close()
        for c in (cs, cp, cb):
            await c.close()
        await admin.close()
