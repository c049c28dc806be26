"""Durable clearing records: SQLite by default, any SQLAlchemy URL (PostgreSQL) when configured.

Schema (created on start):

* ``meta``: key/value, among them ``settled_through`` (the last settled trade id);
* ``accounts``, ``positions``: the current balances (what a restart loads);
* ``trades``: every settled trade with both fees, keyed by ``trade_id``;
* ``changes``: every balance change (trade legs, fees, deposits, withdrawals, openings);
* ``trade_conflicts``: trades refused because their id already named a different trade (a fault
  of the exchange, kept for the operator: what came, and what the id stands for here).

Exactly once across crashes: a batch of settled trades, its changes, the new balances and
``settled_through`` are written in one transaction, so after a kill -9 the database holds every
trade up to some id and nothing after it, and the process resumes from there. ``trades``'s
primary key makes a double settlement impossible even for a buggy caller.
"""

from __future__ import annotations

import json
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
    Text,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from clearing.ledger import Account, Change, Ledger, Limits, Position

__all__ = ["Store"]


_TRADE_COLS = (
    "trade_id", "ts", "symbol", "price", "qty", "aggressor", "buy_account", "sell_account",
    "buy_order_id", "sell_order_id", "buy_fee", "sell_fee",
)  # fmt: skip
_CHANGE_COLS = ("ts", "kind", "account", "symbol", "qty_delta", "cash_delta", "fee", "trade_id")
_ACCOUNT_COLS = (
    "token_hash", "cash", "deposits", "fees_paid", "leverage", "short_limit", "max_position",
    "max_order_notional", "short_margin", "maintenance_margin",
)  # fmt: skip
# Columns added after the first release, with the value a database written before them means
# (`Store` adds them to such a database when it opens it).
_ADDED_COLS = {"accounts": (("short_margin", "FLOAT NOT NULL DEFAULT 0"),
                            ("maintenance_margin", "FLOAT NOT NULL DEFAULT 0"))}  # fmt: skip
_POSITION_COLS = ("qty", "cost", "realised")


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
    Column("short_margin", Float, nullable=False, server_default="0"),
    Column("maintenance_margin", Float, nullable=False, server_default="0"),
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


conflicts_table = Table(
    "trade_conflicts", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trade_id", BigInteger, nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("received", Text, nullable=False),  # JSON: the refused trade
    Column("settled", Text),  # JSON: the trade settled under that id, if any
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
        self._add_columns()
        # Which accounts and positions have rows already (insert or update?), read once.
        self._known_accounts: set[str] | None = None
        self._known_positions: set[tuple[str, str]] | None = None

    def _add_columns(self) -> None:
        """Bring a database written by an older release up to the current columns: each
        missing column is added with the default that keeps its rows meaning what they did
        (no margin rule on an account that never had one)."""
        found = inspect(self.engine)
        for table, cols in _ADDED_COLS.items():
            have = {c["name"] for c in found.get_columns(table)}
            missing = [(name, ddl) for name, ddl in cols if name not in have]
            if missing:
                with self.engine.begin() as conn:
                    for name, ddl in missing:
                        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")

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
                        short_margin=row["short_margin"],
                        maintenance_margin=row["maintenance_margin"],
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
        conflicts: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """One transaction: trade rows, change rows, the touched accounts' balances, meta, and
        any refused conflicting trades."""
        changes = list(changes)
        fees: dict[tuple[int, str], int] = {}
        for c in changes:
            if c.kind == "trade" and c.trade_id is not None:
                fees[(c.trade_id, "buy" if c.qty_delta > 0 else "sell")] = c.fee
        trade_rows = [(
            t["trade_id"], t.get("ts", 0), t["symbol"], t["price"], t["qty"],
            t.get("aggressor_side", "none"), t["buy_account"], t["sell_account"],
            t.get("buy_order_id", 0), t.get("sell_order_id", 0),
            fees.get((t["trade_id"], "buy"), 0), fees.get((t["trade_id"], "sell"), 0),
        ) for t in trades]  # fmt: skip
        change_rows = [
            (c.ts, c.kind, c.account, c.symbol, c.qty_delta, c.cash_delta, c.fee, c.trade_id)
            for c in changes
        ]
        meta_rows = {"settled_through": str(ledger.settled_through)}
        for symbol, mark in ledger.marks.items():
            meta_rows[f"mark:{symbol}"] = str(mark)
        meta_rows.update(meta_values or {})
        conflict_rows = [(
            c["trade_id"], c["reason"], json.dumps(c["received"], sort_keys=True),
            None if c.get("settled") is None else json.dumps(c["settled"], sort_keys=True),
        ) for c in conflicts]  # fmt: skip
        try:
            self._commit(trade_rows, change_rows, ledger, touched, changes, meta_rows,
                         conflict_rows)  # fmt: skip
        except BaseException:
            self._known_accounts = self._known_positions = None  # re-read after a failure
            raise

    def _commit(
        self, trade_rows: list, change_rows: list, ledger: Ledger, touched: Iterable[str],
        changes: list[Change], meta_rows: dict[str, str], conflict_rows: list | None = None,
    ) -> None:  # fmt: skip
        with self.engine.begin() as conn:
            if trade_rows:
                self._insert(conn, trades_table, _TRADE_COLS, trade_rows)
            if conflict_rows:
                self._insert(conn, conflicts_table, ("trade_id", "reason", "received",
                                                     "settled"), conflict_rows)  # fmt: skip
            if change_rows:
                self._insert(conn, changes_table, _CHANGE_COLS, change_rows)
            self._write_accounts(conn, ledger, set(touched) | {c.account for c in changes})
            self._write_meta(conn, meta_rows)
            added = conn.info.pop("agora_added", [])
        for accts, positions in added:  # committed: remember them as existing
            assert self._known_accounts is not None and self._known_positions is not None
            self._known_accounts.update(accts)
            self._known_positions.update(positions)

    # Bulk writes go straight to the driver's executemany with positional rows: SQLAlchemy's
    # per-row parameter processing cost more than SQLite itself (issue 4: >= 20k trades/s).
    def _mark(self) -> str:
        return "?" if self.engine.dialect.paramstyle in ("qmark", "numeric") else "%s"

    def _insert(self, conn: Connection, table: Table, cols: tuple[str, ...], rows: list) -> None:
        marks = ", ".join([self._mark()] * len(cols))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})", rows)

    def _update(
        self, conn: Connection, table: Table, cols: tuple[str, ...], keys: tuple[str, ...],
        rows: list,
    ) -> None:  # fmt: skip
        m = self._mark()
        sets = ", ".join(f"{c} = {m}" for c in cols)
        where = " AND ".join(f"{k} = {m}" for k in keys)
        conn.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {where}", rows)

    def _write_accounts(self, conn: Connection, ledger: Ledger, names: set[str]) -> None:
        if not names:
            return
        known = self._known_accounts
        known_pos = self._known_positions
        if known is None or known_pos is None:
            known = self._known_accounts = {
                r[0] for r in conn.execute(select(accounts_table.c.account))
            }
            known_pos = self._known_positions = {
                (r[0], r[1])
                for r in conn.execute(select(positions_table.c.account, positions_table.c.symbol))
            }
        new_accts, old_accts, new_pos, old_pos = [], [], [], []
        added_accts, added_pos = [], []
        for name in names:
            acct = ledger.accounts[name]
            lim = acct.limits
            values = (
                acct.token_hash, acct.cash, acct.deposits, acct.fees_paid, lim.leverage,
                lim.short_limit, lim.max_position, lim.max_order_notional, lim.short_margin,
                lim.maintenance_margin,
            )  # fmt: skip
            if name in known:
                old_accts.append((*values, name))
            else:
                new_accts.append((name, *values))
                added_accts.append(name)
            for symbol, pos in acct.positions.items():
                if (name, symbol) in known_pos:
                    old_pos.append((pos.qty, pos.cost, pos.realised, name, symbol))
                else:
                    new_pos.append((name, symbol, pos.qty, pos.cost, pos.realised))
                    added_pos.append((name, symbol))
        if new_accts:
            self._insert(conn, accounts_table, ("account", *_ACCOUNT_COLS), new_accts)
        if old_accts:
            self._update(conn, accounts_table, _ACCOUNT_COLS, ("account",), old_accts)
        if new_pos:
            self._insert(conn, positions_table, ("account", "symbol", *_POSITION_COLS), new_pos)
        if old_pos:
            self._update(conn, positions_table, _POSITION_COLS, ("account", "symbol"), old_pos)
        # Only once the transaction commits are these rows really there.
        conn.info.setdefault("agora_added", []).append((added_accts, added_pos))

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

    def trades_by_id(self, trade_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The settled trades with these ids (absent ids are simply missing)."""
        t = trades_table
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(trade_ids), 500):
                q = select(t).where(t.c.trade_id.in_(trade_ids[i : i + 500]))
                for r in conn.execute(q).mappings():
                    out[r["trade_id"]] = dict(r)
        return out

    def conflict_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(conflicts_table)).scalar())

    def conflicts(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest refused conflicting trades, newest first."""
        c = conflicts_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(c).order_by(c.c.id.desc()).limit(limit)).mappings()
            return [
                {"trade_id": r["trade_id"], "reason": r["reason"],
                 "received": json.loads(r["received"]),
                 "settled": None if r["settled"] is None else json.loads(r["settled"])}
                for r in rows
            ]  # fmt: skip

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
