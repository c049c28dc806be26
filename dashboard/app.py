"""The dashboard's web application (Starlette): pages, the live WebSocket and operator actions.

* ``/`` the page (market, participants, services tabs), ``/static`` its script, styles and
  the vendored chart library (served from the package: it works offline).
* ``/ws`` the live updates: one full state on connect, then at most `update_hz` conflated
  updates a second (`dashboard.state`). Each browser has a small queue; one that cannot keep
  up loses its queued updates and is sent the full state instead, so a slow browser never
  holds the others back nor grows the dashboard's memory.
* ``/api/state`` the same full state as JSON, for programs.
* actions: halt or resume a symbol, from the page (a ``control`` message on the WebSocket) or
  from programs (``POST /api/control``). Read-only by default: the request must carry the
  admin token, which the exchange checks; without one it is refused here (403) before
  anything is sent. The token is never logged, stored nor echoed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from agents.config import MarketConfig
from dashboard.metrics import DashboardMetrics
from dashboard.settings import DashboardSettings
from dashboard.sources import Sources, control_symbol
from dashboard.state import MarketState

__all__ = ["Dashboard", "create_app"]

log = structlog.get_logger("dashboard")

STATIC = Path(__file__).resolve().parent / "static"
_QUEUE = 8  # updates waiting per browser before it is resynchronised with the full state
_ACTIONS = ("halt", "resume", "scenario")


class _Browser:
    __slots__ = ("queue", "resync")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE)
        self.resync = False


class Dashboard:
    """The running service: sources feeding the state, and the browsers it updates."""

    def __init__(self, settings: DashboardSettings, market: MarketConfig | None = None) -> None:
        self.s = settings
        self.market = market
        self.state = MarketState(list(settings.symbols))
        self.metrics = DashboardMetrics()
        self.sources = Sources(settings, self.state, self.metrics, market)
        self.browsers: set[_Browser] = set()
        self._tasks: list[asyncio.Task] = []
        self._versions = (-1, -1)
        self.on_ready: Any = None  # called once the server serves (the ready line)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._tasks = [*self.sources.tasks(), asyncio.create_task(self._broadcast())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.sources.close()

    # ------------------------------------------------------------------ updates
    def hello(self) -> dict[str, Any]:
        return {
            "t": "hello", "market": self.market.name if self.market else "",
            "symbols": [s.symbol for s in self.s.symbols], "update_hz": self.s.update_hz,
            "fundamental": bool(self.s.fundamental),
        }  # fmt: skip

    def full(self) -> dict[str, Any]:
        return {"t": "full", "market": self.state.full(), "leaderboard": self.sources.leaderboard,
                "services": self.sources.services, "ts": time.time()}  # fmt: skip

    async def _broadcast(self) -> None:
        period = 1.0 / self.s.update_hz
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))  # the update rate itself
            if loop.time() - next_at > period:
                next_at = loop.time()  # fell behind (a busy machine): skip, do not burst
            market = self.state.tick()
            update: dict[str, Any] = {"t": "tick", "market": market, "ts": time.time()}
            versions = (self.sources.leaderboard_version, self.sources.services_version)
            if versions[0] != self._versions[0]:
                update["leaderboard"] = self.sources.leaderboard
            if versions[1] != self._versions[1]:
                update["services"] = self.sources.services
            self._versions = versions
            if not self.browsers:
                continue
            text = json.dumps(update, separators=(",", ":"))
            full_text: str | None = None
            for b in self.browsers:
                if b.resync:
                    full_text = full_text or json.dumps(self.full(), separators=(",", ":"))
                    _drain(b.queue)
                    b.queue.put_nowait(full_text)
                    b.resync = False
                    continue
                try:
                    b.queue.put_nowait(text)
                except asyncio.QueueFull:
                    b.resync = True  # it missed updates: it gets the whole state next
            self.metrics.updates.inc()

    async def websocket(self, ws: WebSocket) -> None:
        await ws.accept()
        browser = _Browser()
        await ws.send_text(json.dumps(self.hello()))
        await ws.send_text(json.dumps(self.full(), separators=(",", ":")))
        self.browsers.add(browser)
        self.metrics.set_browsers(len(self.browsers))
        reader = asyncio.create_task(self._from_browser(ws, browser))
        try:
            while not reader.done():
                getter = asyncio.create_task(browser.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await ws.send_text(getter.result())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            reader.cancel()
            self.browsers.discard(browser)
            self.metrics.set_browsers(len(self.browsers))

    # ------------------------------------------------------------------ actions
    async def act(
        self, symbol: str, action: str, token: Any, scenario: str = ""
    ) -> tuple[int, dict[str, Any]]:
        """Halt or resume `symbol`, or run the stress `scenario`, with the operator's token:
        (HTTP status, answer)."""
        if action not in _ACTIONS:
            return 400, _no("unknown_action", f"action is one of {', '.join(_ACTIONS)}")
        if action != "scenario" and symbol not in {s.symbol for s in self.s.symbols}:
            return 404, _no("unknown_symbol", f"no symbol {symbol!r}")
        if not isinstance(token, str) or not token:
            self.metrics.actions.labels("refused").inc()
            log.info("action_refused", action=action, symbol=symbol, reason="no_token")
            what = "a stress scenario" if action == "scenario" else "a symbol"
            return 403, _no("admin_token_required", f"to {action} {what} needs the admin "
                            "token; the dashboard is read-only without it")  # fmt: skip
        if action == "scenario":
            ok, reason, text = await self._scenario(scenario, token)
        else:
            ok, reason, text = await control_symbol(self.sources.ctx, self.s.snapshot, symbol,
                                                    action, token)  # fmt: skip
        self.metrics.actions.labels("done" if ok else "refused").inc()
        log.info("action", action=action, symbol=symbol, accepted=ok, reason=reason)
        if ok:
            return 200, {"ok": True, "symbol": symbol, "phase": reason, "text": text}
        status = 403 if reason in ("not_authorised", "invalid_token") else (
            503 if reason == "unavailable" else 409)  # fmt: skip
        return status, _no(reason, text)

    def scenario_names(self) -> dict[str, str]:
        """The named stress scenarios the market can run (none without its control socket)."""
        if not self.s.fundamental_control:
            return {}
        try:
            from agents.stress.library import describe_named
        except ImportError:  # a build without the stress package
            return {}
        return describe_named()

    async def _scenario(self, name: str, token: str) -> tuple[bool, str, str]:
        """Send the named scenario to the fair-value process's control socket (it checks the
        token), striking in a second; new agents go to the market's first population."""
        names = self.scenario_names()
        if name not in names:
            known = ", ".join(names) or "none: this market has no scenario control"
            return False, "unknown_scenario", f"no scenario {name!r} (known: {known})"
        from agents.stress.live import request

        host = self.market.populations[0].name if self.market and self.market.populations else None
        try:
            reply = await asyncio.to_thread(request, self.s.fundamental_control, token,
                                            name=name, params={"at_s": 1.0}, host=host)  # fmt: skip
        except TimeoutError as exc:
            return False, "unavailable", str(exc)
        if reply.get("type") != "scenario_accepted":
            reason = str(reply.get("reason", "refused"))
            code = "invalid_token" if "token" in reason else "refused"
            return False, code, reason
        parts = ", ".join(str(p.get("kind")) for p in reply.get("parts", []))
        return True, "accepted", f"scenario {name} accepted ({parts}): it strikes in 1 s"

    async def control(self, request: Request) -> JSONResponse:
        """``POST /api/control`` {symbol, action, token} (or the token in the
        ``X-Agora-Admin-Token`` header)."""
        try:
            body = await request.json()
        except Exception:
            body = None
        if not isinstance(body, dict):
            return JSONResponse(_no("malformed", "send JSON: {symbol, action, token}"), 400)
        token = body.get("token") or request.headers.get("x-agora-admin-token", "")
        status, answer = await self.act(str(body.get("symbol", "")), str(body.get("action", "")),
                                        token, str(body.get("scenario", "")))  # fmt: skip
        return JSONResponse(answer, status_code=status)

    async def _from_browser(self, ws: WebSocket, browser: _Browser) -> None:
        """What the page sends: actions (``{"t": "control", ...}``), answered on the socket."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                try:
                    req = json.loads(msg.get("text") or "")
                except ValueError:
                    continue
                if not isinstance(req, dict) or req.get("t") != "control":
                    continue
                symbol, action = str(req.get("symbol", "")), str(req.get("action", ""))
                status, answer = await self.act(symbol, action, req.get("token"),
                                                str(req.get("scenario", "")))  # fmt: skip
                reply = json.dumps({"t": "control", "id": req.get("id"), "status": status,
                                    **answer})  # fmt: skip
                try:
                    browser.queue.put_nowait(reply)
                except asyncio.QueueFull:
                    _drain(browser.queue)
                    browser.resync = True
                    browser.queue.put_nowait(reply)

    async def scenarios(self, _request: Request) -> JSONResponse:
        """Stress scenarios this market offers (none without the fair-value process's control
        socket)."""
        names = self.scenario_names()
        note = "" if names else "this market offers no live stress scenarios"
        return JSONResponse({"scenarios": names, "note": note})


def _no(reason: str, text: str) -> dict[str, Any]:
    return {"ok": False, "reason": reason, "text": text}


def _drain(queue: asyncio.Queue[str]) -> None:
    while not queue.empty():
        queue.get_nowait()


def create_app(dash: Dashboard) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await dash.start()
        if dash.on_ready is not None:
            dash.on_ready()
        try:
            yield
        finally:
            await dash.stop()

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def state(_request: Request) -> JSONResponse:
        return JSONResponse({**dash.hello(), **dash.full(), "t": "state"})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/control", dash.control, methods=["POST"]),
            Route("/api/scenarios", dash.scenarios),
            Route("/healthz", health),
            WebSocketRoute("/ws", dash.websocket),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
