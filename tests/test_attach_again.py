"""Attaching the same agent again trades again, and refusals an agent ignores are still said.

The exchange keeps an account's client order ids for the whole day. An agent attached a second
time to the same account used to number its orders from 1 again, so every one was refused as a
duplicate and, with no `on_reject` of its own, nothing said so. Each run now tags its ids, and
the runner logs the refusals an agent does not handle.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from deploy.launch import Proc, client_env, start_market

WAIT_S = 120.0  # a safety net for a hung process, not a measure of speed

AGENT = """
from agents import Agent


class Rester(Agent):
    def on_start(self):
        self.ctx.buy("AGR", 1, 9_000)

    def on_order(self, update):
        if update.exec_type == "new":
            self.ctx.log.info("resting", client_order_id=update.client_order_id)


class Hopeless(Agent):
    def on_start(self):
        self.ctx.buy("AGR", 10**9, 9_000)  # far more than its cash
"""


def _attach(tmp_path: Path, env: dict[str, str], cls: str, *args: str) -> Proc:
    return Proc([sys.executable, "-m", "agents", "attach", f"my_agents.py:{cls}", *args], env,
                wait=False, cwd=tmp_path)  # fmt: skip


def test_an_agent_attached_again_to_its_account_trades_again(tmp_path: Path) -> None:
    (tmp_path / "my_agents.py").write_text(AGENT)
    market = start_market(tmp_path / "var")
    try:
        env = client_env(market.endpoints, market.admin_token)
        env["AGORA_SYMBOLS"] = '[{"symbol": "AGR"}]'
        ids = []
        for run in range(2):  # the same name, so the same account, twice
            proc = _attach(tmp_path, env, "Rester", "--name", "alice", "--cash", "1000000")
            try:
                line = proc.wait_log(lambda s: '"resting"' in s or '"order_rejected"' in s,
                                     timeout=WAIT_S)  # fmt: skip
            finally:
                proc.stop(signal.SIGINT, timeout=WAIT_S)
            assert '"resting"' in line, f"run {run + 1}: {line}"
            ids.append(line.split('"client_order_id": "')[1].split('"')[0])
        assert ids[0] != ids[1] and all(i.startswith("alice.") for i in ids)

        proc = _attach(tmp_path, env, "Hopeless", "--name", "bob", "--cash", "1000")
        try:
            line = proc.wait_log(lambda s: '"order_rejected"' in s, timeout=WAIT_S)
        finally:
            proc.stop(signal.SIGINT, timeout=WAIT_S)
        assert '"reason": "insufficient_funds"' in line, line
    finally:
        market.stop()
