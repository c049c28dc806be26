"""A runner survives its exchange being killed (-9) and restarted: the agents log on again,
keep trading, and still agree with clearing at the end."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from test_clearing_process import exchange_trade_count, settled_through

from deploy.launch import Proc, client_env, start_market
from exchange.engine import EPOCH_BITS


async def test_agents_reconnect_after_an_exchange_restart(tmp_path: Path) -> None:
    market = start_market(tmp_path)
    ep = market.endpoints
    env = client_env(ep, market.admin_token)
    runner = Proc([sys.executable, "-m", "agents", "run", "zi", "--count", "10",
                   "--cash", "10000000", "--position", "AGR=1000",
                   "--param", "mean_interval_ns=50000000", "--json-logs"], env)  # fmt: skip
    exchange = market.exchange
    try:
        await settled_through(ep["clearing"], market.link_secret, 20)  # trading
        exchange.kill()  # kill -9: no goodbye
        exchange = market.restart_exchange()
        before = await exchange_trade_count(ep["snapshot"], market.admin_token)
        runner.wait_log(lambda line: '"session_restored"' in line)
        # trades made after the restart (a new epoch: ids from 1 << 32) settle too
        assert before < 1 << EPOCH_BITS
        await settled_through(ep["clearing"], market.link_secret, (1 << EPOCH_BITS) + 20)
        runner.stop(signal.SIGINT, timeout=60)
        line = next(x for x in runner.output.splitlines() if x.startswith("AGORA_RESULT "))
        result = json.loads(line[len("AGORA_RESULT ") :])
    finally:
        if runner.returncode is None:
            runner.kill()
        exchange.stop()
        market.clearing.stop()
    assert runner.returncode == 0
    assert result["errors"] == 0 and result["mismatches"] == []  # after recovering lost reports
    assert result["max_trade_id"] >= (1 << EPOCH_BITS) + 20
