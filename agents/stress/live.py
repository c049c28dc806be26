"""Stress scenarios on the live market: the admin's request, and the two processes that act.

The way in is the fundamental-value process's control socket (a ROUTER, its
``AGORA_FUNDAMENTAL_CONTROL_BIND``): the news source is where a market-wide event belongs.
A request is one msgpack map::

    {"type": "scenario", "admin_token": "...", "name": "flash-crash", "params": {"at_s": 5},
     "host": "fv"}                 # or "parts": [{"kind": "fundamental_shock", ...}, ...]

It is checked before anything happens: without the right admin token (or when the process
has none configured) it is refused with a reason; a scenario that does not validate is
refused with what is wrong. An accepted one gets ``{"type": "scenario_accepted", "id": n,
"parts": [...]}``; the process then applies its own part (fundamental shocks, on its model)
and publishes the scenario, without the token, on its PUB socket under the control topic
``!scenario`` (no symbol starts with "!"; `FundamentalFeed` skips control topics). Every
agent runner follows that topic and applies the agents' part: market makers withdraw their
quotes, trend followers herd, and the runner of population `host` starts the sell program's
or the fat finger's agent (with no host, nobody does: `agora admin scenario` names the first
population). ``at_s`` counts from the moment each process hears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgpack
import structlog
import zmq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.stress.host import Hosted, population_of
from agents.stress.library import Composite, build, named

if TYPE_CHECKING:
    from agents.agent import Agent

__all__ = ["CONTROL_TOPIC", "FundamentalHost", "RunnerHost", "ScenarioRequest", "check",
           "request"]  # fmt: skip

log = structlog.get_logger("stress")

CONTROL_TOPIC = b"!scenario"
_MAX_REQUEST = 64 * 1024


class ScenarioRequest(BaseModel):
    """An admin's request to run a scenario on the live market (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["scenario"] = "scenario"
    admin_token: str = Field("", max_length=512)
    name: str | None = Field(None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    parts: list[dict[str, Any]] | None = Field(None, max_length=32)
    host: str | None = Field(None, max_length=32, description="population that hosts new agents")


def _composite(req: ScenarioRequest) -> Composite:
    if req.parts is not None:
        return build(req.parts, req.name)
    if req.name is None:
        raise ValueError("give a scenario name or its parts")
    return named(req.name, req.params)


def check(payload: bytes, admin_token: str) -> tuple[dict[str, Any] | None, str]:
    """``(event, "")`` for an accepted request (the event carries no token), else
    ``(None, reason)``."""
    if len(payload) > _MAX_REQUEST:
        return None, "request too large"
    try:
        raw = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        req = ScenarioRequest.model_validate(raw)
    except (ValueError, TypeError, msgpack.UnpackException, ValidationError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return None, f"not a scenario request: {first[:200]}"
    if not admin_token:
        return None, "scenarios are off: this market has no admin token configured"
    if not hmac.compare_digest(req.admin_token.encode(), admin_token.encode()):
        return None, "admin token required: missing or wrong"
    try:
        comp = _composite(req)
    except (ValueError, TypeError) as exc:  # a table that is not a table, a bad field
        return None, str(exc)[:300] or type(exc).__name__
    return {"type": "scenario", "name": comp.name, "parts": comp.as_tables(),
            "host": req.host}, ""  # fmt: skip


class _LoopHost:
    """Wall-clock scheduling on the running asyncio loop; ``at_s`` counts from creation."""

    def __init__(self, symbols: list[str]) -> None:
        self.loop = asyncio.get_running_loop()
        self.start_ns = time.time_ns()
        self.symbols = symbols

    def now(self) -> int:
        return time.time_ns()

    def at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        self.loop.call_later(max(0.0, (ts_ns - time.time_ns()) / 1e9), _guarded, fn)

    def agents(self) -> list[Hosted]:
        return []

    def act(self, hosted: Hosted, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def shock(self, pct: float, symbol: str | None) -> bool:
        return False

    def add_agent(self, agent: Agent, name: str, cash: int | None,
                  positions: Mapping[str, int] | None) -> bool:  # fmt: skip
        return False

    def traded_lots(self, symbol: str) -> int:
        return 0


def _guarded(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # a scenario's mistake must not take the process down
        log.exception("scenario_failed")


class FundamentalHost(_LoopHost):
    """The fundamental-value process: applies shocks to its model (published at its next
    tick); has no agents."""

    def __init__(self, model: Any) -> None:
        super().__init__(list(model.symbols))
        self.model = model

    def shock(self, pct: float, symbol: str | None) -> bool:
        values = self.model.shock(pct, symbol)
        log.info("fundamental_shock", pct=pct, symbol=symbol, values=values)
        return True


class RunnerHost(_LoopHost):
    """An agent runner: its agents, and new agents when its population hosts them."""

    def __init__(self, runner: Any, hosts_new_agents: bool) -> None:
        super().__init__(list(runner.symbol_specs))
        self.runner = runner
        self.hosts_new_agents = hosts_new_agents

    def agents(self) -> list[Hosted]:
        return [Hosted(c.name, population_of(c.name), c.agent, c) for c in self.runner.contexts]

    def act(self, hosted: Hosted, fn: Callable[..., Any], *args: Any) -> None:
        hosted.handle.call(fn, *args)

    def add_agent(self, agent: Agent, name: str, cash: int | None,
                  positions: Mapping[str, int] | None) -> bool:  # fmt: skip
        if not self.hosts_new_agents:
            return False
        from agents.runner import AgentSpec

        spec = AgentSpec(agent, name, cash=cash, positions=dict(positions or {}) or None)
        task = self.loop.create_task(self.runner.add_agent(spec))
        task.add_done_callback(_report_failure)
        return True

    def traded_lots(self, symbol: str) -> int:
        return self.runner.volume.get(symbol, 0)


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("scenario_agent_failed", error=str(task.exception()))


def apply_event(host: Any, event: Mapping[str, Any]) -> Composite:
    """Install a published scenario event's parts on `host` (a `_LoopHost`)."""
    comp = build(event["parts"], event.get("name"))
    comp.install(host)
    log.info("scenario_received", scenario=comp.name, parts=[p.kind for p in comp.parts])
    return comp


async def follow(runner: Any, context: Any, endpoint: str, population: str | None) -> None:
    """A runner's subscription to the control topic (on its zmq.asyncio `context`): install
    every scenario it hears."""
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, CONTROL_TOPIC)
    sock.connect(endpoint)
    try:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 2 or frames[0] != CONTROL_TOPIC:
                continue
            try:
                event = msgpack.unpackb(frames[1], raw=False)
                hosts = event.get("host") is not None and event.get("host") == population
                apply_event(RunnerHost(runner, hosts), event)
            except Exception:
                log.exception("scenario_event_skipped")
    finally:
        sock.close(linger=0)


async def serve_control(server: Any, router: Any, pub: Any) -> None:
    """The fundamental process's control socket: check, apply its part, publish, reply."""
    n = 0
    while True:
        frames = await router.recv_multipart()
        if len(frames) < 2:
            continue
        ident, payload = frames[0], frames[-1]
        try:
            event, reason = check(payload, server.settings.admin_token)
        except Exception:  # whatever arrives, the socket keeps answering
            log.exception("scenario_request_failed")
            event, reason = None, "not a scenario request"
        if event is None:
            log.warning("scenario_refused", reason=reason)
            reply = {"type": "scenario_refused", "reason": reason}
        else:
            try:
                apply_event(FundamentalHost(server.model), event)
            except Exception as exc:  # valid, but not for this market (an unknown symbol)
                reply = {"type": "scenario_refused", "reason": str(exc)[:300]}
                log.warning("scenario_refused", reason=reply["reason"])
            else:
                n += 1
                event["id"] = n
                await pub.send_multipart([CONTROL_TOPIC, msgpack.packb(event)])
                reply = {"type": "scenario_accepted", "id": n, "name": event["name"],
                         "parts": event["parts"]}  # fmt: skip
        with contextlib.suppress(zmq.ZMQError):  # the asker may be gone: never our problem
            await router.send_multipart([ident, *frames[1:-1], msgpack.packb(reply)])


def request(endpoint: str, admin_token: str, name: str | None = None,
            params: Mapping[str, Any] | None = None, parts: list[dict] | None = None,
            host: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
    """Send a scenario request to a fundamental process's control socket; its reply (a
    ``TimeoutError`` when nothing answers)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        msg = ScenarioRequest(admin_token=admin_token, name=name, params=dict(params or {}),
                              parts=parts, host=host)  # fmt: skip
        sock.send_multipart([b"", msgpack.packb(msg.model_dump())])
        if not sock.poll(round(timeout_s * 1000)):
            raise TimeoutError(f"no answer from {endpoint} in {timeout_s:g} s")
        return msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
    finally:
        sock.close(linger=0)
