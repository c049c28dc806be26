"""Client of the clearing house's account API (async; `request_sync` for scripts and the CLI)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import zmq
import zmq.asyncio

from clearing.ledger import Limits
from clearing.protocol import (
    AccountBalance,
    AccountList,
    AccountOpened,
    AccountUpdate,
    BalanceRequest,
    ClearingReject,
    Deposit,
    ListAccounts,
    OpenAccount,
    SetLimits,
    Subscribe,
    TradeHistory,
    TradeHistoryRequest,
    TradeRecord,
    Withdraw,
    decode,
    encode,
)

__all__ = ["ClearingClient", "ClearingError", "request_sync"]


class ClearingError(RuntimeError):
    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(f"{reason}: {text}" if text and text != reason else reason)
        self.reason = reason


class ClearingClient:
    """One DEALER to clearing; requests are matched to answers by `request_id`.

    `admin_token` for admin calls; `account` + `token` for an owner's own records.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5559",
        admin_token: str = "",
        account: str | None = None,
        token: str = "",
        timeout: float = 10.0,
        ctx: zmq.asyncio.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.admin_token = admin_token
        self.account = account
        self.token = token
        self.timeout = timeout
        self._ctx = ctx or zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._updates: asyncio.Queue[AccountUpdate] = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._sock.close(linger=0)

    async def __aenter__(self) -> ClearingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        while True:
            try:
                msg = decode(await self._sock.recv())
            except Exception:  # a malformed answer is skipped, not fatal
                continue
            if isinstance(msg, AccountUpdate):
                self._updates.put_nowait(msg)
                continue
            fut = self._pending.pop(getattr(msg, "request_id", None) or "", None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def request(self, msg: Any) -> Any:
        """Send a request, await its answer; a `ClearingReject` raises `ClearingError`."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        rid = str(next(self._ids))
        msg = msg.model_copy(update={"request_id": rid})
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await self._sock.send(encode(msg))
        try:
            reply = await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            self._pending.pop(rid, None)
            raise ClearingError("timeout", f"no answer from {self.endpoint}") from None
        if isinstance(reply, ClearingReject):
            raise ClearingError(reply.reason, reply.text)
        return reply

    # ------------------------------------------------------------------ admin
    async def open_account(
        self,
        account: str | None = None,
        cash: int | None = None,
        positions: dict[str, int] | None = None,
        limits: Limits | None = None,
        if_exists: str = "error",
    ) -> AccountOpened:
        return await self.request(OpenAccount(
            admin_token=self.admin_token, account=account, cash=cash, positions=positions,
            limits=limits, if_exists=if_exists,
        ))  # fmt: skip

    async def deposit(self, account: str, amount: int) -> AccountBalance:
        return await self.request(
            Deposit(admin_token=self.admin_token, account=account, amount=amount)
        )

    async def withdraw(self, account: str, amount: int) -> AccountBalance:
        return await self.request(
            Withdraw(admin_token=self.admin_token, account=account, amount=amount)
        )

    async def set_limits(self, account: str, limits: Limits) -> None:
        await self.request(SetLimits(admin_token=self.admin_token, account=account, limits=limits))

    async def list_accounts(self) -> AccountList:
        return await self.request(ListAccounts(admin_token=self.admin_token))

    # ------------------------------------------------------------------ owner
    def _owner(self, account: str | None) -> tuple[str, str]:
        name = account or self.account
        if not name:
            raise ValueError("which account? give one here or to the client")
        return name, self.token

    async def balance(self, account: str | None = None) -> AccountBalance:
        name, token = self._owner(account)
        return await self.request(BalanceRequest(account=name, token=token))

    async def trades(
        self, account: str | None = None, after_trade_id: int = 0, limit: int = 100
    ) -> TradeHistory:
        name, token = self._owner(account)
        return await self.request(TradeHistoryRequest(
            account=name, token=token, after_trade_id=after_trade_id, limit=limit,
        ))  # fmt: skip

    async def all_trades(self, account: str | None = None) -> list[TradeRecord]:
        """Every settled trade of the account, page by page."""
        out: list[TradeRecord] = []
        after = 0
        while True:
            page = await self.trades(account, after, 1000)
            out.extend(page.trades)
            if page.next_after is None:
                return out
            after = page.next_after

    async def watch(self, account: str | None = None) -> AsyncIterator[AccountBalance]:
        """The account's balance now, then after every change."""
        name, token = self._owner(account)
        yield await self.request(Subscribe(account=name, token=token))
        while True:
            yield (await self._updates.get()).balance


def request_sync(endpoint: str, msg: Any, timeout: float = 10.0) -> Any:
    """One request from synchronous code (the CLI): connect, ask, answer, close."""

    async def go() -> Any:
        ctx = zmq.asyncio.Context()
        client = ClearingClient(endpoint, timeout=timeout, ctx=ctx)
        try:
            return await client.request(msg)
        finally:
            await client.close()
            ctx.term()

    return asyncio.run(go())
