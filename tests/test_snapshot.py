"""Snapshots: a restart from a snapshot plus the journal's tail equals a full replay.

The exchange is built in-process (no sockets: `_apply` is the path every command takes) so a
property test can run many random markets; a process-level test at the end checks the wiring.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import snapshot
from exchange.server import ExchangeServer, changes_state
from exchange.settings import ExchangeSettings
from exchange.symbols import SymbolSpec

SPECS = [
    # a breaker that trips on a 2% move, so halts and reopening auctions happen
    SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000, halt_move_bps=200,
               halt_window_ns=50, halt_duration_ns=20),
    # frequent batch auctions: market orders queue, the book uncrosses on timers
    SymbolSpec(symbol="BAT", reference_price=5_000, band_bps=1_000, batch_interval_ns=30),
]  # fmt: skip


def _server(data: Path, **kw: Any) -> ExchangeServer:
    s = ExchangeSettings(data_dir=data, symbols=SPECS, snapshot_fork=False, **kw)
    return ExchangeServer(s)


def _apply(server: ExchangeServer, record: list[Any]) -> tuple[list[tuple], list[Any]]:
    """Run one command as the gateway would; returns its events and everything it sent."""
    events, _ = server._apply(record, None, record[1])
    out = [dict(server._private), dict(server._public), list(server._drop)]
    server._private.clear()
    server._public.clear()
    server._drop.clear()
    server.journal.commit()
    return events, out


def _state(server: ExchangeServer) -> dict[str, Any]:
    e = server.engine
    captured = snapshot.capture(e, server.reporter, server.feed, server.journal.position())
    del captured["journal"]["journal_id"]  # (a test may give the file a new identity)
    # the claims themselves, not the note of how they were hashed (restored or replayed)
    captured["engine"]["claims"] = [c[:3] for c in captured["engine"]["claims"]]
    return {
        "capture": captured,
        "depth": {sym: e.depth(sym) for sym in e.symbols},
        "trades": len(server.journal.trade_offsets),
    }


def _restarted(state: dict[str, Any]) -> dict[str, Any]:
    """`state` less what every start changes on purpose: the journal's end (the start's
    ``["E", epoch]`` record) and the trade counter (the new epoch's ``epoch << 32``)."""
    capture = dict(state["capture"])
    capture["journal"] = {k: v for k, v in capture["journal"].items()
                          if k not in ("offset", "records", "last_start", "last_crc")}  # fmt: skip
    capture["engine"] = {k: v for k, v in capture["engine"].items() if k != "trade_id"}
    return {**state, "capture": capture}


ACCOUNTS = ["a", "b", "c"]


@st.composite
def commands(draw: st.DrawFn, n: int) -> list[list[Any]]:
    out: list[list[Any]] = []
    ts = 0
    for i in range(n):
        ts += draw(st.integers(1, 12))
        acct = draw(st.sampled_from(ACCOUNTS))
        sym = draw(st.sampled_from(["AGR", "BAT"]))
        ref = 10_000 if sym == "AGR" else 5_000
        kind = draw(st.sampled_from("NNNNNXXRMA"))
        clid = f"{acct}{draw(st.integers(0, n))}"  # reused ids exercise the duplicate check
        target = f"{acct}{draw(st.integers(0, n))}"
        if kind == "N":
            otype = draw(st.sampled_from(["limit", "limit", "limit", "market"]))
            price = None if otype == "market" else ref + draw(st.integers(-300, 300))
            tif = draw(st.sampled_from(["GTC", "GTC", "IOC", "FOK", "DAY"]))
            out.append(["N", ts, acct, clid, sym, draw(st.sampled_from(["buy", "sell"])), otype,
                        draw(st.integers(1, 9)), price, tif, draw(st.booleans()),
                        draw(st.sampled_from(["cancel_newest", "cancel_oldest"]))])  # fmt: skip
        elif kind == "X":
            by_id = draw(st.booleans())
            out.append(["X", ts, acct, f"x{i}", sym, draw(st.integers(1, i + 1)) if by_id else None,
                        None if by_id else target])  # fmt: skip
        elif kind == "R":
            out.append(["R", ts, acct, f"r{i}", sym, None, target, draw(st.integers(1, 12)),
                        draw(st.sampled_from([None, ref - 50, ref + 50, ref]))])  # fmt: skip
        elif kind == "M":
            out.append(["M", ts, acct, f"m{i}", draw(st.sampled_from([sym, None]))])
        else:
            out.append(["A", ts])
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cmds=commands(90), cuts=st.tuples(st.integers(0, 60), st.integers(0, 30)),
       more=commands(30))  # fmt: skip
def test_snapshot_then_tail_equals_full_replay(
    tmp_path_factory: pytest.TempPathFactory, cmds: list[list[Any]], cuts: tuple[int, int],
    more: list[list[Any]],
) -> None:  # fmt: skip
    """Two snapshots (the second reuses the first's hashed claims), then a restart from the
    last one plus the tail, against a restart replaying everything."""
    base = tmp_path_factory.mktemp("snap")
    live = _server(base / "live")
    first, cut = cuts[0] // 2, cuts[0] + cuts[1]
    for r in cmds[:first]:
        _apply(live, r)
    live.take_snapshot(fork=False)
    for r in cmds[first:cut]:
        _apply(live, r)
    live.take_snapshot(fork=False)
    tail = 0  # commands journalled after the last snapshot (the engine's rejects are not)
    for r in cmds[cut:]:
        tail += changes_state(_apply(live, r)[0])
    live.journal.close()
    shutil.copytree(base / "live", base / "full")
    (base / "full" / "exchange.snapshot").unlink()

    fast = _server(base / "live")
    full = _server(base / "full")
    assert fast.from_snapshot and not full.from_snapshot
    assert fast.replayed == tail
    assert _state(fast) == _state(full)
    # (in _state's capture too; said outright: the state a resend after a restart answers from)
    assert fast.reporter.account_seqs == full.reporter.account_seqs
    assert fast.reporter._sent == full.reporter._sent and fast.reporter._tape == full.reporter._tape
    assert fast.engine.epoch == full.engine.epoch == live.engine.epoch + 1
    assert fast._last_ts == full._last_ts
    # The same new commands (later in time) produce identical events and messages.
    shift = cmds[-1][1] if cmds else 0
    for r in more:
        r = [r[0], r[1] + shift, *r[2:]]
        assert _apply(fast, r) == _apply(full, r)
    assert _state(fast) == _state(full)
    # Trades journalled before the snapshot are still served by the replay service.
    n = len(full.journal.trade_offsets)
    assert fast.journal.trades_from(1, n + 5) == full.journal.trades_from(1, n + 5)
    fast.journal.close()
    full.journal.close()


def _market(server: ExchangeServer, n: int, start_ts: int = 1) -> None:
    for i in range(n):
        side = "buy" if i % 2 else "sell"
        price = 10_000 + (i % 7) - 3
        _apply(server, ["N", start_ts + i, "ab"[i % 2], f"o{start_ts + i}", "AGR", side, "limit",
                        1 + i % 3, price, "GTC", False, "cancel_newest"])  # fmt: skip


def test_a_crash_between_snapshot_write_steps_leaves_a_usable_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "ex"
    live = _server(data)
    _market(live, 50)
    live.take_snapshot(fork=False)
    first = snapshot.load(data / "exchange.snapshot")
    _market(live, 50, start_ts=100)
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        live.take_snapshot(fork=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert list(data.glob("exchange.snapshot.tmp-*"))  # the half-done write is left behind
    expected = _state(live)
    live.journal.close()

    again = _server(data)  # the old snapshot plus a longer tail
    assert again.from_snapshot
    assert snapshot.load(data / "exchange.snapshot")["journal"] == first["journal"]
    assert not list(data.glob("exchange.snapshot.tmp-*"))  # cleaned up on load
    assert _restarted(_state(again)) == _restarted(expected)
    again.journal.close()


@pytest.mark.parametrize(
    "damage", ["truncate", "flip", "other_journal", "other_symbols"]
)
def test_an_unusable_snapshot_falls_back_to_full_replay_and_says_so(
    tmp_path: Path, damage: str
) -> None:
    data = tmp_path / "ex"
    live = _server(data)
    _market(live, 40)
    live.take_snapshot(fork=False)
    _market(live, 10, start_ts=100)
    expected = _state(live)
    live.journal.close()
    snap = data / "exchange.snapshot"
    kw: dict[str, Any] = {}
    if damage == "truncate":
        snap.write_bytes(snap.read_bytes()[:100])
    elif damage == "flip":
        raw = bytearray(snap.read_bytes())
        raw[len(raw) // 2] ^= 0x55
        snap.write_bytes(bytes(raw))
    elif damage == "other_journal":  # same contents, new identity: not the snapshot's journal
        journal = data / "exchange.journal"
        raw = bytearray(journal.read_bytes())
        raw[8:16] = os.urandom(8)
        journal.write_bytes(bytes(raw))
    with structlog.testing.capture_logs() as logs:
        if damage == "other_symbols":
            again = ExchangeServer(ExchangeSettings(
                data_dir=data, snapshot_fork=False, symbols=[*SPECS, SymbolSpec(symbol="NEW")],
            ))  # fmt: skip
        else:
            again = _server(data, **kw)
    assert not again.from_snapshot
    assert any(e["event"] == "snapshot_unusable" for e in logs)
    if damage != "other_symbols":
        assert _restarted(_state(again)) == _restarted(expected)
    again.journal.close()


def test_a_forked_snapshot_is_written_while_the_parent_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "ex"
    live = _server(data)
    _market(live, 60)
    live.take_snapshot(fork=True)
    assert live._snap_pid
    _market(live, 5, start_ts=200)  # the parent keeps trading; the child wrote the state before
    live._snapshot_tick(wait=True)
    assert live._snap_pid == 0
    expected = _state(live)
    live.journal.close()
    again = _server(data)
    assert again.from_snapshot and again.replayed == 5
    assert _restarted(_state(again)) == _restarted(expected)
    again.journal.close()


def test_snapshots_follow_the_configured_cadence(tmp_path: Path) -> None:
    live = _server(tmp_path / "ex", snapshot_every_records=25, snapshot_every_s=0)

    def bid(i: int) -> None:  # one record each: bids never trade with each other
        _apply(live, ["N", i, "a", f"b{i}", "AGR", "buy", "limit", 1, 9_990, "GTC", False,
                      "cancel_newest"])  # fmt: skip

    for i in range(23):
        bid(i + 1)
    live._snapshot_tick()
    assert live.journal.records == 24  # the start's epoch record, then the bids
    assert not (tmp_path / "ex" / "exchange.snapshot").exists()
    bid(24)
    live._snapshot_tick()
    assert snapshot.load(tmp_path / "ex" / "exchange.snapshot")["journal"]["records"] >= 25
    live.journal.close()


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.text(max_size=5) | st.integers(), unique=True, max_size=50),
    cuts=st.lists(st.integers(0, 50), min_size=1, max_size=4),
)
def test_hashing_only_new_claims_gives_what_hashing_all_gives(
    keys: list[Any], cuts: list[int]
) -> None:
    from exchange.claims import OldClaims, RestoredClaims, pack_claims

    table: dict[Any, int] = {}
    done = 0
    previous = None
    for cut in sorted(cuts):  # the table grows between snapshots, as the engine's does
        for k in keys[done:cut]:
            table[k] = len(table) + 1
        done = max(done, cut)
        packed = pack_claims(table, previous)
        assert packed == pack_claims(table)
        previous = list(packed)
    # Restored: the old part hashed, new claims in the dict; every claim still resolves.
    restored = RestoredClaims(OldClaims(*pack_claims(table)[:2]))
    assert all(restored.get(k) == v for k, v in table.items())
    assert restored.setdefault("fresh-id", 999) == 999 and restored.get("fresh-id") == 999
    assert all(restored.setdefault(k, -1) == v for k, v in table.items())  # duplicates
    mine = pack_claims(restored)
    assert pack_claims(restored, list(mine)) == mine
    # A dict that is not the one hashed before (end of day: a new table) is hashed afresh.
    other = {k: v for k, v in list(table.items())[1:]}
    assert pack_claims(other, previous) == pack_claims(other)


def test_a_restart_from_a_snapshot_claims_a_later_epoch_and_keeps_report_numbers(
    tmp_path: Path,
) -> None:
    """The epoch file lost too: the snapshot's trade counter alone keeps ids moving forward."""
    from exchange.epoch import epoch_path

    data = tmp_path / "ex"
    live = _server(data)
    _market(live, 40)
    live.take_snapshot(fork=False)
    epoch, last = live.engine.epoch, live.journal.last_trade_id
    seqs = dict(live.reporter.account_seqs)
    window = live.reporter.resend("a", 1, 1_000)
    assert last and seqs["a"] and window[0]
    live.journal.close()
    epoch_path(data / "exchange.journal").unlink()
    again = _server(data)
    assert again.from_snapshot and again.replayed == 0
    assert again.engine.epoch == epoch + 1
    assert again.reporter.account_seqs == seqs and again.reporter.resend("a", 1, 1_000) == window
    assert again.journal.last_trade_id == last
    _market(again, 10, start_ts=500)
    new = [r[1] for r in again.journal.trades_from(last + 1, 100)]
    assert new and all(t >> 32 == epoch + 1 for t in new) and again.journal.last_trade_id == new[-1]
    assert again.reporter.account_seqs["a"] > seqs["a"]
    again.journal.close()
