"""Named scenarios, and a scenario built from tables (a market file's ``[[scenario]]``, a
command's ``--scenario NAME --param key=value``).

A table names either one scenario ``kind`` with its parameters (see
`agents.stress.scenarios`), or a ``name`` from `NAMED` with overrides: an override sets that
field on every part of the named scenario that has it (``at_s = 30`` moves all of a
flash crash to 30 s); a key no part has is an error. Several tables make one `Composite`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agents.stress.host import ScenarioHost
from agents.stress.scenarios import FundamentalShock, _Part, parse_part

__all__ = ["NAMED", "Composite", "build", "describe_named", "named"]

NAMED: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "fundamental-shock": ("F(t) falls 10% at 20 s", [
        {"kind": "fundamental_shock", "at_s": 20.0, "pct": -10.0},
    ]),
    "liquidity-withdrawal": ("the market makers pull their quotes for 15 s at 20 s", [
        {"kind": "liquidity_withdrawal", "at_s": 20.0, "duration_s": 15.0},
    ]),
    "sell-program": ("a TWAP sells 25% of the day's volume in 10 s at 20 s", [
        {"kind": "sell_program", "at_s": 20.0, "adv_pct": 25.0, "horizon_s": 10.0},
    ]),
    "fat-finger": ("one market sell order of 1,000 lots at 20 s", [
        {"kind": "fat_finger", "at_s": 20.0, "qty": 1_000},
    ]),
    "herding-cascade": ("at 20 s every trend follower cuts its signal threshold to a "
                        "quarter and doubles its orders", [
        {"kind": "herding_cascade", "at_s": 20.0, "threshold_factor": 0.25, "size_factor": 2.0},
    ]),
    "flash-crash": ("at 20 s, a sell program of twice the volume traded so far in 5 s "
                    "(50 market orders) while the market makers step away for 20 s", [
        {"kind": "sell_program", "at_s": 20.0, "adv_pct": 200.0, "horizon_s": 5.0,
         "slices": 50},
        {"kind": "liquidity_withdrawal", "at_s": 20.0, "duration_s": 20.0},
    ]),
}  # fmt: skip


@dataclass
class Composite:
    """Scenarios that strike together (each at its own ``at_s``)."""

    name: str
    parts: list[_Part] = field(default_factory=list)

    def install(self, host: ScenarioHost, dry: bool = False) -> None:
        """Schedule every part on `host`; a part naming a symbol the host does not trade is
        a ValueError now, not a failure when it strikes."""
        can = getattr(host, "can_shock", None)
        self.check(host.symbols, can() if can is not None else True)
        for part in self.parts:
            part.install(host, dry)

    def check(self, symbols: list[str], fundamental: bool) -> Composite:
        """Can a market with `symbols` (and a fair value when `fundamental`) run this? A
        ValueError says why not."""
        for part in self.parts:
            symbol = getattr(part, "symbol", None)
            if symbol is not None and symbol not in symbols:
                raise ValueError(f"scenario {self.name}: {part.kind} names symbol {symbol!r}, "
                                 f"not one of this market's ({', '.join(symbols)})")
            if isinstance(part, FundamentalShock) and not fundamental:
                raise ValueError("a fundamental shock needs a fair value to move: add a "
                                 "[fundamental] table to the market file")
        return self

    def window_s(self) -> tuple[float, float]:
        """From the first part's start to the last part's end (seconds)."""
        windows = [p.window_s() for p in self.parts]
        return min(w[0] for w in windows), max(w[1] for w in windows)

    @property
    def shocks_fundamental(self) -> bool:
        return any(isinstance(p, FundamentalShock) for p in self.parts)

    def as_tables(self) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in self.parts]


def describe_named() -> dict[str, str]:
    return {name: what for name, (what, _) in NAMED.items()}


def named(name: str, overrides: Mapping[str, Any] | None = None) -> Composite:
    """The named scenario `name` with `overrides` set on every part that has the field."""
    if name not in NAMED:
        raise ValueError(f"unknown scenario {name!r}: one of {', '.join(NAMED)}")
    parts = [dict(t) for t in NAMED[name][1]]
    unused = dict(overrides or {})
    for key, value in (overrides or {}).items():
        for table in parts:
            kind = parse_part(table).__class__
            if key in kind.model_fields and key != "kind":
                table[key] = value
                unused.pop(key, None)
    if unused:
        fields = sorted({f for t in parts for f in parse_part(t).__class__.model_fields} - {"kind"})
        raise ValueError(f"scenario {name!r} has no parameter {', '.join(sorted(unused))} "
                         f"(its parameters: {', '.join(fields)})")  # fmt: skip
    return Composite(name, [_checked(t, name) for t in parts])


def _checked(table: Mapping[str, Any], where: str) -> _Part:
    try:
        return parse_part(dict(table))
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg']}"
                           for e in exc.errors())  # fmt: skip
        raise ValueError(f"scenario {where}: {errors}") from None


def build(tables: Iterable[Mapping[str, Any]], name: str | None = None) -> Composite:
    """One composite from scenario tables (``name = ...`` with overrides, or ``kind = ...``)."""
    parts: list[_Part] = []
    names = []
    for i, table in enumerate(tables):
        table = dict(table)
        if "name" in table:
            if "kind" in table:
                raise ValueError(f"scenario {i + 1}: give a name or a kind, not both")
            one = named(table.pop("name"), table)
            parts.extend(one.parts)
            names.append(one.name)
        elif "kind" in table:
            part = _checked(table, f"{i + 1} ({table['kind']})")
            parts.append(part)
            names.append(part.kind)
        else:
            raise ValueError(f"scenario {i + 1}: needs a name (one of {', '.join(NAMED)}) or a "
                             "kind (fundamental_shock, liquidity_withdrawal, sell_program, "
                             "fat_finger, herding_cascade)")  # fmt: skip
    if not parts:
        raise ValueError("no scenario given")
    return Composite(name or "+".join(names), parts)
