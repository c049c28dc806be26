"""Read what the recorder wrote: one channel's Parquet files as one Arrow table.

The recorder writes a finished file per channel every ``flush_s`` seconds (default 5) while it
runs, so a recording can be read at any time, the market still running. The files are plain
Parquet, so any tool reads them directly; this helper only saves finding and ordering them,
and says so when there is nothing to read (a wrong directory, or a recorder that has not
written yet) instead of handing back an empty table::

    from agents.recorder import load
    trades = load("var/recorder", "trades").to_pandas()      # or polars.from_arrow(...)
    # equivalently: pandas.read_parquet("var/recorder/trades")
    #               polars.read_parquet("var/recorder/trades/*.parquet")
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from agents.recorder.sink import SCHEMAS

__all__ = ["NothingRecorded", "files", "load"]


class NothingRecorded(FileNotFoundError):
    """No finished file of this channel where we looked (the message says where and why)."""


def files(out_dir: Path | str, channel: str) -> list[Path]:
    """The channel's finished files, oldest first (names sort by period, then file number).

    Temporary files of a write in progress (``.<name>.tmp``) are never listed.
    """
    if channel not in SCHEMAS:
        raise KeyError(f"unknown channel {channel!r}; known: {sorted(SCHEMAS)}")
    return sorted((Path(out_dir) / channel).glob(f"{channel}-*.parquet"))


def load(out_dir: Path | str, channel: str, symbol: str | None = None) -> pa.Table:
    """Every row recorded on `channel` (optionally of one `symbol`), in file order.

    Raises `NothingRecorded` (a `FileNotFoundError`) naming the path when the channel has no
    finished file there yet. A symbol that is not in the files gives an empty table.
    """
    paths = files(out_dir, channel)
    schema = SCHEMAS[channel]
    if not paths:
        folder = Path(out_dir) / channel
        if not Path(out_dir).is_dir():
            why = ("no such directory (`agora up` records into <data dir>/recorder, "
                   "`agora record` into --out-dir)")  # fmt: skip
        elif not folder.is_dir():
            why = f"no {channel!r} directory: this channel has not been recorded here"
        else:
            why = ("no finished file yet (the recorder writes every AGORA_RECORDER_FLUSH_S "
                   "seconds, 5 by default, once the channel has had a message)")  # fmt: skip
        raise NothingRecorded(f"nothing recorded on {channel!r} at {folder.resolve()}: {why}")
    # One dataset over the list of files: read in parallel (a recording of short flushes is
    # hundreds of small files an hour), rows in the order of the files given (pyarrow keeps
    # that order for a table read of a dataset built from a list of files).
    table = ds.dataset([str(p) for p in paths], schema=schema, format="parquet").to_table()
    if symbol is not None:
        table = table.filter(pc.equal(table["symbol"], symbol))
    return table
