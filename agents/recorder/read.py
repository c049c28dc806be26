"""Read what the recorder wrote: one channel's rotated Parquet files as one Arrow table.

The files are plain Parquet, so any tool reads them directly; this helper only saves finding
and ordering them::

    from agents.recorder import load
    trades = load("var/recorder", "trades").to_pandas()      # or polars.from_arrow(...)
    # equivalently: pandas.read_parquet("var/recorder/trades")
    #               polars.read_parquet("var/recorder/trades/*.parquet")
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agents.recorder.sink import SCHEMAS

__all__ = ["files", "load"]


def files(out_dir: Path | str, channel: str) -> list[Path]:
    """The channel's finished files, oldest first (names sort by period, then file number).

    Temporary files of a write in progress (``*.parquet.tmp``) are never listed.
    """
    if channel not in SCHEMAS:
        raise KeyError(f"unknown channel {channel!r}; known: {sorted(SCHEMAS)}")
    return sorted((Path(out_dir) / channel).glob(f"{channel}-*.parquet"))


def load(out_dir: Path | str, channel: str, symbol: str | None = None) -> pa.Table:
    """Every row recorded on `channel` (optionally of one `symbol`), in file order.

    With no files yet the result is an empty table with the channel's schema, so callers need
    no special case.
    """
    paths = files(out_dir, channel)
    schema = SCHEMAS[channel]
    if not paths:
        return schema.empty_table()
    table = pa.concat_tables([pq.read_table(p, schema=schema) for p in paths])
    if symbol is not None:
        table = table.filter(pc.equal(table["symbol"], symbol))
    return table
