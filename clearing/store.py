"""Durable clearing records: SQLite by default, any SQLAlchemy URL (PostgreSQL) when configured.

Schema (created on start):

* ``meta``: key/value, among them ``settled_through`` (the last settled trade id);
* ``accounts``, ``positions``: the current balances (what a restart loads);
* ``trades``: every settled trade with both fees, keyed by ``trade_id``;
* ``changes``: every balance change (trade legs, fees, deposits, withdrawals, openings).

Exactly once across crashes: a batch of settled trades, its changes, the new balances and
``settled_through`` are written in one transaction, so after a kill -9 the database holds every
trade up to some id and nothing after it, and the process resumes from there. ``trades``'s
primary key makes a double settlement impossible even for a buggy caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from clearing.ledger import Account, Change, Ledger, Limits, Position

__all__ = ["Store"]


def _null_first(row: tuple) -> tuple:
    """Sort key for rows with NULLs (None does not compare with str or int)."""
    return tuple((v is not None, v if v is not None else 0) for v in row)

meta = MetaData()

meta_table = Table(
    "meta", meta,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)  # fmt: skip

accounts_table = Table(
    "accounts", meta,
    Column("account", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("cash", BigInteger, nullable=False),
    Column("deposits", BigInteger, nullable=False),
    Column("fees_paid", BigInteger, nullable=False),
    Column("leverage", Float, nullable=False),
    Column("short_limit", BigInteger, nullable=False),
    Column("max_position", BigInteger),
    Column("max_order_notional", BigInteger),
)  # fmt: skip

positions_table = Table(
    "positions", meta,
    Column("account", String(64), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("qty", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("realised", BigInteger, nullable=False),
)  # fmt: skip

trades_table = Table(
    "trades", meta,
    Column("trade_id", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("aggressor", String(8), nullable=False),
    Column("buy_account", String(64), nullable=False, index=True),
    Column("sell_account", String(64), nullable=False, index=True),
    Column("buy_order_id", BigInteger, nullable=False),
    Column("sell_order_id", BigInteger, nullable=False),
    Column("buy_fee", BigInteger, nullable=False),
    Column("sell_fee", BigInteger, nullable=False),
)  # fmt: skip

changes_table = Table(
    "changes", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("account", String(64), nullable=False, index=True),
    Column("symbol", String(32)),
    Column("qty_delta", BigInteger, nullable=False),
    Column("cash_delta", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("trade_id", BigInteger),
)  # fmt: skip


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (agora accounts) never block settlement
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a crash
    cur.close()


class Store:
    """The clearing database. `url`: an SQLAlchemy URL, or a path for a SQLite file."""

    def __init__(self, url: str | Path) -> None:
        url = str(url)
        if "://" not in url:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.url = url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ load
    def load(self, ledger: Ledger) -> None:
        """Fill an empty ledger with the stored balances and `settled_through`."""
        with self.engine.connect() as conn:
            values = dict(conn.execute(select(meta_table.c.key, meta_table.c.value)).all())
            ledger.settled_through = int(values.get("settled_through", 0))
            for row in conn.execute(select(accounts_table)).mappings():
                ledger.accounts[row["account"]] = Account(
                    row["account"], cash=row["cash"], deposits=row["deposits"],
                    fees_paid=row["fees_paid"], token_hash=row["token_hash"],
                    limits=Limits(
                        leverage=row["leverage"], short_limit=row["short_limit"],
                        max_position=row["max_position"],
                        max_order_notional=row["max_order_notional"],
                    ),
                )  # fmt: skip
            for row in conn.execute(select(positions_table)).mappings():
                acct = ledger.accounts[row["account"]]
                acct.positions[row["symbol"]] = Position(row["qty"], row["cost"], row["realised"])
            for key, value in values.items():
                if key.startswith("mark:"):
                    ledger.marks[key[5:]] = int(value)

    def meta_get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == key)
            ).first()
        return None if row is None else row[0]

    # ------------------------------------------------------------------ write
    def commit(
        self,
        ledger: Ledger,
        changes: Iterable[Change],
        trades: Iterable[Mapping[str, Any]] = (),
        touched: Iterable[str] = (),
        meta_values: Mapping[str, str] | None = None,
    ) -> None:
        """One transaction: trade rows, change rows, the touched accounts' balances, meta."""
        changes = list(changes)
        fees: dict[tuple[int, str], int] = {}
        for c in changes:
            if c.kind == "trade" and c.trade_id is not None:
                fees[(c.trade_id, "buy" if c.qty_delta > 0 else "sell")] = c.fee
        trade_rows = [{
            "trade_id": t["trade_id"], "ts": t.get("ts", 0), "symbol": t["symbol"],
            "price": t["price"], "qty": t["qty"], "aggressor": t.get("aggressor_side", "none"),
            "buy_account": t["buy_account"], "sell_account": t["sell_account"],
            "buy_order_id": t.get("buy_order_id", 0), "sell_order_id": t.get("sell_order_id", 0),
            "buy_fee": fees.get((t["trade_id"], "buy"), 0),
            "sell_fee": fees.get((t["trade_id"], "sell"), 0),
        } for t in trades]  # fmt: skip
        change_rows = [{
            "ts": c.ts, "kind": c.kind, "account": c.account, "symbol": c.symbol,
            "qty_delta": c.qty_delta, "cash_delta": c.cash_delta, "fee": c.fee,
            "trade_id": c.trade_id,
        } for c in changes]  # fmt: skip
        meta_rows = {"settled_through": str(ledger.settled_through)}
        for symbol, mark in ledger.marks.items():
            meta_rows[f"mark:{symbol}"] = str(mark)
        meta_rows.update(meta_values or {})
        with self.engine.begin() as conn:
            if trade_rows:
                conn.execute(insert(trades_table), trade_rows)
            if change_rows:
                conn.execute(insert(changes_table), change_rows)
            self._write_accounts(conn, ledger, set(touched) | {c.account for c in changes})
            self._write_meta(conn, meta_rows)

    def _write_accounts(self, conn: Connection, ledger: Ledger, names: set[str]) -> None:
        if not names:
            return
        existing = {
            r[0] for r in conn.execute(
                select(accounts_table.c.account).where(accounts_table.c.account.in_(names))
            )
        }  # fmt: skip
        existing_pos = {
            (r[0], r[1]) for r in conn.execute(
                select(positions_table.c.account, positions_table.c.symbol).where(
                    positions_table.c.account.in_(names)
                )
            )
        }  # fmt: skip
        new_accts, old_accts, new_pos, old_pos = [], [], [], []
        for name in names:
            acct = ledger.accounts[name]
            lim = acct.limits
            row = {
                "account": name, "token_hash": acct.token_hash, "cash": acct.cash,
                "deposits": acct.deposits, "fees_paid": acct.fees_paid,
                "leverage": lim.leverage, "short_limit": lim.short_limit,
                "max_position": lim.max_position, "max_order_notional": lim.max_order_notional,
            }  # fmt: skip
            (old_accts if name in existing else new_accts).append(row)
            for symbol, pos in acct.positions.items():
                prow = {"account": name, "symbol": symbol, "qty": pos.qty, "cost": pos.cost,
                        "realised": pos.realised}  # fmt: skip
                (old_pos if (name, symbol) in existing_pos else new_pos).append(prow)
        if new_accts:
            conn.execute(insert(accounts_table), new_accts)
        if old_accts:
            conn.execute(
                update(accounts_table).where(accounts_table.c.account == bindparam("b_account")),
                [{("b_account" if k == "account" else k): v for k, v in r.items()}
                 for r in old_accts],
            )  # fmt: skip
        if new_pos:
            conn.execute(insert(positions_table), new_pos)
        if old_pos:
            conn.execute(
                update(positions_table).where(
                    (positions_table.c.account == bindparam("b_account"))
                    & (positions_table.c.symbol == bindparam("b_symbol"))
                ),
                [{("b_" + k if k in ("account", "symbol") else k): v for k, v in r.items()}
                 for r in old_pos],
            )  # fmt: skip

    def _write_meta(self, conn: Connection, rows: Mapping[str, str]) -> None:
        existing = {r[0] for r in conn.execute(select(meta_table.c.key))}
        new = [{"key": k, "value": v} for k, v in rows.items() if k not in existing]
        old = [{"b_key": k, "value": v} for k, v in rows.items() if k in existing]
        if new:
            conn.execute(insert(meta_table), new)
        if old:
            conn.execute(update(meta_table).where(meta_table.c.key == bindparam("b_key")), old)

    # ------------------------------------------------------------------ read
    def trades_of(
        self, account: str, after_trade_id: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A page of an account's settled trades, oldest first, ids above `after_trade_id`."""
        t = trades_table
        q = (
            select(t)
            .where(((t.c.buy_account == account) | (t.c.sell_account == account))
                   & (t.c.trade_id > after_trade_id))
            .order_by(t.c.trade_id)
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def dump(self) -> dict[str, list[tuple]]:
        """Every table's rows, sorted (for tests comparing two databases)."""
        out = {}
        with self.engine.connect() as conn:
            for table in (accounts_table, positions_table, trades_table, changes_table):
                cols = [c for c in table.c if c.name != "id"]
                out[table.name] = sorted(
                    (tuple(r) for r in conn.execute(select(*cols)).all()), key=_null_first
                )
            out["meta"] = sorted(tuple(r) for r in conn.execute(select(meta_table)).all())
        return out
