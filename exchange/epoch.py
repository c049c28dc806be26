"""The exchange's epoch: which incarnation of the exchange process is running.

Trade ids carry the epoch in their high bits (`exchange.engine.EPOCH_BITS`). Every start of
the exchange moves to a new epoch, so an exchange whose journal lost its tail (a power cut
with the default no-fsync policy) cannot issue again an id it already published: the lost
trades were of an earlier epoch.

That promise rests on this small file, kept beside the journal and written apart from it:
the new epoch is written, fsynced and renamed into place before the exchange accepts its
first order. The journal also records each epoch's start (``["E", epoch]``), so a replay
reissues the ids each trade had; the file only needs to remember the highest epoch ever used.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["advance_epoch", "epoch_path", "read_epoch"]


def epoch_path(journal_path: Path | str) -> Path:
    return Path(f"{journal_path}.epoch")


def read_epoch(path: Path) -> int | None:
    """The last epoch written, or None if no exchange ever started here."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        raise RuntimeError(f"{path}: not an epoch number ({text[:40]!r})") from None


def advance_epoch(path: Path, at_least: int) -> int:
    """Durably claim the next epoch (above the file's and above `at_least`, the highest epoch
    found in the journal) and return it; a first start ever, on an empty journal, gets 0."""
    last = read_epoch(path)
    if last is None and at_least < 0:
        epoch = 0
    else:
        epoch = max(last if last is not None else -1, at_least) + 1
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(f"{epoch}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself must survive a power cut too
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return epoch
