"""A reconnect inherits nothing, so the SDK and the clearing link log on again by themselves.

Real processes on 127.0.0.1 with free ports. Waits poll for the condition with a generous
deadline; nothing sleeps to let something happen.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agents.client import ExchangeClient, SessionClosed
from clearing.client import ClearingClient
from deploy.launch import free_endpoint, start_clearing, start_exchange, start_market

WAIT_S = 30.0


async def _eventually_accepted(client: ExchangeClient, clid_prefix: str) -> str:
    """Place an order until the exchange takes one (the client is logging on again)."""
    deadline = time.monotonic() + WAIT_S
    n = 0
    while True:
        n += 1
        try:
            report = await asyncio.wait_for(
                client.create_order(
                    "AGR", "buy", "limit", 1, 9_500, params={"client_order_id": f"{clid_prefix}{n}"}
                ),
                timeout=5,
            )
            if report.exec_type == "new":
                return report.client_order_id
        except (SessionClosed, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the client never logged on again")
        await asyncio.sleep(0.05)  # poll again: the exchange is coming back


async def test_sdk_logs_on_again_after_the_exchange_restarts(tmp_path: Path) -> None:
    ports = {k: free_endpoint() for k in ("gateway", "feed", "snapshot", "dropcopy")}
    ex = start_exchange(tmp_path / "ex", ports)
    client = await ExchangeClient("alice", gateway=ex.ready["gateway"]).connect()
    try:
        assert await _eventually_accepted(client, "a")
        ex.stop()  # the connection drops; the new one must log on again
        ex = start_exchange(tmp_path / "ex", ports)
        assert await _eventually_accepted(client, "b")
    finally:
        await client.close()
        ex.stop()


async def test_clearing_link_subscribes_again_after_clearing_restarts(tmp_path: Path) -> None:
    m = start_market(tmp_path)
    try:
        ep = m.endpoints
        m.clearing.kill()  # kill -9: the link's connection drops without a goodbye
        m.clearing = start_clearing(
            tmp_path / "clearing", m.exchange.ready, api=ep["clearing"],
            AGORA_CLEARING_ADMIN_TOKEN=m.admin_token, AGORA_CLEARING_LINK_SECRET=m.link_secret,
        )  # fmt: skip
        admin = ClearingClient(ep["clearing"], admin_token=m.admin_token)
        try:
            token = (await admin.open_account("late", cash=1_000_000)).token
        finally:
            await admin.close()
        # The exchange learns of the new account only through a re-subscribed risk link.
        client = ExchangeClient("late", token, gateway=ep["gateway"])
        await client.connect(timeout=WAIT_S, retry=frozenset(
            {"clearing_unavailable", "invalid_credentials"}
        ))  # fmt: skip
        try:
            assert await _eventually_accepted(client, "l")
        finally:
            await client.close()
    finally:
        m.stop()
