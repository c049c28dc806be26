"""Mistakes inside a running program: an agent trading a symbol that does not exist, Ctrl-C.

An order for a symbol the market does not list must come back to the agent as a reject that
says so (`on_reject`, reason "unknown_symbol") with a log line, live and in simulated time;
Ctrl-C in the README's programs ends them without a traceback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from deploy.launch import client_env, start_exchange, start_market
from exchange.errors import describe_validation

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120  # a safety net for a hung process, not a measure of speed

AGENT = '''
from agents import Agent


class Typo(Agent):
    def on_start(self):
        self.ctx.buy("AGX", 1, 10_000)

    def on_reject(self, update):
        print("REJECTED", update.symbol, update.reason, flush=True)
'''

MARKET = """
name = "typo"
[[symbols]]
symbol = "AGR"
[[populations]]
name = "typo"
strategy = "typo_agent.py:Typo"
count = 1
"""


def test_an_unknown_symbol_is_rejected_and_logged_in_simulated_time(tmp_path: Path) -> None:
    (tmp_path / "typo_agent.py").write_text(AGENT)
    (tmp_path / "typo.toml").write_text(MARKET)
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "simulate", "typo.toml", "--until", "1", "--out",
         str(tmp_path / "out"), "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REJECTED AGX unknown_symbol" in done.stdout, done.stdout[-2000:]
    output = done.stdout + done.stderr
    assert "order_for_unknown_symbol" in output and "AGX" in output


def test_an_unknown_symbol_is_rejected_and_logged_live(tmp_path: Path) -> None:
    (tmp_path / "typo_agent.py").write_text(AGENT)
    market = start_market(tmp_path / "var")  # with clearing: pre-trade risk in the way
    try:
        env = client_env(market.endpoints, market.admin_token)
        env["AGORA_SYMBOLS"] = '[{"symbol": "AGR"}]'
        done = subprocess.run(
            [sys.executable, "-m", "agents", "attach", "typo_agent.py:Typo", "--duration", "2",
             "--cash", "100000"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    finally:
        market.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    # the reason is the symbol, not what pre-trade risk makes of an order it cannot price
    assert "REJECTED AGX unknown_symbol" in done.stdout, done.stdout[-2000:]
    warning = next((x for x in done.stderr.splitlines() if "order_for_unknown_symbol" in x), "")
    assert '"symbol": "AGX"' in warning, done.stderr[-2000:]


def test_ctrl_c_ends_the_readme_feed_program_quietly(tmp_path: Path) -> None:
    feed_code = re.search(r"## Subscribe to the price feed\n\n```python\n(.*?)```",
                          (ROOT / "README.md").read_text(), re.S)  # fmt: skip
    assert feed_code, "README lost its feed example"
    (tmp_path / "feed.py").write_text(feed_code.group(1))
    exchange = start_exchange(tmp_path / "ex")
    r = exchange.ready
    env = {**os.environ, "AGORA_GATEWAY": r["gateway"], "AGORA_FEED": r["feed"],
           "AGORA_SNAPSHOT": r["snapshot"]}  # fmt: skip
    program = subprocess.Popen([sys.executable, "feed.py"], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    printed = threading.Event()

    def read() -> None:
        assert program.stdout is not None
        if program.stdout.readline():
            printed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    trade = (
        "import asyncio\nfrom agents.client import ExchangeClient\n"
        "async def main():\n"
        "    async with ExchangeClient('s') as s, ExchangeClient('b') as b:\n"
        "        await s.create_order('AGR', 'sell', 'limit', 1, 10_000)\n"
        "        await b.create_order('AGR', 'buy', 'limit', 1, 10_000)\n"
        "asyncio.run(main())\n"
    )
    try:
        # trade until the program prints one (it subscribes asynchronously: early trades may
        # pass it by); then it is surely inside its loop
        for _ in range(60):
            subprocess.run([sys.executable, "-c", trade], env=env, check=True,
                           timeout=TIMEOUT_S)  # fmt: skip
            if printed.wait(1.0):
                break
        assert printed.is_set(), "the feed program never printed a trade"
        program.send_signal(signal.SIGINT)
        _, err = program.communicate(timeout=TIMEOUT_S)
    finally:
        if program.poll() is None:
            program.kill()
        exchange.stop()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert program.returncode == 0, err[-2000:]


# ------------------------------------------------------------------------------ one-line text
class _Inner(BaseModel):
    model_config = {"extra": "forbid"}
    size: int = Field(1, gt=0)
    admin_token: str = Field("", max_length=3)


class _Outer(BaseModel):
    model_config = {"extra": "forbid"}
    items: list[_Inner] = []
    by_name: dict[str, _Inner] = {}


def test_validation_lines_name_the_path_and_suggest_a_key() -> None:
    try:
        _Outer.model_validate({"items": [{"size": 1}, {"sise": 2}]})
    except ValidationError as exc:
        line = describe_validation(exc)
    assert line == "unknown key 'sise' in items[1]; did you mean 'size'?"
    try:
        _Outer.model_validate({"by_name": {"a": {"size": 0}}, "itmes": []})
    except ValidationError as exc:
        line = describe_validation(exc)
    assert line.startswith("by_name.a.size: Input should be greater than 0 (got 0)"), line
    assert line.endswith("(and 1 more problem)"), line


def test_validation_lines_never_show_a_secret() -> None:
    try:
        _Inner.model_validate({"admin_token": "s3cr3t-value"})
    except ValidationError as exc:
        line = describe_validation(exc)
    assert "admin_token" in line and "s3cr3t" not in line, line
