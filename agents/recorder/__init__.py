"""The market-data recorder: the exchange's feed into rotated Parquet files.

`sink` is the pure part (schemas, buffers, rotation); `server` the thin live shell
(``python -m agents.recorder``); `read.load` concatenates a channel's files into one table.
"""

from agents.recorder.read import load
from agents.recorder.settings import RecorderSettings
from agents.recorder.sink import SCHEMAS, GapTracker, ParquetSink

__all__ = ["SCHEMAS", "GapTracker", "ParquetSink", "RecorderSettings", "load"]
